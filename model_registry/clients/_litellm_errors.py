"""LiteLLM's exceptions as ours: one map, one function, every secret scrubbed.

LiteLLM wraps what the server, the openai SDK and httpx raised, and makes statuses up on
the way (500 for a refused connection, 408 for its own timeout); the chain of exceptions
tells what really happened, so the class and status come from there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from model_registry._redaction import REDACTED
from model_registry.clients._litellm_no_answer import (
    connection_message,
    exception_text,
    is_connection_failure,
    not_http,
)
from model_registry.clients._policy.retries import retry_after_seconds
from model_registry.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextWindowExceededError,
    ModelCallError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
)

__all__ = ["LITELLM_ERROR_MAP", "invalid_stream_error", "map_litellm_error"]

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
    """`exc` and the exceptions it was raised from or while handling, outermost first
    (LiteLLM's mid-stream errors keep theirs as `original_exception`: it comes next)."""
    chain: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(chain) < 32:
        current = pending.pop()
        if current in chain:
            continue
        chain.append(current)
        following = [current.__cause__ or current.__context__]
        original = getattr(current, "original_exception", None)
        following.append(original if isinstance(original, BaseException) else None)
        pending.extend(e for e in following if e is not None)  # the original is popped first
    return chain


def _wire_status(chain: list[BaseException]) -> int | None:
    """The HTTP status the server really answered with, where the chain holds it.

    LiteLLM makes statuses up (500 for a refused connection, 408 for its own timeout,
    422 for an error object in a 200 answer); the openai SDK's and httpx's status
    errors carry the response that came back. An answer that was not HTTP has none
    (aiohttp reports it as a 400 of its own).
    """
    if not_http(chain) is not None:
        return None
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


def _error_class(exc: BaseException, status: int | None) -> type[ModelCallError]:
    for klass in type(exc).__mro__:
        mapped = LITELLM_ERROR_MAP.get(klass.__name__)
        if mapped is not None and klass.__module__.split(".")[0] in ("litellm", "openai"):
            if klass.__name__ in _GENERIC and status is not None:
                return _class_for_status(status, mapped)
            return mapped
    if _is_timeout(exc):
        return RequestTimeoutError
    if is_connection_failure(exc):
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
    if not_http(chain) is not None or any(is_connection_failure(e) for e in chain):
        return APIConnectionError, None, None
    found = _error_object(chain)
    if found is not None:
        return found[0], None, found[1]
    if any(
        isinstance(e, json.JSONDecodeError) or _INVALID_ANSWER in exception_text(e) for e in chain
    ):
        return APIError, None, _NOT_A_COMPLETION
    status = _status_code(exc)
    klass = _error_class(exc, status)
    if klass is RequestTimeoutError:
        status = None  # LiteLLM's Timeout carries a made-up 408
    return klass, status, None


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
    message = _without_litellm_prefixes(message)
    if klass is APIConnectionError:
        message = connection_message(chain, message)
    elif known == _NOT_A_COMPLETION:
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


def _without_litellm_prefixes(message: str) -> str:
    """LiteLLM's message without the class names it puts in front (several, when one of
    its errors wraps another) and its "Handle with `litellm...`" tail."""
    text = message.strip()
    while (stripped := _LITELLM_PREFIX.sub("", text, count=1)) not in ("", text):
        text = stripped
    return _LITELLM_SUFFIX.sub("", text) or message


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
