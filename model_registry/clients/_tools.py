"""Tool calls: `tools=` made OpenAI's JSON shape, and the calls in an answer read and checked.

`tools=` takes OpenAI's `{"type": "function", "function": {...}}` items, or, as a
convenience, a pydantic model class or a plain function with type hints (its JSON Schema
from pydantic; name = the class or function name, description = the docstring's first
line). An answer's calls become `ToolCall`s: arguments that are not a JSON object, or that
do not validate against the tool's `parameters`, raise `OutputValidationError` whose
`.text` is the raw arguments string. Streams send calls as deltas (`ToolCallDeltas`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable, Mapping
from typing import Any

from model_registry.clients._structured import validation_problem
from model_registry.errors import InvalidParameterError, OutputValidationError
from model_registry.types import ToolCall

__all__ = ["ToolCallDeltas", "ToolSchemas", "prepare_tools", "read_tool_calls", "tool_shape"]

#: The tools of one call: function name -> its `parameters` schema (None: any object).
ToolSchemas = dict[str, Mapping[str, Any] | None]

_SHAPE = (
    "pass OpenAI's shape {'type': 'function', 'function': {'name': ..., 'parameters': {...}}}, "
    "a pydantic model class, or a function with type hints"
)


def prepare_tools(params: dict[str, Any], where: str) -> ToolSchemas | None:
    """Turn `params["tools"]` into OpenAI's JSON shape in place; the schemas by tool name
    (None when the call gives no tools)."""
    tools = params.get("tools")
    if tools is None:
        return None
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Iterable):
        raise InvalidParameterError(
            f"tools{where} must be a list of tools, got {type(tools).__name__}; {_SHAPE}"
        )
    shaped = [tool_shape(tool, f"tools[{i}]{where}") for i, tool in enumerate(tools)]
    params["tools"] = shaped
    return {
        tool["function"]["name"]: tool["function"].get("parameters")
        for tool in shaped
        if tool.get("type") == "function"
    }


def tool_shape(tool: Any, where: str) -> dict[str, Any]:
    """One tool in OpenAI's JSON shape (a copy of a dict in that shape, or the shape of a
    pydantic model class or a typed function)."""
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, Mapping):
            if tool.get("type") not in (None, "function"):
                return dict(tool)  # a provider's own tool type (web search, ...): as given
            raise InvalidParameterError(f"{where} is not a tool in OpenAI's shape; {_SHAPE}")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise InvalidParameterError(f"{where}: the function has no 'name'; {_SHAPE}")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidParameterError(
                f"{where}: 'parameters' of tool {function['name']!r} must be a JSON Schema "
                f"object (a dict), got {type(parameters).__name__}"
            )
        return {**tool, "function": dict(function)}
    if isinstance(tool, type) and callable(getattr(tool, "model_json_schema", None)):
        schema = dict(tool.model_json_schema())  # type: ignore[attr-defined]
        schema.pop("title", None)
        schema.pop("description", None)
        return _function(tool.__name__, tool.__doc__, schema)
    if inspect.isfunction(tool) or inspect.ismethod(tool):
        from pydantic import TypeAdapter

        try:
            schema = TypeAdapter(tool).json_schema()
        except Exception as exc:  # pydantic cannot type an argument
            raise InvalidParameterError(
                f"{where}: no JSON Schema for the arguments of {tool.__name__}(): {exc}; "
                "give every argument a type hint pydantic knows, or pass OpenAI's shape"
            ) from None
        return _function(tool.__name__, tool.__doc__, schema)
    raise InvalidParameterError(f"{where} is a {type(tool).__name__}; {_SHAPE}")


def _function(name: str, doc: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    if lines and lines[0].strip():
        function["description"] = lines[0].strip()
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def read_tool_calls(
    calls: Any, tools: ToolSchemas | None, *, provider: str, model: str
) -> list[ToolCall] | None:
    """An answer's `message.tool_calls` (objects or dicts) as ToolCalls, each checked; None
    when it has none."""
    if not calls:
        return None
    out = []
    for i, call in enumerate(calls):
        function = _get(call, "function")
        name = str(_get(function, "name") or "")
        raw = _get(function, "arguments")
        text = raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})
        arguments = _arguments(name, text, tools, provider=provider, model=model)
        out.append(ToolCall(str(_get(call, "id") or f"call_{i}"), name, arguments, text))
    return out


def _arguments(
    name: str, text: str, tools: ToolSchemas | None, *, provider: str, model: str
) -> dict[str, Any]:
    """The parsed arguments of a call of `name`, or OutputValidationError (`.text`: `text`)."""
    try:
        data = json.loads(text)
        problem = None if isinstance(data, dict) else "not a JSON object"
    except ValueError as exc:
        data, problem = None, f"not JSON: {exc}"
    if problem is None and tools is not None:
        if name not in tools:
            problem = f"no tool of that name was given (tools: {', '.join(sorted(tools))})"
        elif (schema := tools[name]) is not None:
            problem = validation_problem(schema, data)
    if problem is None:
        return data  # type: ignore[no-any-return]
    excerpt = text if len(text) <= 200 else f"{text[:200]}..."
    raise OutputValidationError(
        f"the model called tool {name!r} with arguments that do not "
        f"validate: {problem}; arguments: {excerpt!r} (the whole string is the error's .text)",
        provider=provider,
        model=model,
        text=text,
        validation_message=problem,
    )


class ToolCallDeltas:
    """A stream's tool-call deltas (OpenAI's `delta.tool_calls`: an `index`, the id and name
    once, the arguments in pieces) put together."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: Any) -> None:
        """Take in one chunk's `delta.tool_calls` (objects or dicts; None: nothing)."""
        for position, delta in enumerate(deltas or ()):
            index = _get(delta, "index")
            call = self.calls.setdefault(
                index if isinstance(index, int) else position, {"id": None, "name": "", "args": []}
            )
            call["id"] = _get(delta, "id") or call["id"]
            function = _get(delta, "function")
            call["name"] = _get(function, "name") or call["name"]
            piece = _get(function, "arguments")
            if isinstance(piece, str):
                call["args"].append(piece)

    def whole(self) -> list[dict[str, Any]]:
        """The calls so far in OpenAI's `message.tool_calls` shape, in index order."""
        return [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": "".join(call["args"])},
            }
            for _, call in sorted(self.calls.items())
        ]
