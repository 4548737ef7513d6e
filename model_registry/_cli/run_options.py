"""The `run` command's arguments and options (cli.py stays a list of commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "ConcurrencyOption",
    "MaxCostOption",
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
