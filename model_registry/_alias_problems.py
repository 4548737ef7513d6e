"""Problems found in alias files, collected and raised together as one AliasConfigError; the
checks every table of a file shares (a string field, a section of tables, did-you-mean)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from model_registry.errors import AliasConfigError

__all__ = [
    "Problem",
    "Problems",
    "check_string",
    "did_you_mean",
    "raise_problems",
    "section",
    "type_name",
]


class Problem(NamedTuple):
    """One problem: the message (naming file, alias and key), and where it is."""

    message: str
    path: str | None
    alias: str | None
    key: str | None


class Problems:
    """Collects the problems of one file (`path`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Problem] = []

    def add(self, message: str, alias: str | None = None, key: str | None = None) -> None:
        self.items.append(Problem(message, self.path, alias, key))


def raise_problems(problems: list[Problem]) -> None:
    """Raise every problem as one AliasConfigError (first shown, then the rest); nothing
    when there is none."""
    if not problems:
        return
    lines = tuple(p.message for p in problems)
    first = problems[0]
    text = first.message
    if len(lines) > 1:
        paths = {p.path for p in problems}
        where = f" in {first.path}" if len(paths) == 1 and first.path else ""
        text += f"\n(and {len(lines) - 1} more problem(s){where}:\n  " + "\n  ".join(lines[1:])
        text += ")"
    raise AliasConfigError(text, path=first.path, alias=first.alias, key=first.key, problems=lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib  # here: loaded by a mistake in a file, not at import

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def type_name(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a float",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def check_string(
    problems: Problems,
    where: str,
    alias: str,
    key: str,
    value: object,
    *,
    required: bool = False,
) -> str | None:
    """`value` when it is a string (non-blank when `required`); else None, a problem added."""
    if value is None:
        if required:
            problems.add(f"{where}: missing key '{key}'", alias, key)
        return None
    if not isinstance(value, str):
        problems.add(
            f"{where}: key '{key}' must be a string, got {type_name(value)}"
            # a table or array is not echoed: it may hold a credential (api_base = {password=...})
            + (f" ({value!r})" if isinstance(value, int | float) else ""),
            alias,
            key,
        )
        return None
    if required and not value.strip():
        problems.add(f"{where}: key '{key}' must not be empty", alias, key)
        return None
    return value


def section(raw: object, path: str, key: str, problems: Problems) -> dict[str, Any]:
    """The `[key."name"]` tables of a file: empty when absent, or (a problem) not a table."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(
            f"{path}: '{key}' must be a table of [{key}.\"name\"] tables, got {type_name(raw)}",
            key=key,
        )
        return {}
    return raw
