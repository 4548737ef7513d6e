"""Local reasoning and `tool_choice="auto"`: a request's output read by vLLM's own parsers.

A reasoning parser (vLLM's engine arg `reasoning_parser`, e.g. "qwen3" or "deepseek_r1")
splits the thinking from the answer; a tool-call parser (our option `tool_call_parser`,
e.g. "hermes") finds the tool calls that a model wrote in its own markup. Both go through
vLLM's unified `Parser` (as `vllm serve` composes them): `parse` on the whole output,
`parse_delta` on each streamed delta, so reasoning and tool-call markup stay out of the
text deltas. The engine arg also keeps `response_format` and "required" tool calls from
constraining the thinking (vLLM applies the grammar after the reasoning ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_registry.errors import InvalidParameterError

__all__ = ["OutputParsing", "Parsed", "output_parsing", "reasoning_parser_name"]


class Parsed:
    """A whole output split by the parsers: reasoning, answer text, tool calls (wire shape)."""

    def __init__(
        self,
        reasoning: str | None,
        text: str,
        calls: list[dict[str, Any]] | None,
        reasoning_tokens: int | None,
    ) -> None:
        self.reasoning = reasoning
        self.text = text
        self.calls = calls
        self.reasoning_tokens = reasoning_tokens


class OutputParsing:
    """One request's parsers: text deltas without reasoning or tool-call markup while it
    streams, and the whole output split at the end."""

    def __init__(self, parser_cls: Any, tokenizer: Any, tools: Any, reasoning: bool) -> None:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        self._cls, self._tokenizer, self._reasoning = parser_cls, tokenizer, reasoning
        wire = None if tools is None or not tools.auto else tools.wire
        request = ChatCompletionRequest.model_validate(
            {
                "model": "local",
                "messages": [],
                "tools": wire,
                "tool_choice": "auto" if wire else None,
            }
        )
        self._auto = wire is not None
        self._stream = parser_cls(tokenizer, request.tools)
        self.request = self._stream.adjust_request(request)

    def adjust(self, sampling: dict[str, Any]) -> None:
        """What the parsers ask of the request (hermes: keep special tokens in the text)."""
        if self.request.skip_special_tokens is False:
            sampling.setdefault("skip_special_tokens", False)

    def delta(self, text: str, out: Any) -> str:
        """The answer text in one streamed output (reasoning and tool calls held back)."""
        completion = out.outputs[0]
        message = self._stream.parse_delta(
            text,
            list(completion.token_ids),
            self.request,
            prompt_token_ids=list(out.prompt_token_ids or ()),
            finished=bool(out.finished),
        )
        return (message.content or "") if message is not None else ""

    def whole(self, text: str, token_ids: list[int]) -> Parsed:
        """The whole output split into reasoning, answer text and tool calls."""
        parser = self._cls(self._tokenizer, self.request.tools)
        reasoning, content, calls = parser.parse(
            text, self.request, enable_auto_tools=self._auto, model_output_token_ids=token_ids
        )
        wire = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls or ()
        ]
        counted = parser.count_reasoning_tokens(token_ids) if self._reasoning else None
        return Parsed(reasoning, content or "", wire or None, counted)


def reasoning_parser_name(engine_args: Mapping[str, Any]) -> str | None:
    """The reasoning parser the engine was started with (engine arg `reasoning_parser`, or
    `structured_outputs_config.reasoning_parser`); None without one."""
    name = engine_args.get("reasoning_parser")
    config = engine_args.get("structured_outputs_config")
    if not name and isinstance(config, Mapping):
        name = config.get("reasoning_parser")
    return str(name) if name else None


def output_parsing(
    entry: Any, engine_args: Mapping[str, Any], options: Mapping[str, Any], tools: Any
) -> OutputParsing | None:
    """The request's parsers, None when the engine has no reasoning parser and the call
    no `tool_choice="auto"`; `tools`: the call's `LocalTools` (None without tools)."""
    reasoning = reasoning_parser_name(engine_args)
    tool_parser = options.get("tool_call_parser") if tools is not None and tools.auto else None
    if reasoning is None and tool_parser is None:
        return None
    key = (tool_parser, reasoning)
    parser_cls = entry.parsers.get(key)
    if parser_cls is None:
        parser_cls = entry.parsers[key] = _parser_class(entry, tool_parser, reasoning)
    return OutputParsing(parser_cls, entry.tokenizer, tools, reasoning is not None)


def _parser_class(entry: Any, tool_parser: str | None, reasoning: str | None) -> Any:
    from vllm.parser.parser_manager import ParserManager
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    for kind, name, manager in (
        ("tool_call_parser", tool_parser, ToolParserManager),
        ("reasoning_parser", reasoning, ReasoningParserManager),
    ):
        known = manager.list_registered()
        if name is not None and name not in known:
            raise InvalidParameterError(
                f"{kind}={name!r} is not one of vLLM's parsers; pick one of "
                f"{', '.join(sorted(known))} (the one for the model's family, e.g. 'hermes' "
                "for Qwen tool calls, 'qwen3' or 'deepseek_r1' for reasoning)"
            )
    try:
        return ParserManager.get_parser(
            tool_parser_name=tool_parser,
            reasoning_parser_name=reasoning,
            enable_auto_tools=tool_parser is not None,
            tokenizer=entry.tokenizer,
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidParameterError(
            f"model {entry.model!r}: the parsers (tool_call_parser={tool_parser!r}, "
            f"reasoning_parser={reasoning!r}) do not fit its tokenizer: {exc}; pick the "
            "parsers made for this model's family"
        ) from exc
