"""Local tool calls: `tool_choice="required"` or a named function enforced by vLLM's
structured-output decoding, and the decoded JSON read back as `ToolCall`s.

"required" decodes a JSON array of `{"name": ..., "parameters": {...}}` objects, each
closed (`additionalProperties: false`) and the array bounded (`maxItems: 1` unless
`parallel_tool_calls=True`): with vLLM's own open schema a weak model pads until the
length limit. A named function decodes its arguments object. `tool_choice="auto"` (the
default with tools) lets the model answer or call in its own markup, which a tool-call parser
reads (`tool_call_parser`, e.g. "hermes": see `_vllm_parsing`); without one it is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from model_registry.clients._structured import strict_schema
from model_registry.clients._tools import prepare_tools, read_tool_calls
from model_registry.errors import InvalidParameterError, OutputValidationError
from model_registry.types import ToolCall

__all__ = ["LocalTools", "local_tools"]

#: Our call options for local tool calls (routed apart from vLLM's params).
TOOL_OPTIONS = frozenset({"tools", "tool_choice", "parallel_tool_calls", "tool_call_parser"})


class LocalTools:
    """One call's tools: what the chat template gets, and the decoded calls read back."""

    def __init__(self, wire: list[dict[str, Any]], named: str | None, auto: bool = False) -> None:
        self.wire = wire
        self.named = named
        #: tool_choice="auto": the tool-call parser reads the calls, no JSON is decoded.
        self.auto = auto
        self.schemas = {t["function"]["name"]: t["function"].get("parameters") for t in wire}

    def calls(self, text: str, *, provider: str, model: str) -> list[ToolCall]:
        """The decoded text as ToolCalls, each validated; OutputValidationError else."""
        if self.named is not None:
            found: Any = [{"name": self.named, "arguments": text}]
        else:
            try:
                found = json.loads(text)
            except ValueError as exc:
                raise OutputValidationError(
                    f"the tool calls decoded are not JSON ({exc}); raise max_tokens if the "
                    "answer was cut (the whole answer is the error's .text)",
                    provider=provider,
                    model=model,
                    text=text,
                    validation_message=str(exc),
                ) from None
            found = [
                {"name": c.get("name"), "arguments": json.dumps(c.get("parameters"))}
                for c in found
                if isinstance(c, Mapping)
            ]
        shaped = [{"id": f"call_{uuid.uuid4().hex[:24]}", "function": call} for call in found]
        return read_tool_calls(shaped, self.schemas, provider=provider, model=model) or []


def local_tools(sampling: dict[str, Any], options: Mapping[str, Any]) -> LocalTools | None:
    """The call's tools, with `sampling["structured_outputs"]` set to the calls' schema
    ("required", named); None when the call gives no tools or `tool_choice="none"`."""
    if options.get("tools") is None:
        return None
    params = {"tools": options["tools"]}
    prepare_tools(params, " in this call")
    wire: list[dict[str, Any]] = params["tools"]
    choice = options.get("tool_choice")
    if choice == "none":
        return None
    names = [t["function"]["name"] for t in wire if t.get("type") == "function"]
    named = _named(choice, names)
    if choice in (None, "auto"):
        return _auto(wire, choice, options.get("tool_call_parser"))
    if choice != "required" and named is None:
        raise InvalidParameterError(
            f"tool_choice={choice!r} with tools on a local model: pick 'auto', 'required', "
            "'none' or a named function ({'type': 'function', 'function': {'name': ...}})"
        )
    if sampling.get("structured_outputs") is not None or options.get("response_format"):
        raise InvalidParameterError(
            "tool_choice 'required' or a named function on a local model is decoded as JSON: "
            "pass it without response_format or structured_outputs"
        )
    tools = LocalTools(wire, named)
    from vllm.sampling_params import StructuredOutputsParams

    schema = _call_schema(tools, bool(options.get("parallel_tool_calls")))
    sampling["structured_outputs"] = StructuredOutputsParams(json=schema)
    return tools


def _auto(wire: list[dict[str, Any]], choice: Any, parser: Any) -> LocalTools:
    if parser is None:
        raise InvalidParameterError(
            f"tool_choice={choice!r} with tools on a local model needs a tool-call parser "
            "for the model's markup: pass tool_call_parser='hermes' (Qwen, Hermes; see vLLM's "
            "--tool-call-parser for others) to the call, get_client() or the alias defaults, "
            "or use tool_choice='required' or a named function, which need none"
        )
    if not isinstance(parser, str):
        raise InvalidParameterError(
            f"'tool_call_parser' must be the name of a vLLM tool-call parser (e.g. 'hermes'), "
            f"got {parser!r}"
        )
    return LocalTools(wire, None, auto=True)


def _named(choice: Any, names: list[str]) -> str | None:
    if not isinstance(choice, Mapping):
        return None
    name = (choice.get("function") or {}).get("name")
    if name not in names:
        raise InvalidParameterError(
            f"tool_choice names function {name!r}, which is not among the tools given "
            f"({', '.join(names) or 'none'})"
        )
    return str(name)


def _call_schema(tools: LocalTools, parallel: bool) -> dict[str, Any]:
    """The JSON Schema the engine decodes: the named tool's arguments, or a bounded array of
    closed `{"name", "parameters"}` objects."""
    if tools.named is not None:
        return strict_schema(dict(tools.schemas[tools.named] or {"type": "object"}))
    items = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [name]},
                "parameters": strict_schema(dict(schema or {"type": "object"})),
            },
            "required": ["name", "parameters"],
            "additionalProperties": False,
        }
        for name, schema in tools.schemas.items()
    ]
    array: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": items}}
    if not parallel:
        array["maxItems"] = 1
    return array
