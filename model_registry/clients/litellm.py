"""The hosted adapter: every hosted provider through `litellm.acompletion`.

LiteLLM is imported on the first start of a client (off the event loop), never by
`import model_registry`. Its exceptions map to ours in one place, `map_litellm_error`.
LiteLLM keeps one process-wide pool of HTTP clients; the last hosted client to close
closes that pool, so file descriptors go back to where they were.
"""

from __future__ import annotations

import logging
import os
import re
import time
import weakref
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread

from model_registry.clients.base import BaseClient
from model_registry.errors import (
    APIError,
    AuthenticationError,
    BackendNotInstalledError,
    BadRequestError,
    ContentFilteredError,
    ContextWindowExceededError,
    InvalidParameterError,
    MissingCredentialsError,
    ModelCallError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
)
from model_registry.providers import BUILTIN_PROVIDERS
from model_registry.types import (
    REDACTED,
    ClientKind,
    Generation,
    Prompt,
    Usage,
    is_secret_key,
    to_messages,
)

if TYPE_CHECKING:
    from model_registry.resolve import Resolution

__all__ = ["LITELLM_ERROR_MAP", "LiteLLMClient", "map_litellm_error"]

_INSTALL_HINT = "pip install 'litellm>=1.109.1,<1.110'  (or: uv add litellm)"
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
#: Route prefixes served by the openai SDK, which refuses to run without some key.
_OPENAI_SDK_PREFIXES = frozenset({"openai", "custom_openai", "text-completion-openai"})
#: Sent to keyless OpenAI-compatible servers, so the user's OPENAI_API_KEY never goes there.
_NO_KEY_PLACEHOLDER = "no-key"

_litellm_module: ModuleType | None = None


def _litellm() -> ModuleType:
    """Import LiteLLM once, quietly and without network; raise an install hint if missing."""
    global _litellm_module
    if _litellm_module is not None:
        return _litellm_module
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"hosted models need LiteLLM, which is not installed: {_INSTALL_HINT}"
        ) from exc
    litellm.suppress_debug_info = True
    if "LITELLM_LOG" not in os.environ:
        for name in _LITELLM_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
    _litellm_module = litellm
    return litellm


# --- errors ----------------------------------------------------------------------

#: LiteLLM exception class name (in `litellm.exceptions`) -> our error. Most specific
#: classes are found first because lookup walks the raised exception's MRO.
LITELLM_ERROR_MAP: Mapping[str, type[ModelCallError]] = {
    # 400-family, most specific first in spirit; the MRO walk makes order irrelevant
    "ContextWindowExceededError": ContextWindowExceededError,
    "ContentPolicyViolationError": ContentFilteredError,
    "RejectedRequestError": ContentFilteredError,
    "GuardrailRaisedException": ContentFilteredError,
    "BlockedPiiEntityError": ContentFilteredError,
    "SensitiveDataRouteException": ContentFilteredError,
    "ImageFetchError": BadRequestError,
    "VectorStoreSearchError": BadRequestError,
    "MalformedRequestFieldError": BadRequestError,
    "UnsupportedEndpointError": BadRequestError,
    "EndpointNotSupportedByModelError": BadRequestError,
    "UnsupportedParamsError": BadRequestError,
    "PaymentRequiredError": BadRequestError,
    "LiteLLMUnknownProvider": BadRequestError,
    "UnprocessableEntityError": BadRequestError,
    "InvalidRequestError": BadRequestError,
    "BadRequestError": BadRequestError,
    "ModelNotMappedError": BadRequestError,
    # auth and permission
    "CallerCredentialAuthenticationError": AuthenticationError,
    "AuthenticationError": AuthenticationError,
    "PermissionDeniedError": PermissionDeniedError,
    "NotFoundError": NotFoundError,
    # load
    "CallerCredentialRateLimitError": RateLimitError,
    "RateLimitError": RateLimitError,
    "BudgetExceededError": RateLimitError,
    "Timeout": RequestTimeoutError,
    "MidStreamFallbackError": ServiceUnavailableError,
    "ServiceUnavailableError": ServiceUnavailableError,
    "BadGatewayError": ServiceUnavailableError,
    "InternalServerError": ServiceUnavailableError,
    "APIConnectionError": ServiceUnavailableError,
    # anything else the provider (or LiteLLM) reported; refined by status code below
    "APIResponseValidationError": APIError,
    "JSONSchemaValidationError": APIError,
    "ModifyResponseException": APIError,
    "MockException": APIError,
    "APIError": APIError,
    "OpenAIError": APIError,
}

#: Classes too generic to trust: their status code decides when it says more.
_GENERIC = frozenset({"APIError", "OpenAIError", "APIStatusError", "MockException"})

_BY_STATUS: Mapping[int, type[ModelCallError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: ContextWindowExceededError,
    422: BadRequestError,
    429: RateLimitError,
}

_LITELLM_PREFIX = re.compile(
    r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)?(?:\w+Exception(?:\s+\w+)?\s+-\s+)?"
)
_LITELLM_SUFFIX = re.compile(r"\s*Handle with `litellm\.\w+`\.?\s*$")


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _error_class(exc: BaseException, status: int | None) -> type[ModelCallError]:
    for klass in type(exc).__mro__:
        mapped = LITELLM_ERROR_MAP.get(klass.__name__)
        if mapped is not None and klass.__module__.split(".")[0] in ("litellm", "openai"):
            if klass.__name__ in _GENERIC and status is not None:
                return _class_for_status(status, mapped)
            return mapped
    if isinstance(exc, TimeoutError) or type(exc).__name__.endswith(("Timeout", "TimeoutError")):
        return RequestTimeoutError
    if isinstance(exc, ConnectionError) or type(exc).__name__ in {
        "ConnectError",
        "ReadError",
        "RemoteProtocolError",
        "ServerDisconnectedError",
        "ClientConnectionError",
    }:
        return ServiceUnavailableError
    return _class_for_status(status, APIError) if status is not None else APIError


def _class_for_status(status: int, default: type[ModelCallError]) -> type[ModelCallError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServiceUnavailableError
    return default


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def map_litellm_error(
    exc: BaseException, *, provider: str, model: str, secrets: Iterable[str] = ()
) -> ModelCallError:
    """Our error for a LiteLLM (or openai/httpx) exception, with every secret scrubbed.

    The caller raises it `from exc`, so the original stays as `__cause__`.
    """
    status = _status_code(exc)
    klass = _error_class(exc, status)
    raw = getattr(exc, "message", None)
    message = raw if isinstance(raw, str) and raw else (str(exc) or type(exc).__name__)
    message = _LITELLM_SUFFIX.sub("", _LITELLM_PREFIX.sub("", message.strip(), count=1)) or message
    if klass is RequestTimeoutError and status == 408 and not isinstance(exc, ModelCallError):
        status = None  # LiteLLM's Timeout carries a made-up 408; no HTTP status came back
    return klass(_scrub(message, secrets), provider=provider, model=model, status_code=status)


# --- the client ------------------------------------------------------------------


class LiteLLMClient(BaseClient):
    """A hosted model (OpenAI, Anthropic, Gemini, DeepSeek, OpenAI-compatible) via LiteLLM."""

    kind: ClassVar[ClientKind] = "hosted"
    default_concurrency: ClassVar[int | None] = 64

    #: Started, not yet closed hosted clients; the last one to close empties LiteLLM's pool.
    _open_clients: ClassVar[weakref.WeakSet[LiteLLMClient]] = weakref.WeakSet()

    def __init__(self, resolution: Resolution) -> None:
        super().__init__(resolution)
        spec = resolution.spec
        if resolution.route is None:
            raise InvalidParameterError(
                f"{resolution.name!r} is not a hosted model (provider {resolution.provider!r})"
            )
        self._route: str = resolution.route
        self._builtin = BUILTIN_PROVIDERS.get(spec.name) == spec
        # resolve() already put the provider's api_base into params; only keys go here
        self._extra: dict[str, Any] = {}
        given = self.params.get("api_key")
        if not given:
            env_value = os.environ.get(spec.api_key_env) if spec.api_key_env else None
            # A built-in provider pointed at your own api_base (an OpenAI-compatible server
            # such as `vllm serve`) may need no key; a declared provider's key variable is
            # part of its declaration and always required.
            own_server = self._builtin and self.params.get("api_base") is not None
            if spec.api_key_env and not env_value and not own_server:
                raise MissingCredentialsError(
                    f"no API key for provider {spec.name!r}: set {spec.api_key_env} "
                    f"or pass api_key=...",
                    provider=spec.name,
                    env_var=spec.api_key_env,
                )
            if env_value and not self._builtin:
                # LiteLLM does not know this provider's variable: hand the key over ourselves.
                self._extra["api_key"] = env_value
            elif not env_value and spec.route_prefix in _OPENAI_SDK_PREFIXES:
                # a placeholder, so the SDK runs and no other provider's key is sent here
                self._extra["api_key"] = _NO_KEY_PLACEHOLDER

    # --- lifecycle ----------------------------------------------------------------

    async def _start(self) -> None:
        if _litellm_module is None:
            await anyio.to_thread.run_sync(_litellm)
        LiteLLMClient._open_clients.add(self)

    async def _close(self) -> None:
        LiteLLMClient._open_clients.discard(self)
        if not LiteLLMClient._open_clients:
            await close_litellm_pool()

    # --- calls --------------------------------------------------------------------

    def _call_params(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self._extra, **self.params, **kwargs}
        if "stream" in params:
            raise InvalidParameterError(
                f"'stream' is not a kwarg of {self.name!r}: use client.stream(prompt) for a "
                "stream and client.generate(prompt) for a whole answer"
            )
        return params

    def _secrets(self, params: Mapping[str, Any]) -> list[str]:
        found = [v for k, v in params.items() if is_secret_key(k) and isinstance(v, str)]
        env_var = self.resolution.spec.api_key_env
        if env_var and os.environ.get(env_var):
            found.append(os.environ[env_var])
        return [s for s in found if s and s != _NO_KEY_PLACEHOLDER]

    def _map_error(self, exc: BaseException, params: Mapping[str, Any]) -> ModelCallError:
        return map_litellm_error(
            exc, provider=self.provider, model=self.model_id, secrets=self._secrets(params)
        )

    async def _generate(self, prompt: Prompt, kwargs: dict[str, Any]) -> Generation:
        self._check_open()
        params = self._call_params(kwargs)
        messages = to_messages(prompt)
        litellm = _litellm()
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(model=self._route, messages=messages, **params)
        except Exception as exc:
            raise self._map_error(exc, params) from exc
        latency = time.perf_counter() - started
        choice = response.choices[0] if response.choices else None
        message = getattr(choice, "message", None)
        return Generation(
            text=getattr(message, "content", None) or "",
            finish_reason=getattr(choice, "finish_reason", None),
            usage=_usage(getattr(response, "usage", None)),
            model=getattr(response, "model", None) or self.model_id,
            provider=self.provider,
            latency_s=latency,
            raw=response,
        )

    async def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        self._check_open()
        params = self._call_params(kwargs)
        messages = to_messages(prompt)
        litellm = _litellm()
        if "stream_options" not in params:
            # LiteLLM sends this on the wire only where the API takes it (OpenAI-compatible
            # routes) and otherwise uses it to emit the usage it parsed from the stream.
            params["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(
                model=self._route, messages=messages, stream=True, **params
            )
        except Exception as exc:
            raise self._map_error(exc, params) from exc
        pieces: list[str] = []
        finish_reason: str | None = None
        usage: Any = None
        model: str | None = None
        try:
            try:
                async for chunk in response:
                    model = getattr(chunk, "model", None) or model
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage
                    for choice in getattr(chunk, "choices", None) or ():
                        if getattr(choice, "index", 0) != 0:
                            continue
                        if choice.finish_reason is not None:
                            finish_reason = choice.finish_reason
                        delta = getattr(getattr(choice, "delta", None), "content", None)
                        if delta:
                            pieces.append(delta)
                            yield delta
            except Exception as exc:
                raise self._map_error(exc, params) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        yield Generation(
            text="".join(pieces),
            finish_reason=finish_reason,
            usage=_usage(usage),
            model=model or self.model_id,
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            raw=None,
        )


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
    )


async def close_litellm_pool() -> None:
    """Close LiteLLM's cached HTTP clients and forget them, so later calls make new ones."""
    if _litellm_module is None:
        return
    with anyio.CancelScope(shield=True):
        await _litellm_module.close_litellm_async_clients()
        _litellm_module.in_memory_llm_clients_cache.flush_cache()
        # LiteLLM logs each call from a background task on the caller's loop; stop it too,
        # so nothing of ours or LiteLLM's keeps running once the last client is closed.
        # It restarts by itself on the next call.
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await GLOBAL_LOGGING_WORKER.stop(timeout=5.0)
