"""The input of `run`: a JSONL file of prompts, read through and checked before any call,
every malformed line named by file and line number, then read again as the calls go."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
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
#: How deep arrays and objects may nest in a line (message parts need a handful of levels).
_MAX_DEPTH = 32
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
    """The whole input file, checked first (`check_run_input`), as lists."""
    check_run_input(path)
    ids: list[Any] = []
    prompts: list[Any] = []
    for output_id, prompt in run_input(path):
        ids.append(output_id)
        prompts.append(prompt)
    return RunInput(ids, prompts)


def check_run_input(path: Path) -> int:
    """Read the input file through before any call (streaming: it is not kept); every
    malformed line is reported (file and line number) as one error, exit 1. The number of
    prompts; blank lines are skipped."""
    # Python's 64-bit hash of each id's JSON stands for it (two different ids share one by
    # a 1-in-2**64 chance: then the later is refused as a repeat of the earlier).
    first_line: dict[int, int] = {}
    problems: list[str] = []
    count = 0
    for position, lineno, raw in _lines(path):
        try:
            given_id, _ = _parse_input_line(raw)
            output_id = position if given_id is None else given_id
            _check_unique_id(output_id, lineno, first_line)
        except _BadLine as exc:
            problems.append(f"{path}:{lineno}: {exc}")
            continue
        count += 1
    if problems:
        fail(_input_problems(path, problems))
    if not count:
        fail(f"{path} holds no prompts; {_INPUT_SHAPE}")
    return count


def run_input(path: Path) -> Iterator[tuple[Any, Any]]:
    """`(output id, prompt)` of each line of a checked input file, read as it goes."""
    for position, _, raw in _lines(path):
        given_id, prompt = _parse_input_line(raw)
        yield (position if given_id is None else given_id), prompt


def record_ids(store: Any, ids: Iterable[Any]) -> None:
    """Keep the output ids of the input file (each prompt's, in file order) that are not
    their index in `store`'s latest batch: the run's, for its output and `results`."""
    store.record_ids((index, given) for index, given in enumerate(ids) if given != index)


def _lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """`(position among the prompts, line number, line)` of each line that is not blank;
    position counts malformed lines too, so the ids reported are the final ones."""
    try:
        with path.open("rb") as file:
            position = -1
            for lineno, raw in enumerate(file, start=1):
                line = raw.removeprefix(b"\xef\xbb\xbf") if lineno == 1 else raw
                line = line.removesuffix(b"\n")
                if not line.strip():
                    continue
                position += 1
                yield position, lineno, line
    except OSError as exc:
        fail(f"cannot read the prompts file {path}: {exc.strerror or exc}")


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
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite, parse_int=_integer
        )
    except json.JSONDecodeError as exc:
        # "Unterminated string starting at" names the column itself
        at = "" if exc.msg.endswith(" at") else " at"
        raise _BadLine(f"not valid JSON ({exc.msg}{at} column {exc.colno})") from None
    except RecursionError:
        raise _BadLine(f"nested too deeply (more than {_MAX_DEPTH} levels)") from None
    _check_depth(value)
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
    raise _BadLine(f"not valid JSON ({name} is not JSON)")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _BadLine(f"the number {text[:40]} is out of range (no finite number)")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _BadLine(f"a number with {len(text.lstrip('-'))} digits is too long") from None


def _check_depth(value: Any) -> None:
    """Refuse arrays and objects nested deeper than `_MAX_DEPTH` (no prompt needs them)."""
    level = [value]
    for _ in range(_MAX_DEPTH + 1):
        level = [
            item
            for node in level
            if isinstance(node, dict | list)
            for item in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return
    raise _BadLine(f"nested too deeply (more than {_MAX_DEPTH} levels)")


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
        content = message["content"]
        if content is not None and not isinstance(content, str | list):
            raise _BadLine(
                f'"messages" item {n}: "content" must be a string or a list of parts '
                f'({{"type": "text", "text": ...}}), got a JSON {_json_type(content)}'
            )
        if isinstance(content, list) and not all(isinstance(p, dict) for p in content):
            raise _BadLine(
                f'"messages" item {n}: "content" as a list holds parts, each an object '
                '({"type": "text", "text": ...})'
            )
    return messages


def _check_unique_id(output_id: Any, lineno: int, first_line: dict[int, int]) -> None:
    key = hash(json.dumps(output_id))
    if key in first_line:
        raise _BadLine(
            f"id {json.dumps(output_id)} is also the id of line {first_line[key]}; ids must be unique (a line "
            "without an id gets its position among the prompts, from 0)"
        )
    first_line[key] = lineno


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
