"""The `run` command's arguments and options (cli.py stays a list of commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "BatchApiOption",
    "ConcurrencyOption",
    "MaxCostOption",
    "NoWaitOption",
    "OutOption",
    "PromptsFileArgument",
    "ResultsDbOption",
]

PromptsFileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="PROMPTS.jsonl",
        help='One prompt a line: a JSON string, or {"id": ..., "prompt": "..."} or '
        '{"id": ..., "messages": [...]}.',
        show_default=False,
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        metavar="RESULTS.jsonl",
        help="The results, one line per prompt in input order (written whole at the end).",
        show_default=False,
    ),
]
ResultsDbOption = Annotated[
    Path | None,
    typer.Option(
        "--results-db",
        metavar="PATH",
        help="The result store that keeps each answer as it arrives; the same command "
        "again resumes from it.",
        show_default="RESULTS.jsonl.sqlite",
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency", "-c", min=1, help="Calls in flight at once (default: the model's)."
    ),
]
MaxCostOption = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="USD",
        min=0.0,
        help="Spend at most this many US dollars, the store's earlier answers included "
        "(hosted models; each call reserves its highest possible cost before it is sent).",
    ),
]
#: `run --batch-api`: the prompts through the provider's batch API.
BatchApiOption = Annotated[
    bool,
    typer.Option(
        "--batch-api",
        help="Send the prompts through the provider's batch API (OpenAI, Anthropic: half "
        "the price, answers within 24 h); the job is kept in the store, so the same "
        "command after a crash or Ctrl-C collects it.",
    ),
]
#: `run --batch-api --no-wait`: submit and exit.
NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="With --batch-api: submit and exit; the same command without it collects.",
    ),
]
