"""Prompts as chat messages, checked before any call; and the finite-number check that
prompts share with parameters.

Part of the bottom layer: it imports only `errors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from model_registry.errors import InvalidParameterError

__all__ = ["Message", "Prompt", "check_finite", "check_text", "first_non_finite", "to_messages"]


class Message(TypedDict):
    """One chat message, in the OpenAI shape that LiteLLM speaks."""

    role: str
    content: str


#: A string, or chat messages (text, or OpenAI content parts and tool calls as plain dicts).
Prompt = str | Sequence[Message] | Sequence[Mapping[str, Any]]


def first_non_finite(value: object) -> tuple[str, float] | None:
    """The first nan or inf inside `value` (dicts, lists and tuples walked), as
    (where inside, e.g. "" or ".scale[1]", the number); None when every number is finite."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:  # a stack, not recursion: TOML may nest deeper than Python recurses
        where, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return where, item
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def check_finite(value: object, where: str) -> None:
    """Raise InvalidParameterError when `value` holds nan or inf (at any depth).

    `where` names the value in the message, e.g. "--set temperature" or "kwarg 'extra_body'"
    (a nested one is named after it: "kwarg 'extra_body': inf is not a finite number (at a[1])").
    No parameter means anything as nan or inf, and JSON cannot carry them.
    """
    found = first_non_finite(value)
    if found is not None:
        inside, number = found
        at = f" (at {inside.lstrip('.')})" if inside else ""
        raise InvalidParameterError(
            f"{where}: {number!r} is not a finite number{at}; pass a finite number"
        )


_PROMPT_SHAPE = (
    "pass a string (one user message) or a list of chat messages, "
    "as in [{'role': 'user', 'content': 'Hello'}]"
)


def to_messages(prompt: Prompt) -> list[Message]:
    """The chat messages of a prompt: a string is one user message, a list is checked and kept.

    Raises `InvalidParameterError` (before any network) for anything else: a message that is
    no mapping, a role that is no string, a content that is neither text, content parts nor
    None, a nan or inf anywhere, text that is not valid Unicode (a lone surrogate).
    """
    if isinstance(prompt, str):
        check_text(prompt, "prompt")
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list | tuple):
        raise InvalidParameterError(
            f"prompt must be a string or a list of messages, got {_describe(prompt)}; "
            + _PROMPT_SHAPE
        )
    if not prompt:
        raise InvalidParameterError(f"prompt is an empty list of messages; {_PROMPT_SHAPE}")
    for i, message in enumerate(prompt):
        if not isinstance(message, Mapping) or "role" not in message or not _has_content(message):
            raise InvalidParameterError(
                f"prompt message {i} must be a mapping with 'role' and 'content', "
                f"got {_describe(message)}; {_PROMPT_SHAPE} (an assistant message with "
                "'tool_calls' may leave 'content' out)"
            )
        _check_message(message, f"prompt message {i}")
    return list(prompt)


def _has_content(message: Mapping[str, object]) -> bool:
    """A message has content, or is an assistant's tool calls (OpenAI lets those omit it)."""
    return "content" in message or (
        message.get("role") == "assistant" and bool(message.get("tool_calls"))
    )


def _check_message(message: Mapping[str, object], where: str) -> None:
    role, content = message["role"], message.get("content")
    if not isinstance(role, str):
        raise InvalidParameterError(
            f"{where} 'role' must be a string such as 'user', got {_describe(role)}"
        )
    if content is not None and not isinstance(content, str | list | tuple):
        raise InvalidParameterError(
            f"{where} 'content' must be a string, a list of content parts or None, got "
            f"{_describe(content)}; pass the text as a string, e.g. str(value)"
        )
    for key, value in message.items():
        check_finite(value, f"{where} {key!r}")
        _check_message_value(value, f"{where} {key!r}", parts=key == "content")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidParameterError(
            f"{where} has role 'tool' but no 'tool_call_id' string: a tool's answer names the "
            "call it answers, as in {'role': 'tool', 'tool_call_id': call.id, 'content': '...'}"
        )


def _check_message_value(value: object, where: str, *, parts: bool) -> None:
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, list | tuple):  # content parts: [{"type": "text", "text": ...}]
        for j, part in enumerate(value):
            if isinstance(part, Mapping):
                for key, item in part.items():
                    if isinstance(item, str):
                        check_text(item, f"{where} part {j} {key!r}")
            elif parts:
                raise InvalidParameterError(
                    f"{where} part {j} must be a mapping such as {{'type': 'text', 'text': "
                    f"'Hello'}}, got {_describe(part)}"
                )


def check_text(text: str, where: str) -> None:
    """InvalidParameterError for a lone surrogate, which no request can carry."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(
            f"{where} holds a lone surrogate (U+{ord(text[exc.start]):04X} at index "
            f"{exc.start}), which is not valid Unicode and cannot be sent; fix the text where "
            "it was decoded (e.g. decode with errors='replace') or remove the character"
        ) from None


def _describe(value: object) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} ({shown})"
