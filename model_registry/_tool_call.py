"""`ToolCall`: one function call a model asked for, as `Generation.tool_calls` holds it.

Part of the bottom layer (re-exported by `types`); it imports nothing of ours.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ToolCall"]


class ToolCall(msgspec.Struct, frozen=True):
    """A call of the tool `name` with `arguments` (the parsed JSON object); `arguments_json`
    is the raw string the model wrote, `id` the provider's id for the tool message."""

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_json: str

    def __repr__(self) -> str:
        return f"ToolCall(id={self.id!r}, name={self.name!r}, arguments={self.arguments!r})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "arguments_json": self.arguments_json,
        }

    def to_message_part(self) -> dict[str, Any]:
        """The call as an assistant message's `tool_calls` item (OpenAI's shape), for the
        next turn of a conversation."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }
