"""The input of `run`: a JSONL file of prompts, parsed whole before any call, every
malformed line named by file and line number."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from model_registry._cli.output import fail

#: The keys an input object may have.
_INPUT_KEYS = ("id", "prompt", "messages")
_INPUT_SHAPE = (
    'each line is a JSON string (one user message) or an object with "prompt" (a string) '
    'or "messages" (a list of {"role": ..., "content": ...}) and an optional "id"'
)
#: How many malformed lines one error message lists.
_MAX_INPUT_PROBLEMS = 20


class _BadLine(Exception):
    """One malformed input line (the message says what is wrong with it)."""


@dataclass(frozen=True)
class RunInput:
    """The prompts of an input file and each prompt's output id, in file order."""

    ids: list[Any]
    prompts: list[Any]


def read_run_input(path: Path) -> RunInput:
    """Parse the whole input file before any call; every malformed line is reported (file and
    line number) as one error, exit 1. Blank lines are skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read the prompts file {path}: {exc.strerror or exc}")
    ids: list[Any] = []
    prompts: list[Any] = []
    first_line: dict[str, int] = {}
    problems: list[str] = []
    position = -1
    for lineno, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not raw.strip():
            continue
        position += 1  # counts malformed lines too, so the ids reported are the final ones
        try:
            given_id, prompt = _parse_input_line(raw)
            output_id = position if given_id is None else given_id
            _check_unique_id(output_id, lineno, first_line)
        except _BadLine as exc:
            problems.append(f"{path}:{lineno}: {exc}")
            continue
        ids.append(output_id)
        prompts.append(prompt)
    if problems:
        fail(_input_problems(path, problems))
    if not prompts:
        fail(f"{path} holds no prompts; {_INPUT_SHAPE}")
    return RunInput(ids, prompts)


def _input_problems(path: Path, problems: list[str]) -> str:
    shown = problems[:_MAX_INPUT_PROBLEMS]
    more = len(problems) - len(shown)
    tail = f"\n(and {more} more malformed lines)" if more else ""
    noun = "line" if len(problems) == 1 else "lines"
    return (
        f"{len(problems)} malformed {noun} in {path}, nothing was sent:\n"
        + "\n".join(shown)
        + tail
        + f"\n{_INPUT_SHAPE}"
    )


def _parse_input_line(raw: bytes) -> tuple[Any, Any]:
    """(id or None, prompt) of one input line; raises `_BadLine`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine(f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, _BadLine) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        column = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise _BadLine(f"not valid JSON ({why}{column})") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _BadLine("holds a lone surrogate escape (\\udXXX), which is no text") from None
    if isinstance(value, str):
        return None, value
    if not isinstance(value, dict):
        raise _BadLine(f"a JSON {_json_type(value)} is no prompt; {_INPUT_SHAPE}")
    return _parse_input_object(value)


def _reject_constant(name: str) -> NoReturn:
    raise _BadLine(f"{name} is not JSON")


def _parse_input_object(value: dict[str, Any]) -> tuple[Any, Any]:
    unknown = [key for key in value if key not in _INPUT_KEYS]
    if unknown:
        raise _BadLine(
            f"unknown key {unknown[0]!r} (an input object has {', '.join(map(repr, _INPUT_KEYS))})"
        )
    given_id = value.get("id")
    if given_id is not None and (isinstance(given_id, bool) or not isinstance(given_id, str | int)):
        raise _BadLine(f'"id" must be a string or an integer, got a JSON {_json_type(given_id)}')
    if ("prompt" in value) == ("messages" in value):
        raise _BadLine('give exactly one of "prompt" and "messages"')
    if "prompt" in value:
        if not isinstance(value["prompt"], str):
            raise _BadLine(f'"prompt" must be a string, got a JSON {_json_type(value["prompt"])}')
        return given_id, value["prompt"]
    return given_id, _check_messages(value["messages"])


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _BadLine('"messages" must be a non-empty list of {"role": ..., "content": ...}')
    for n, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or "content" not in message
        ):
            raise _BadLine(
                f'"messages" item {n} must be an object with a string "role" and a "content"'
            )
    return messages


def _check_unique_id(output_id: Any, lineno: int, first_line: dict[str, int]) -> None:
    key = json.dumps(output_id)
    if key in first_line:
        raise _BadLine(
            f"id {key} is also the id of line {first_line[key]}; ids must be unique (a line "
            "without an id gets its position among the prompts, from 0)"
        )
    first_line[key] = lineno


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
