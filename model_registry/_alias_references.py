"""What an alias file refers to beyond its own tables: `[limits."NAME"]` tables (NAME a
provider or alias), an alias's `fallbacks` (other names), and the JSON Schema file its
`defaults.response_format` may name (read once, here, when the file loads).

Each file's tables and lists are checked on their own (types, keys, numbers); what needs
every layered file (a NAME that is a provider or alias, a fallback name that resolves, no
cycle of fallbacks) is checked once the files are layered, by `link_problems`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from model_registry._alias_problems import Problem
from model_registry._limits_declared import Limits, limit_problems, validate_limits

__all__ = ["Declared", "check_fallbacks", "link_problems", "parse_limits", "schema_file"]

#: Reports one problem: (message, alias or NAME, key).
Report = Callable[[str, "str | None", "str | None"], None]

#: Where a NAME's limits were declared: NAME -> (file, limits).
Declared = dict[str, tuple[str, Limits]]


def parse_limits(raw: object, path: str, report: Report) -> Declared:
    """The `[limits."NAME"]` tables of one file, each checked (keys, positive numbers)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        report(
            f"{path}: 'limits' must be a table of [limits.\"NAME\"] tables (NAME a provider or "
            f"an alias), got {type(raw).__name__}",
            None,
            "limits",
        )
        return {}
    out: Declared = {}
    for name, table in raw.items():
        where = f"{path}: limits '{name}'"
        problems = limit_problems(table)
        for key, message in problems:
            report(f"{where}: {message}", name, key)
        if not problems:
            out[name] = (path, validate_limits(table, where))
    return out


def check_fallbacks(value: object, where: str, name: str, report: Report) -> tuple[str, ...]:
    """An alias's `fallbacks`: a list of non-empty names, not naming the alias itself."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        report(
            f"{where}: key 'fallbacks' must be a list of model names, as in "
            f'fallbacks = ["claude-sonnet", "gemini-flash"]',
            name,
            "fallbacks",
        )
        return ()
    return tuple(value)


def schema_file(
    value: str, path: str, where: str, name: str, report: Report
) -> str | dict[str, Any]:
    """`response_format = "schemas/x.json"` (relative to the alias file at `path`): the
    schema in that file, as OpenAI's `{"type": "json_schema", ...}` form named after the
    file; the value unchanged (a problem reported) when the file holds no JSON object."""
    file = (Path(path).parent / value).resolve()
    where = f"{where}: key 'defaults.response_format'"
    import json  # here: loaded by a file that names a schema, not at import

    try:
        schema = json.loads(file.read_bytes())
    except OSError:
        report(
            f"{where}: no JSON Schema file {str(file)!r} (a path relative to the alias file)",
            name,
            "response_format",
        )
        return value
    except ValueError as exc:  # not JSON, or not UTF-8
        schema = exc
    if not isinstance(schema, dict):
        shown = f"not JSON ({schema})" if isinstance(schema, ValueError) else "not a JSON object"
        report(
            f"{where}: {str(file)!r} is {shown}; a JSON Schema file holds one JSON object, "
            'as in {"type": "object", "properties": {...}}',
            name,
            "response_format",
        )
        return value
    return {"type": "json_schema", "json_schema": {"name": file.stem, "schema": schema}}


def link_problems(
    aliases: Mapping[str, Any],
    providers: Mapping[str, Any],
    limits: Declared,
    name_problem: Callable[[str], str | None] | None,
    broken: frozenset[str] = frozenset(),
) -> list[Problem]:
    """What only the layered files can tell: each limits NAME that is no provider or alias,
    fallback name that does not resolve, and cycle of fallbacks. Names in `broken` (tables
    with problems of their own) are taken to exist, so they cause no second problem."""
    found: list[Problem] = []
    for name, (path, _) in limits.items():
        if name not in providers and name not in aliases and name not in broken:
            found.append(
                Problem(
                    f"{path}: limits '{name}': '{name}' is neither a provider nor an alias of "
                    'the alias files; name one of them (as in [limits."openai"])',
                    path,
                    name,
                    "limits",
                )
            )
    for alias in aliases.values():
        for target in alias.fallbacks:
            known = target in aliases or target in broken
            problem = None if known or name_problem is None else name_problem(target)
            if problem is not None:
                found.append(
                    Problem(
                        f"{alias.source}: alias '{alias.name}': fallback '{target}' does not "
                        f"resolve: {problem}",
                        alias.source,
                        alias.name,
                        "fallbacks",
                    )
                )
    cycle = _cycle(aliases)
    if cycle:
        first = aliases[cycle[0]]
        found.append(
            Problem(
                f"{first.source}: alias '{first.name}': fallbacks go round in a cycle: "
                f"{' -> '.join(cycle)}; remove one of these fallbacks",
                first.source,
                first.name,
                "fallbacks",
            )
        )
    return found


def _cycle(aliases: Mapping[str, Any]) -> list[str] | None:
    """A cycle of fallbacks among aliases, as [a, b, ..., a], or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for target in aliases[name].fallbacks:
            if target not in aliases:
                continue
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[name] = "done"
        return None

    for name in sorted(aliases):
        if name not in state and (found := visit(name, [name])):
            return found
    return None
