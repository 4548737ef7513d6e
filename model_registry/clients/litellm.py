"""The hosted adapter: every hosted provider through `litellm.acompletion`.

LiteLLM is imported on the first start of a client (off the event loop), never by
`import model_registry`. Its exceptions map to ours in one place, `map_litellm_error`,
and ours are raised without the original chained (its text may hold a key).
LiteLLM keeps one process-wide pool of HTTP clients; the last hosted client to close
closes that pool, and so does the end of each event loop that used it, so file
descriptors go back to where they were.

`timeout` (seconds) bounds a whole call: every retry, and for a stream every piece up to
the final `Generation`; past it the call raises RequestTimeoutError. It is also passed on
to LiteLLM, which applies it to each read.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import re
import time
import weakref
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import msgspec

from model_registry.clients._extras import HostedStreamExtras, hosted_extras, hosted_request
from model_registry.clients.base import BaseClient
from model_registry.errors import (
    APIConnectionError,
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
from model_registry.limits import retry_after_seconds
from model_registry.types import (
    REDACTED,
    ClientKind,
    Generation,
    Prompt,
    Resolution,
    Usage,
    secret_values,
    to_messages,
)

__all__ = ["LITELLM_ERROR_MAP", "LiteLLMClient", "invalid_stream_error", "map_litellm_error"]

_INSTALL_HINT = (
    "LiteLLM comes with model-registry: 'pip install model-registry-llm' (in a checkout: "
    "'uv sync', with --inexact to keep a vLLM installed by pip)"
)
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
#: Route prefixes served by the openai SDK, which refuses to run without some key.
_OPENAI_SDK_PREFIXES = frozenset({"openai", "custom_openai", "text-completion-openai"})
#: Sent to keyless OpenAI-compatible servers, so the user's OPENAI_API_KEY never goes there.
_NO_KEY_PLACEHOLDER = "no-key"
#: The hosts of the built-in providers' own APIs: only these get the key from the environment.
_OWN_HOSTS: Mapping[str, frozenset[str]] = {
    "openai": frozenset({"api.openai.com"}),
    "anthropic": frozenset({"api.anthropic.com"}),
    "gemini": frozenset({"generativelanguage.googleapis.com"}),
    "deepseek": frozenset({"api.deepseek.com"}),
}
#: Kwargs the client sets itself: a caller's value would clash or be silently dropped.
_RESERVED = {
    "model": "the model is the client's: get_client('provider:model-id') names it",
    "messages": "the prompt is generate()'s first argument",
    "stream": "use client.stream(prompt) for a stream and client.generate(prompt) for a "
    "whole answer",
    "results_db": "results_db is an argument of generate_many() and iter_many()",
    "limits": "limits are declared once: get_client(name, limits=...) or a [limits] table",
    "fallbacks": "fallbacks are declared once: get_client(name, fallbacks=[...]) or in the "
    "alias file",
    "strict": "strict is an argument of get_client() and resolve()",
}
#: Providers whose credentials LiteLLM may find outside the environment (files, metadata
#: servers) or that need none: their variables are not checked at start.
_UNCHECKED_CREDENTIALS = frozenset(
    {"ollama", "ollama_chat", "bedrock", "sagemaker", "vertex_ai", "vertex_ai_beta"}
)
#: Kwargs that LiteLLM takes as Python objects, not as JSON for the wire.
_OBJECT_KWARGS = frozenset({"response_format", "client", "logger_fn", "timeout"})

_litellm_module: ModuleType | None = None


def _litellm() -> ModuleType:
    """Import LiteLLM once, quietly and without network; raise an install hint if missing."""
    global _litellm_module
    if _litellm_module is not None:
        return _litellm_module
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # else every Anthropic call tries to fetch a beta-header map from GitHub
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    if os.environ.get("LITELLM_LOG") == "":
        # what `export LITELLM_LOG=` leaves; LiteLLM would fail on every call with it
        del os.environ["LITELLM_LOG"]
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
    "APIConnectionError": APIConnectionError,
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
    r"^(?:litellm\.\w+:\s*)?(?:(?:\w+ )?\w*Error:\s*)?(?:\w+Exception(?:\s+\w+)?\s+-\s+)?"
)
_LITELLM_SUFFIX = re.compile(r"\s*Handle with `litellm\.\w+`\.?\s*$")


#: Exceptions (by class name) that mean no response came: refused, reset, DNS, dropped.
_CONNECTION_ERRORS = frozenset(
    {
        "APIConnectionError",
        "ConnectError",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
        "ServerDisconnectedError",
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "ClientConnectionError",
        "ClientOSError",
        "ClientPayloadError",
    }
)
_INVALID_ANSWER = "Empty or invalid response from LLM endpoint"
_NOT_A_COMPLETION = (
    "the server answered HTTP 200 without a chat completion (an HTML page, an error object, "
    "an empty or broken body, or no event stream): check api_base and any proxy in front"
)


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or while handling, in that order."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 32:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _wire_status(chain: list[BaseException]) -> int | None:
    """The HTTP status the server really answered with, where the chain holds it.

    LiteLLM makes statuses up (500 for a refused connection, 408 for its own timeout,
    422 for an error object in a 200 answer); the openai SDK's and httpx's status
    errors carry the response that came back.
    """
    for exc in chain:
        module = type(exc).__module__.split(".")[0]
        name = type(exc).__name__
        if module == "openai" and hasattr(exc, "response") and hasattr(exc, "status_code"):
            status = exc.status_code
        elif module == "httpx" and name == "HTTPStatusError":
            status = getattr(getattr(exc, "response", None), "status_code", None)
        elif module == "aiohttp" and name == "ClientResponseError":
            status = getattr(exc, "status", None)
        else:
            continue
        if isinstance(status, int) and 100 <= status < 600:
            return status
    return None


def _is_timeout(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, TimeoutError) or name.endswith(("Timeout", "TimeoutError"))


def _is_connection_failure(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError) or type(exc).__name__ in _CONNECTION_ERRORS


def _error_class(exc: BaseException, status: int | None) -> type[ModelCallError]:
    for klass in type(exc).__mro__:
        mapped = LITELLM_ERROR_MAP.get(klass.__name__)
        if mapped is not None and klass.__module__.split(".")[0] in ("litellm", "openai"):
            if klass.__name__ in _GENERIC and status is not None:
                return _class_for_status(status, mapped)
            return mapped
    if _is_timeout(exc):
        return RequestTimeoutError
    if _is_connection_failure(exc):
        return APIConnectionError
    return _class_for_status(status, APIError) if status is not None else APIError


def _class_for_status(status: int, default: type[ModelCallError]) -> type[ModelCallError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServiceUnavailableError
    return default


def _class_for_code(code: Any) -> type[ModelCallError]:
    """The class for the `code` of an error object (an HTTP status, or anything else)."""
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        return _class_for_status(code, APIError)
    return APIError


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _error_object(chain: list[BaseException]) -> tuple[type[ModelCallError], str] | None:
    """An error object inside a 200 answer (LiteLLM raises a bare Exception for it)."""
    for exc in chain:
        if type(exc) is Exception and isinstance(getattr(exc, "message", None), str):
            code = getattr(exc, "status_code", None)
            klass = _class_for_code(code)
            return klass, exc.message  # type: ignore[attr-defined]
    return None


def _classify(
    exc: BaseException, chain: list[BaseException]
) -> tuple[type[ModelCallError], int | None, str | None]:
    """Our class, the server's status (None if none came) and a message, where known."""
    wire = _wire_status(chain)
    if wire is not None:
        return _error_class(exc, wire), wire, None
    if any(_is_timeout(e) for e in chain):
        return RequestTimeoutError, None, None
    if any(_is_connection_failure(e) for e in chain):
        return APIConnectionError, None, None
    found = _error_object(chain)
    if found is not None:
        return found[0], None, found[1]
    if any(isinstance(e, json.JSONDecodeError) or _INVALID_ANSWER in _text(e) for e in chain):
        return APIError, None, _NOT_A_COMPLETION
    status = _status_code(exc)
    klass = _error_class(exc, status)
    if klass is RequestTimeoutError:
        status = None  # LiteLLM's Timeout carries a made-up 408
    return klass, status, None


def _text(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    try:
        return str(exc)
    except Exception:  # some LiteLLM exceptions fail to print when half-built
        return ""


def _cause_type(exc: BaseException) -> str:
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"


def map_litellm_error(
    exc: BaseException, *, provider: str, model: str, secrets: Iterable[str] = ()
) -> ModelCallError:
    """Our error for a LiteLLM (or openai/httpx) exception, with every secret scrubbed.

    `status_code` is the status the server answered with (None when no response came);
    `cause_type` names the original's class. The caller raises it `from None`, outside
    the `except` block: the original (whose text may hold a key) is not chained.
    """
    chain = _chain(exc)
    klass, status, known = _classify(exc, chain)
    raw = getattr(exc, "message", None)
    message = raw if isinstance(raw, str) and raw else (str(exc) or type(exc).__name__)
    message = _LITELLM_SUFFIX.sub("", _LITELLM_PREFIX.sub("", message.strip(), count=1)) or message
    if known == _NOT_A_COMPLETION:
        message = f"{known}; {message}"
    elif known is not None:
        message = known
    return klass(
        _scrub(message, secrets),
        provider=provider,
        model=model,
        status_code=status,
        cause_type=_cause_type(exc),
        retry_after=_retry_after(chain) if status in (429, 503) else None,
    )


def _retry_after(chain: list[BaseException]) -> float | None:
    """The wait a 429/503 asked for: `retry-after-ms` or `Retry-After` of its response."""
    for exc in chain:
        for headers in (
            getattr(getattr(exc, "response", None), "headers", None),
            getattr(exc, "headers", None),
            getattr(exc, "litellm_response_headers", None),
        ):
            if isinstance(headers, Mapping) or hasattr(headers, "items"):
                seconds = retry_after_seconds(dict(headers.items()))  # type: ignore[union-attr]
                if seconds is not None:
                    return seconds
    return None


def invalid_stream_error(
    body: str, *, provider: str, model: str, secrets: Iterable[str] = ()
) -> ModelCallError:
    """The error for a 200 answer to a stream request that holds no event stream.

    The same class and status as `generate()` gets for that answer: an error object
    maps by its `code` (an HTTP status; none: BadRequestError), as LiteLLM reads one in
    a plain answer; anything else is an APIError. `status_code` is None: the server said 200.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and (error.get("message") or error.get("code") is not None):
        # as LiteLLM reads an error object in a plain answer: without a code it is a 422
        klass = _class_for_code(error.get("code", 422))
        message = str(error.get("message") or "Error in response object")
    else:
        klass = APIError
        snippet = body.strip()[:200]
        message = f"{_NOT_A_COMPLETION}; received: {snippet!r}"
    return klass(
        _scrub(message, secrets),
        provider=provider,
        model=model,
        status_code=None,
        cause_type=None,
    )


# --- the client ------------------------------------------------------------------


class LiteLLMClient(BaseClient):
    """A hosted model (OpenAI, Anthropic, Gemini, DeepSeek, OpenAI-compatible) via LiteLLM.

    `aclose()` cancels the calls still in flight (they raise ClientClosedError) and returns
    once they have stopped; the last hosted client to close closes LiteLLM's pool.
    """

    kind: ClassVar[ClientKind] = "hosted"
    default_concurrency: ClassVar[int | None] = 64

    #: Started, not yet closed hosted clients; the last one to close empties LiteLLM's pool.
    _open_clients: ClassVar[weakref.WeakSet[LiteLLMClient]] = weakref.WeakSet()

    def __init__(self, resolution: Resolution) -> None:
        super().__init__(resolution)
        if resolution.route is None:
            raise InvalidParameterError(
                f"{resolution.name!r} is not a hosted model (provider {resolution.provider!r})"
            )
        _check_params(self.params, f"get_client({resolution.name!r})")
        self._route: str = resolution.route
        spec = resolution.spec
        self._builtin = spec.litellm_reads_key and spec.api_key_env is not None
        # resolve() already put the provider's api_base into params; only keys go here
        self._extra: dict[str, Any] = self._key_params(self.params)

    def _key_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The key to add to `params` (which may name api_key and api_base), if any."""
        spec = self.resolution.spec
        if params.get("api_key"):
            return {}
        api_base = params.get("api_base")
        if self._builtin and api_base is not None and not _is_own_api(spec.name, api_base):
            # A built-in provider pointed at another server (`vllm serve`, a proxy) gets a
            # key only when api_key is given: the placeholder keeps LiteLLM and the SDK
            # from reaching for the provider's key variable and sending it there.
            return {"api_key": _NO_KEY_PLACEHOLDER}
        env_value = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        if spec.api_key_env and not env_value:
            raise MissingCredentialsError(
                f"no API key for provider {spec.name!r}: set {spec.api_key_env} "
                f"or pass api_key=...",
                provider=spec.name,
                env_var=spec.api_key_env,
            )
        if env_value and not self._builtin:
            # LiteLLM does not know this provider's variable: hand the key over ourselves.
            return {"api_key": env_value}
        if not env_value and spec.route_prefix in _OPENAI_SDK_PREFIXES:
            # a placeholder, so the SDK runs and no other provider's key is sent here
            return {"api_key": _NO_KEY_PLACEHOLDER}
        return {}

    # --- lifecycle ----------------------------------------------------------------

    async def _start(self) -> None:
        if _litellm_module is None:
            await anyio.to_thread.run_sync(_litellm)
        self._check_litellm_credentials()
        LiteLLMClient._open_clients.add(self)

    def _check_litellm_credentials(self) -> None:
        """For a LiteLLM provider by name (whose key variables only LiteLLM knows), raise
        MissingCredentialsError naming every variable it lacks, before any call."""
        spec = self.resolution.spec
        if spec.api_key_env is not None or not spec.litellm_reads_key:
            return  # ours: _key_params checked the key already
        if self.params.get("api_key") or spec.route_prefix in _UNCHECKED_CREDENTIALS:
            return
        api_base = self.params.get("api_base")
        found = _litellm().validate_environment(model=self._route, api_base=api_base)
        missing = [
            var
            for var in found.get("missing_keys") or ()
            if not (api_base and var.endswith(("_API_BASE", "_BASE_URL", "_ENDPOINT")))
        ]
        if missing:
            raise MissingCredentialsError(
                f"no credentials for provider {spec.name!r}: set {' and '.join(missing)} "
                "(or pass api_key=...)",
                provider=spec.name,
                env_var=missing[0],
                env_vars=tuple(missing),
            )

    async def _close(self) -> None:
        LiteLLMClient._open_clients.discard(self)
        if not LiteLLMClient._open_clients:
            await close_litellm_pool()

    # --- calls --------------------------------------------------------------------

    def _call_params(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
        """What goes to LiteLLM for one call (each mutable value a copy), and its timeout."""
        if kwargs:
            _check_params(kwargs, f"a call to {self.name!r}")
            extra = self._extra
            if "api_base" in kwargs or "api_key" in kwargs:
                extra = self._key_params({**self.params, **kwargs})
            params = {**extra, **self.params, **kwargs}
        else:
            params = {**self._extra, **self.params}
        for key, value in params.items():
            if isinstance(value, dict | list | set):
                # LiteLLM writes into some of what it is given (`metadata`): never ours
                params[key] = copy.deepcopy(value)
        return params, params.get("timeout")

    def _secrets(self, params: Mapping[str, Any]) -> list[str]:
        found = secret_values(params)
        env_var = self.resolution.spec.api_key_env
        if env_var and os.environ.get(env_var):
            found.append(os.environ[env_var])
        return [s for s in found if s and s != _NO_KEY_PLACEHOLDER]

    def _map_error(self, exc: BaseException, params: Mapping[str, Any]) -> ModelCallError:
        return map_litellm_error(
            exc, provider=self.provider, model=self.model_id, secrets=self._secrets(params)
        )

    async def _generate(self, prompt: Prompt, kwargs: dict[str, Any]) -> Generation:
        params, timeout = self._call_params(kwargs)
        asked = hosted_request(params, f" in a call to {self.name!r}")  # issue 21
        messages = to_messages(prompt)
        if asyncio.get_running_loop() not in _loop_watchers:
            await _watch_this_loop()
        litellm = _litellm()
        started = time.perf_counter()
        error: ModelCallError | None = None
        with self._call_step(self._deadline(timeout), timeout):
            try:
                response = await litellm.acompletion(model=self._route, messages=messages, **params)
            except Exception as exc:
                error = self._map_error(exc, params)
        if error is not None:
            raise error from None  # outside `except`: the original (and any key) stays out
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
            cost=_cost(response),
            name=self.name,
            **hosted_extras(response, asked, provider=self.provider, model=self.model_id),
        )

    async def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        params, timeout = self._call_params(kwargs)
        extras = HostedStreamExtras(hosted_request(params, f" in a call to {self.name!r}"))
        messages = to_messages(prompt)
        if asyncio.get_running_loop() not in _loop_watchers:
            await _watch_this_loop()
        if "stream_options" not in params:
            # LiteLLM sends this on the wire only where the API takes it (OpenAI-compatible
            # routes) and otherwise uses it to emit the usage it parsed from the stream.
            params["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        deadline = self._deadline(timeout)
        limit = (deadline, timeout)
        response = await self._open_stream(messages, params, limit)
        state = _StreamState()
        try:
            while (chunk := await self._next_chunk(response, params, limit)) is not None:
                extras.add(chunk)  # logprobs, reasoning text: never text deltas
                for delta in state.add(chunk):
                    yield delta
            if not state.pieces and getattr(response, "received_finish_reason", None) is None:
                raise self._invalid_stream("", params)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await response.aclose()
        whole = state.generation(self, time.perf_counter() - started)
        fields = extras.fields(
            whole.text, whole.finish_reason, provider=self.provider, model=self.model_id
        )
        yield msgspec.structs.replace(whole, **fields)

    async def _open_stream(
        self, messages: list[Any], params: dict[str, Any], limit: tuple[float, float | None]
    ) -> Any:
        """LiteLLM's stream for this call, once the server has answered with an event stream.

        `limit`: the call's (deadline, timeout), as `_call_step` takes them.
        """
        litellm = _litellm()
        error: ModelCallError | None = None
        body: str | None = None
        with self._call_step(*limit):
            try:
                response = await litellm.acompletion(
                    model=self._route, messages=messages, stream=True, **params
                )
                body = await _body_if_not_event_stream(response)
            except Exception as exc:
                error = self._map_error(exc, params)
        if error is not None:
            raise error from None
        if body is not None:
            raise self._invalid_stream(body, params)
        return response

    async def _next_chunk(
        self, response: Any, params: dict[str, Any], limit: tuple[float, float | None]
    ) -> Any:
        """The stream's next chunk, or None at its end."""
        error: ModelCallError | None = None
        with self._call_step(*limit):
            try:
                return await response.__anext__()
            except StopAsyncIteration:
                return None
            except Exception as exc:
                error = self._map_error(exc, params)
        assert error is not None
        raise error from None

    def _invalid_stream(self, body: str, params: Mapping[str, Any]) -> ModelCallError:
        return invalid_stream_error(
            body, provider=self.provider, model=self.model_id, secrets=self._secrets(params)
        )


class _StreamState:
    """What a stream has said so far: the text pieces, the finish reason, usage and model."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.cost: float | None = None
        self.model: str | None = None

    def add(self, chunk: Any) -> Iterator[str]:
        """Take in one chunk; yield its text delta (of choice 0), if any."""
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
            # LiteLLM prices the stream once, at its end (stream_chunk_builder), and puts
            # that figure on the usage chunk it sends last.
            self.cost = _cost(chunk)
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
            delta = getattr(getattr(choice, "delta", None), "content", None)
            if delta:
                self.pieces.append(delta)
                yield delta

    def generation(self, client: LiteLLMClient, latency: float) -> Generation:
        """The whole answer."""
        return Generation(
            text="".join(self.pieces),
            finish_reason=self.finish_reason,
            usage=_usage(self.usage),
            model=self.model or client.model_id,
            provider=client.provider,
            latency_s=latency,
            raw=None,
            cost=self.cost,
            name=client.name,
        )


async def _body_if_not_event_stream(response: Any) -> str | None:
    """The body of an answer to a stream request that says it is no event stream, else None."""
    raw = getattr(getattr(response, "completion_stream", None), "response", None)
    headers = getattr(raw, "headers", None)
    if raw is None or headers is None or not hasattr(raw, "aread"):
        return None  # not the openai SDK's stream: the end of the stream tells instead
    content_type = str(headers.get("content-type") or "")
    if not content_type or "event-stream" in content_type:
        return None
    data = await raw.aread()
    return bytes(data).decode("utf-8", "replace")


# --- parameters and secrets ------------------------------------------------------


def _is_own_api(provider: str, api_base: Any) -> bool:
    """Whether `api_base` is the built-in `provider`'s own API (not another server)."""
    if not isinstance(api_base, str):
        return False
    try:
        host = urlsplit(api_base).hostname
    except ValueError:
        return False
    return host is not None and host in _OWN_HOSTS.get(provider, frozenset())


def _check_params(params: Mapping[str, Any], where: str) -> None:
    """Reject, before any network, kwargs that are ours, unsendable or misleading."""
    for key, value in params.items():
        if key in _RESERVED:
            raise InvalidParameterError(f"{key!r} is not a kwarg of {where}: {_RESERVED[key]}")
        if key == "n" and value is not None and (value != 1 or isinstance(value, bool)):
            raise InvalidParameterError(
                f"n={value!r}: each call returns one answer; for several samples repeat the "
                "prompt in generate_many"
            )
        if key == "timeout":
            _check_timeout(value, where)
        elif key not in _OBJECT_KWARGS:
            problem = _not_json(value)
            if problem is not None:
                raise InvalidParameterError(
                    f"{key}={value!r} in {where} cannot be sent as JSON ({problem}): pass "
                    "strings, numbers, true/false, lists and dicts (a date as its ISO "
                    "string, e.g. '1979-05-27')"
                )


def _check_timeout(value: Any, where: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        raise InvalidParameterError(
            f"'timeout' in {where} must be a positive number of seconds, got {value!r}"
        )


def _not_json(value: Any) -> str | None:
    """What in `value` JSON cannot hold (a type name), or None when all of it can."""
    if value is None or isinstance(value, str | int | float | type):
        return None  # a class passes: LiteLLM turns pydantic models into schemas
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"a {type(key).__name__} key"
            problem = _not_json(item)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        return next((p for p in map(_not_json, value) if p is not None), None)
    return f"a {type(value).__name__}"


def _cost(response: Any) -> float | None:
    """LiteLLM's own price of a call in USD (`_hidden_params["response_cost"]`, which it
    computes once per call), or None where it has none (a model it does not price)."""
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost == cost:
        return float(cost)
    return None


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
    )


# --- LiteLLM's process-wide pool -------------------------------------------------

#: Event loops whose end closes LiteLLM's pool (a suspended async generator per loop).
_loop_watchers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}


async def _watch_loop(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    # Suspended for the loop's lifetime: asyncio.run() closes it in shutdown_asyncgens(),
    # while the loop still runs, so the pool and LiteLLM's logging task go with the loop
    # (a one-liner `asyncio.run(get_client(n).generate(p))` leaves nothing behind).
    try:
        yield
    finally:
        _loop_watchers.pop(loop, None)
        await close_litellm_pool()


async def _watch_this_loop() -> None:
    """Close LiteLLM's pool when the running event loop ends."""
    loop = asyncio.get_running_loop()
    if loop in _loop_watchers:
        return
    for old in [old for old in _loop_watchers if old.is_closed()]:
        del _loop_watchers[old]
    watcher = _watch_loop(loop)
    _loop_watchers[loop] = watcher
    await watcher.__anext__()


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
