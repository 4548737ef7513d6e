"""Options several commands share: `--set KEY=VALUE` (parsed as TOML), `--json`, `--debug`."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from model_registry._cli.output import state


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse `KEY=VALUE` items into kwargs; values are TOML (`0.2`, `true`, `[1, 2]`),
    and anything that is not TOML is a plain string (`--set tokenizer_mode=hf`).

    Raises `typer.BadParameter` (exit 2) for an item without `=`, a broken
    array/table/string, or a number that is not finite (`nan`, `inf`).
    """
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise typer.BadParameter(
                f"{item!r} is not KEY=VALUE (e.g. --set temperature=0.2)", param_hint="'--set'"
            )
        if not key.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
            raise typer.BadParameter(
                f"{key!r} is not a valid keyword name (letters, digits and '_')",
                param_hint="'--set'",
            )
        kwargs[key] = _parse_value(key, raw)
    return kwargs


def _parse_value(key: str, raw: str) -> Any:
    """One `--set` value: TOML, or the raw text when it is not TOML."""
    value = raw.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if value[:1] in ("[", "{", '"', "'"):
            raise typer.BadParameter(
                f"{key}={value}: not a valid TOML value ({exc}); "
                "arrays look like [1, 2], strings with spaces like '\"a b\"'",
                param_hint="'--set'",
            ) from None
        return raw
    if not _all_finite(parsed):
        raise typer.BadParameter(
            f"{key}={value}: not a finite number; no parameter takes nan or inf "
            "(give a number such as 0.7, or quote it, '\"nan\"', to send the text)",
            param_hint="'--set'",
        )
    return parsed


def _all_finite(value: object) -> bool:
    """False when a float in `value` (at any depth) is nan or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="A call kwarg (repeatable); the value is TOML: 0.2, true, [1, 2], or a bare word.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _set_debug(value: bool) -> bool:
    if value:
        state.debug = True
    return value


DebugOption = Annotated[
    bool,
    typer.Option(
        "--debug",
        callback=_set_debug,
        is_eager=True,
        help="Show tracebacks for errors (also accepted before the command).",
    ),
]


#: `run --results-db`.
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
#: `run --concurrency`.
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency", "-c", min=1, help="Calls in flight at once (default: the model's)."
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
