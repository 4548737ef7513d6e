"""Prompts: a string or a list of chat messages; anything else is the caller's mistake."""

from __future__ import annotations

from typing import Any

import pytest

from model_registry import InvalidParameterError
from model_registry._prompts import to_messages

SHAPE = (
    "pass a string (one user message) or a list of chat messages, "
    "as in [{'role': 'user', 'content': 'Hello'}]"
)


def test_a_string_is_one_user_message() -> None:
    assert to_messages("Hi") == [{"role": "user", "content": "Hi"}]


def test_a_list_or_tuple_of_messages_is_kept() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert to_messages(messages) == messages  # type: ignore[arg-type]
    assert to_messages(tuple(messages)) == messages  # type: ignore[arg-type]


def test_non_ascii_text_and_content_parts_pass() -> None:
    parts = [{"type": "text", "text": "héllo 🙂"}]
    assert to_messages("模型 🙂") == [{"role": "user", "content": "模型 🙂"}]
    assert to_messages([{"role": "user", "content": parts}])[0]["content"] == parts  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (None, f"prompt must be a string or a list of messages, got None; {SHAPE}"),
        (123, f"prompt must be a string or a list of messages, got int (123); {SHAPE}"),
        (b"Hi", f"prompt must be a string or a list of messages, got bytes (b'Hi'); {SHAPE}"),
        (
            {"role": "user", "content": "Hi"},
            "prompt must be a string or a list of messages, got dict "
            f"({{'role': 'user', 'content': 'Hi'}}); {SHAPE}",
        ),
        (
            iter(["Hi"]),
            "prompt must be a string or a list of messages, got list_iterator (<list_iterator",
        ),
        ([], f"prompt is an empty list of messages; {SHAPE}"),
        (
            ["Hi"],
            "prompt message 0 must be a mapping with 'role' and 'content', got str ('Hi'); "
            + SHAPE,
        ),
        (
            [{"role": "user"}],
            "prompt message 0 must be a mapping with 'role' and 'content', got dict "
            f"({{'role': 'user'}}); {SHAPE}",
        ),
    ],
)
def test_a_prompt_of_the_wrong_shape_names_prompt_and_what_to_pass(
    prompt: Any, message: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        to_messages(prompt)
    assert str(caught.value).startswith(message)


SURROGATE_FIX = (
    "which is not valid Unicode and cannot be sent; fix the text where it was decoded "
    "(e.g. decode with errors='replace') or remove the character"
)


@pytest.mark.parametrize(
    ("prompt", "where"),
    [
        ("\ud800", "prompt holds a lone surrogate (U+D800 at index 0)"),
        ("café \udcff", "prompt holds a lone surrogate (U+DCFF at index 5)"),
        (
            [{"role": "system", "content": "ok"}, {"role": "user", "content": "x\ud83d"}],
            "prompt message 1 'content' holds a lone surrogate (U+D83D at index 1)",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}],
            "prompt message 0 'content' part 0 'text' holds a lone surrogate (U+DFFF at index 0)",
        ),
    ],
)
def test_a_lone_surrogate_is_a_caller_mistake_naming_where(prompt: Any, where: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        to_messages(prompt)
    assert str(caught.value) == f"{where}, {SURROGATE_FIX}"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (
            [{"role": "user", "content": 5}],
            "prompt message 0 'content' must be a string, a list of content parts or None, "
            "got int (5); pass the text as a string, e.g. str(value)",
        ),
        (
            [{"role": "user", "content": float("inf")}],
            "prompt message 0 'content' must be a string, a list of content parts or None, "
            "got float (inf); pass the text as a string, e.g. str(value)",
        ),
        (
            [{"role": "user", "content": ["Hi"]}],
            "prompt message 0 'content' part 0 must be a mapping such as "
            "{'type': 'text', 'text': 'Hello'}, got str ('Hi')",
        ),
        (
            [{"role": None, "content": "Hi"}],
            "prompt message 0 'role' must be a string such as 'user', got None",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": "x", "w": float("nan")}]}],
            "prompt message 0 'content': nan is not a finite number (at [0].w); "
            "pass a finite number",
        ),
        (
            [{"role": "user", "content": "x"}, {"role": "tool", "content": "y", "x": [1e999]}],
            "prompt message 1 'x': inf is not a finite number (at [0]); pass a finite number",
        ),
    ],
)
def test_a_message_of_the_wrong_type_or_with_a_non_finite_number_is_refused(
    prompt: Any, message: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        to_messages(prompt)
    assert str(caught.value) == message


def test_content_none_is_kept_for_a_message_that_carries_tool_calls() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    assert to_messages(messages) == messages  # type: ignore[arg-type]
