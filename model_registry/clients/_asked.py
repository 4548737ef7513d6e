"""What a call asked for beyond text, and the extra fields of its Generation.

`parsed` (the answer validated against `response_format`, see `_structured`), `logprobs`
(one `TokenLogprob` shape from LiteLLM's OpenAI-style `choices[0].logprobs.content` and from
vLLM's per-position dicts) and `reasoning` (LiteLLM's `reasoning_content`; streams collect
`delta.reasoning_content` apart from the text deltas). Hosted log-probabilities asked for
and not returned leave `logprobs=None` (the answer is paid for: it is kept, with a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from model_registry.clients._structured import OutputSchema, output_schema
from model_registry.clients._tools import ToolSchemas, prepare_tools
from model_registry.errors import InvalidParameterError
from model_registry.types import TokenLogprob

__all__ = [
    "Asked",
    "HostedStreamExtras",
    "extra_fields",
    "field",
    "generation_extras",
    "hosted_extras",
    "hosted_request",
    "openai_logprobs",
    "vllm_logprobs",
]


class Asked(NamedTuple):
    """What one call asked for beyond text: a schema to validate, log-probabilities, and
    the tools it gave (their argument schemas by name)."""

    schema: OutputSchema | None
    logprobs: bool
    tools: ToolSchemas | None = None


def hosted_request(params: dict[str, Any], where: str) -> Asked:
    """Prepare one hosted call's params in place: `response_format` becomes what LiteLLM
    sends (a pydantic class as is, anything else as OpenAI's json_schema form)."""
    schema = output_schema(params.get("response_format"), where=where)
    if schema is not None:
        params["response_format"] = schema.wire
    logprobs = params.get("logprobs")
    if params.get("top_logprobs") is not None and not logprobs:
        raise InvalidParameterError(
            f"top_logprobs{where} needs logprobs=True as well (OpenAI's rule, kept for all "
            "backends)"
        )
    return Asked(schema, bool(logprobs), prepare_tools(params, where))


def generation_extras(asked: Asked, **fields: Any) -> dict[str, Any]:
    """The `parsed`, `logprobs` and `reasoning` fields of a Generation as a dict to splat
    in: `extra_fields` (same keywords) by name."""
    return dict(zip(_EXTRA_NAMES, extra_fields(asked, **fields), strict=True))


#: The names of what `extra_fields` returns, in its order.
_EXTRA_NAMES = ("parsed", "logprobs", "reasoning")


def extra_fields(
    asked: Asked,
    *,
    text: str,
    finish_reason: str | None,
    logprobs: list[TokenLogprob] | None,
    reasoning: str | None,
    provider: str,
    model: str,
) -> tuple[Any, list[TokenLogprob] | None, str | None]:
    """The `parsed`, `logprobs` and `reasoning` fields of a Generation.

    Raises `OutputValidationError` for an answer that does not validate, and
    `InvalidParameterError` when log-probabilities were asked for and none came back.
    """
    if asked.logprobs and logprobs is None:
        raise InvalidParameterError(
            f"logprobs=True was asked, but {provider} model {model!r} returned no "
            "log-probabilities: it does not support them (or its API dropped them); "
            "call it without logprobs"
        )
    parsed = (
        None
        if asked.schema is None
        else asked.schema.parse(text, provider=provider, model=model, finish_reason=finish_reason)
    )
    return parsed, logprobs if asked.logprobs else None, reasoning or None


def hosted_extras(response: Any, asked: Asked, *, provider: str, model: str) -> dict[str, Any]:
    """`generation_extras` of a LiteLLM `ModelResponse` (choice 0)."""
    choices = field(response, "choices") or ()
    choice = choices[0] if choices else None
    message = field(choice, "message")
    return generation_extras(
        asked,
        text=field(message, "content") or "",
        finish_reason=field(choice, "finish_reason"),
        logprobs=openai_logprobs(field(choice, "logprobs")),
        reasoning=field(message, "reasoning_content"),
        provider=provider,
        model=model,
    )


def field(obj: Any, name: str) -> Any:
    """`obj`'s `name` (a Mapping's key, else an attribute), None where it has none; quick on
    LiteLLM's pydantic objects: a name they lack is None without pydantic's `__getattr__`,
    which costs microseconds a miss."""
    pydantic = _PYDANTIC.get(type(obj))  # read here: a call fewer on every answer's fields
    if not (_is_pydantic(type(obj)) if pydantic is None else pydantic):
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    values = obj.__dict__
    if name in values:
        return values[name]
    for found in (obj.__pydantic_extra__, obj.__pydantic_private__):
        if found and name in found:
            return found[name]
    return getattr(obj, name, None) if _on_class(type(obj), name) else None


#: Per class: whether it is a pydantic model; per (class, name): whether the class has it.
_PYDANTIC: dict[type, bool] = {}
_ON_CLASS: dict[tuple[type, str], bool] = {}


def _is_pydantic(cls: type) -> bool:
    found = _PYDANTIC.get(cls)
    if found is None:
        found = any(
            k.__name__ == "BaseModel" and k.__module__ == "pydantic.main" for k in cls.__mro__
        )
        _PYDANTIC[cls] = found
    return found


def _on_class(cls: type, name: str) -> bool:
    found = _ON_CLASS.get((cls, name))
    if found is None:
        found = _ON_CLASS[cls, name] = any(name in k.__dict__ for k in cls.__mro__)
    return found


class HostedStreamExtras:
    """What a LiteLLM stream carries beside its text deltas: logprobs and reasoning text."""

    def __init__(self, asked: Asked) -> None:
        self.asked = asked
        self.logprobs: list[TokenLogprob] | None = None
        self.reasoning: list[str] = []

    def add(self, chunk: Any) -> None:
        """Take in one chunk (choice 0)."""
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue
            piece = getattr(getattr(choice, "delta", None), "reasoning_content", None)
            if isinstance(piece, str) and piece:
                self.reasoning.append(piece)
            tokens = openai_logprobs(getattr(choice, "logprobs", None))
            if tokens is not None:
                self.logprobs = (self.logprobs or []) + tokens

    def fields(
        self, text: str, finish_reason: str | None, *, provider: str, model: str
    ) -> dict[str, Any]:
        """The extra fields of the stream's final Generation."""
        return generation_extras(
            self.asked,
            text=text,
            finish_reason=finish_reason,
            logprobs=self.logprobs,
            reasoning="".join(self.reasoning) or None,
            provider=provider,
            model=model,
        )


def openai_logprobs(logprobs: Any) -> list[TokenLogprob] | None:
    """OpenAI-style `choices[0].logprobs` (objects or dicts) as TokenLogprobs; None when absent."""
    content = field(logprobs, "content") if logprobs is not None else None
    if content is None:
        return None
    return [
        TokenLogprob(
            token=str(field(item, "token")),
            logprob=float(field(item, "logprob")),
            top_logprobs=tuple(
                (str(field(top, "token")), float(field(top, "logprob")))
                for top in field(item, "top_logprobs") or ()
            ),
        )
        for item in content
    ]


def vllm_logprobs(token_ids: Any, logprobs: Any, k: int) -> list[TokenLogprob]:
    """vLLM's per-position `{token_id: Logprob}` dicts as TokenLogprobs: the chosen token, and
    the `k` alternatives of rank 1..k (vLLM adds the chosen token when it ranks lower)."""
    out = []
    for token_id, position in zip(token_ids, logprobs or (), strict=False):
        chosen = position.get(token_id)
        ranked = sorted(
            (entry for entry in position.values() if entry.rank is not None and entry.rank <= k),
            key=lambda entry: entry.rank,
        )
        out.append(
            TokenLogprob(
                token=(chosen.decoded_token or "") if chosen is not None else "",
                logprob=float(chosen.logprob) if chosen is not None else float("nan"),
                top_logprobs=tuple((e.decoded_token or "", float(e.logprob)) for e in ranked),
            )
        )
    return out
