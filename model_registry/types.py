"""The bottom layer: the value types everything shares, and redaction.

`ProviderSpec` (how a provider is reached), `Resolution` (what a name resolved to),
`Generation` and `Usage` (an answer), messages and prompts. It imports only `errors` and
the bottom layer's private modules (`_redaction`, `_prompts`, the generated
`_litellm_providers`), so clients can depend on it and nothing above.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, Self

import msgspec

from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry._prompts import Message
from model_registry._redaction import (
    redact,
    secret_values,
    shown_dict,
    shown_fields,
    shown_repr,
)
from model_registry._tool_call import ToolCall

__all__ = [
    "Generation",
    "GenerationStream",
    "Message",
    "ProviderSpec",
    "Resolution",
    "TokenLogprob",
    "ToolCall",
    "Usage",
    "redact",
    "secret_values",
]

ClientKind = Literal["hosted", "local"]

if TYPE_CHECKING:  # a default needs typing_extensions before Python 3.13
    from typing_extensions import TypeVar

    ParsedT = TypeVar("ParsedT", default=Any)
else:
    from typing import TypeVar

    ParsedT = TypeVar("ParsedT")


class Usage(msgspec.Struct, frozen=True, repr_omit_defaults=True):
    """Token counts of one call (None where the provider did not report them).

    `cached_tokens`: prompt tokens read from the provider's prompt cache (vLLM: prefix-cache
    hits); `reasoning_tokens`: completion tokens spent on reasoning."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class TokenLogprob(msgspec.Struct, frozen=True):
    """One generated token, its log-probability and the top alternatives at its position
    (`(token, logprob)` pairs, most likely first; empty unless `top_logprobs` was asked).

    Under `response_format` the grammar masks tokens: a forced token shows 0.0 and a masked
    alternative `-inf`, which `to_dict()` writes as None (JSON has no infinity).
    """

    token: str
    logprob: float
    top_logprobs: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: a non-finite log-probability (`-inf`) becomes None."""
        return {
            "token": self.token,
            "logprob": _finite_or_none(self.logprob),
            "top_logprobs": [[t, _finite_or_none(lp)] for t, lp in self.top_logprobs],
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Generation(msgspec.Struct, Generic[ParsedT], frozen=True):
    """The answer to one prompt. `raw` is the backend's own response object.

    `cost` is LiteLLM's own figure in USD (None where unknown, e.g. local models);
    `name` is the model name that answered (the client's, or a fallback's);
    `from_store` is True for an answer read back from a results_db instead of a call.
    `parsed` is the validated answer when `response_format` was given (a model instance,
    a Struct, or plain data for a schema dict; `generate(p, response_format=Model)` is
    typed `Generation[Model]`), else None; `logprobs` the tokens with their
    log-probabilities when `logprobs=True` was asked; `reasoning` the provider's
    reasoning text where it returns one; `tool_calls` the tools the model called (with
    `finish_reason` "tool_calls"), else None.
    """

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    provider: str
    latency_s: float
    raw: Any = None
    cost: float | None = None
    name: str | None = None
    from_store: bool = False
    parsed: ParsedT = None  # type: ignore[assignment]  # None unless response_format was given
    logprobs: list[TokenLogprob] | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    #: The provider's batch job that answered (`generate_many(..., batch_api=True)`), else None.
    batch_id: str | None = None

    def __repr__(self) -> str:
        return shown_repr(
            self,
            _GENERATION_REPR,
            formats={"latency_s": ".3f"},
            unless_empty=("parsed", "reasoning", "tool_calls"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (without `raw`). `parsed`, `logprobs`, `reasoning` and
        `tool_calls` appear only when set: `parsed` as plain data, each logprob as `TokenLogprob.to_dict()`
        gives it (`-inf` as None)."""
        data = shown_dict(self, _GENERATION_DICT)
        if self.parsed is not None:
            data["parsed"] = _plain_parsed(self.parsed)
        if self.logprobs is not None:
            data["logprobs"] = [t.to_dict() for t in self.logprobs]
        if self.reasoning is not None:
            data["reasoning"] = self.reasoning
        if self.tool_calls is not None:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.batch_id is not None:
            data["batch_id"] = self.batch_id
        return data


def _plain_parsed(value: Any) -> Any:
    """A parsed answer as plain data: a pydantic model dumped, a Struct as builtins."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    return msgspec.to_builtins(value) if value is not None else None


_GENERATION_REPR = (
    "text",
    "finish_reason",
    "usage",
    "model",
    "provider",
    "latency_s",
    "cost",
    "name",
    "parsed",
    "reasoning",
    "tool_calls",
)
_GENERATION_DICT = (*_GENERATION_REPR[:-3], "from_store")


class GenerationStream:
    """Async iterator of text deltas; once exhausted, `result` is the whole `Generation`.

    Backends feed it an async generator that yields `str` deltas and, last, the `Generation`.
    """

    def __init__(self, events: AsyncGenerator[str | Generation, None]) -> None:
        self._events = events
        self._result: Generation | None = None

    @property
    def done(self) -> bool:
        """True once the stream has been read to its end (`result` is then set)."""
        return self._result is not None

    @property
    def result(self) -> Generation:
        """The whole `Generation`, once the stream has been read to its end.

        RuntimeError before that (not read yet, closed early, or failed)."""
        if self._result is None:
            raise RuntimeError(
                "the stream has no result yet: read it to its end first (async for delta in "
                "stream: ...); a stream closed early or failed has none"
            )
        return self._result

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        event = await self._events.__anext__()
        if isinstance(event, Generation):
            self._result = event
            await self._events.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop the stream early; the backend request is cancelled."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ProviderSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one provider is reached.

    `kind` picks the client: "hosted" goes through LiteLLM with the route
    `"{litellm_prefix}/{model_id}"`; "local" runs the weights in vLLM's async engine.
    `litellm_reads_key` is True where LiteLLM reads the provider's key from its own
    environment variable (the built-in providers, LiteLLM's providers by name); for the
    others the hosted client hands over the key named by `api_key_env` itself.
    """

    name: str
    kind: ClientKind = "hosted"
    litellm_prefix: str | None = None
    default_model: str | None = None
    name_prefixes: tuple[str, ...] = ()
    api_key_env: str | None = None
    api_base: str | None = None
    description: str = ""
    litellm_reads_key: bool = False

    def __post_init__(self) -> None:
        if not _PROVIDER_NAME.match(self.name):
            raise ValueError(
                f"provider name {self.name!r} is not valid: use letters, digits, '_', '-' or '.'"
            )
        if self.kind == "local":
            if self.litellm_prefix is not None:
                raise ValueError(f"provider {self.name!r}: a local provider has no litellm_prefix")
            return
        problem = litellm_prefix_problem(self.name, self.litellm_prefix, self.api_base)
        if problem is not None:
            raise ValueError(f"provider {self.name!r}: {problem}")

    @property
    def route_prefix(self) -> str:
        """The LiteLLM prefix of this provider's routes: `litellm_prefix` when set, else the
        provider's own name when LiteLLM knows it, else "openai" (an OpenAI-compatible
        `api_base`)."""
        if self.litellm_prefix:
            return self.litellm_prefix
        return self.name if self.name in LITELLM_PROVIDERS else "openai"

    @property
    def api_key_set(self) -> bool | None:
        """Whether the API-key variable is set (None: the provider needs no key)."""
        if self.api_key_env is None:
            return None
        return bool(os.environ.get(self.api_key_env))

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON, credentials redacted; says whether the key is set, never its value."""
        return {**shown_fields(self, _SPEC_SHOWN, _SPEC_SHOWN), "api_key_set": self.api_key_set}

    def __repr__(self) -> str:
        fields = self.__struct_fields__
        return shown_repr(self, fields, fields)

    def route(self, model_id: str) -> str | None:
        """The LiteLLM route string for `model_id` (None for local models)."""
        if self.kind == "local":
            return None
        return f"{self.route_prefix}/{model_id}"

    def default_params(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The params a name of this provider starts from (the one place a provider's
        `api_base` becomes a param): `api_base` when set, then `defaults` (an alias's),
        which win."""
        own = {} if self.api_base is None else {"api_base": self.api_base}
        return {**own, **defaults} if defaults else own


# what `list --full` shows of a provider (how the client treats its key is no setting)
_SPEC_SHOWN = tuple(f for f in ProviderSpec.__struct_fields__ if f != "litellm_reads_key")


def is_litellm_provider(name: str) -> bool:
    """True when `name` is one of LiteLLM's chat or embedding providers (known without importing it)."""
    return name in LITELLM_PROVIDERS


def litellm_prefix_problem(
    name: str, litellm_prefix: str | None, api_base: str | None
) -> str | None:
    """What is wrong with a hosted provider's LiteLLM prefix, or None when it is usable.

    One rule for `[providers]` tables and `register_provider()`: the prefix defaults to the
    provider's own name when LiteLLM knows it, and to "openai" only with an `api_base`.
    """
    if litellm_prefix is not None:
        if litellm_prefix in LITELLM_PROVIDERS:
            return None
        import difflib  # here: loaded by a mistake, not at import

        match = difflib.get_close_matches(
            litellm_prefix, sorted(LITELLM_PROVIDERS), n=1, cutoff=0.6
        )
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        return (
            f"litellm_prefix {litellm_prefix!r} is not a LiteLLM provider{hint}; use one of "
            "LiteLLM's providers, such as 'openai' (any OpenAI-compatible server) or 'hosted_vllm'"
        )
    if name in LITELLM_PROVIDERS or api_base is not None:
        return None
    return (
        f"{name!r} is not a LiteLLM provider, so its routes need a prefix: set litellm_prefix "
        "(the LiteLLM provider, e.g. 'hosted_vllm'), or api_base (an OpenAI-compatible "
        "endpoint, reached as 'openai/<model id>')"
    )


class Resolution(msgspec.Struct, frozen=True):
    """What a name resolved to, and why.

    `route` is the LiteLLM route string (None for local models); `params` is a
    read-only mapping of the alias defaults overridden by explicit kwargs.
    """

    name: str
    provider: str
    model_id: str
    route: str | None
    params: Mapping[str, Any]
    source: str
    alias: str | None
    spec: ProviderSpec
    warnings: tuple[str, ...] = ()

    @property
    def kind(self) -> ClientKind:
        """The client kind: "hosted" (LiteLLM) or "local" (vLLM)."""
        return self.spec.kind

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON, credentials redacted."""
        return shown_dict(self, _RESOLUTION_DICT, ("params",))

    def __repr__(self) -> str:
        return shown_repr(self, _RESOLUTION_REPR, ("params",), unless_empty=("warnings",))


_RESOLUTION_REPR = (
    "name",
    "provider",
    "model_id",
    "route",
    "params",
    "source",
    "alias",
    "warnings",
)
_RESOLUTION_DICT = (*_RESOLUTION_REPR[:4], "kind", *_RESOLUTION_REPR[4:])
