"""Retries of a hosted call: ours, on tenacity, so that every attempt obeys the limits.

`num_retries` keeps LiteLLM's name and meaning (retries after the first attempt; the openai
SDK's `max_retries` is read as the same when `num_retries` is not given), with a default of
2 on every route, what the openai SDK made on OpenAI routes. LiteLLM itself is told to make
none: its retries were invisible to the rate limiter (each one a request no `rpm` counted),
the openai SDK's waited out a Retry-After alone while the other clients kept sending, and
off the SDK's routes LiteLLM's retry needs tenacity, which it does not install, so there
`num_retries` did nothing at all.

Retried: `TRANSIENT_ERRORS`, a 429 (`RateLimitError`), a 5xx (`ServiceUnavailableError`),
no response (`APIConnectionError`) and an attempt that timed out (`RequestTimeoutError`);
anything else is raised at once. Before each retry the call waits: the server's Retry-After
(plus up to a quarter of it, at most 5 s, so that the callers it paused do not all come back
in the same instant) or else exponential backoff with jitter (0.5, 1, 2 ... 8 s; 0.05, 0.1,
0.2 s for no response from a loopback address); then it goes
through the client's limits again (the provider's cooldown, a request from each `rpm`
bucket). A wait that would end past the call's timeout, or one over `MAX_RETRY_WAIT`, is not
started: the error is raised at once, with a note saying why (a fallback can take over).
A Retry-After over `MAX_RETRY_AFTER` (24 hours) counts as 24 hours.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import math
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from model_registry._events import CURRENT, HANDLERS, emit_in_call
from model_registry.errors import (
    TRANSIENT_ERRORS,
    APIConnectionError,
    InvalidParameterError,
    ModelCallError,
)
from model_registry.events import Attempt, Retry
from model_registry.limits import spread

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = [
    "DEFAULT_RETRIES",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_WAIT",
    "call_with_retries",
    "is_loopback",
    "retries_in",
    "retry_after_seconds",
    "retry_wait",
]

DEFAULT_RETRIES = 2
"""Retries after the first attempt when a call names no `num_retries`."""

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 8.0
_LOOPBACK_BACKOFF_FIRST = 0.05
_LOOPBACK_BACKOFF_MAX = 0.2
MAX_RETRY_WAIT = 60.0
"""A retry waits at most this long (the openai SDK's cap): a server that asks for more (a
quota spent for the hour) gets its error raised at once, so a fallback can take over."""
MAX_RETRY_AFTER = 86400.0
"""The longest pause a Retry-After can ask for: 24 hours (a date in 2100 asks for this)."""

_T = TypeVar("_T")


def retries_in(params: Mapping[str, Any], where: str) -> int:
    """The retries a call asks for: `num_retries`, else `max_retries`, else the default."""
    key = "num_retries" if params.get("num_retries") is not None else "max_retries"
    value = params.get(key)
    if value is None:
        return DEFAULT_RETRIES
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(
            f"{key!r} in {where} must be a whole number >= 0 (the retries after the first "
            f"attempt, e.g. num_retries=2), got {value!r}"
        )
    return value


def retry_wait(error: BaseException | None, attempt: int, *, loopback: bool = False) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...) after `error`; a call to a
    `loopback` address that got no response backs off briefly (a server on this machine
    that refuses is down or still starting: a long wait helps neither)."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return spread(float(retry_after))
    first, most = _BACKOFF_FIRST, _BACKOFF_MAX
    if loopback and isinstance(error, APIConnectionError):
        first, most = _LOOPBACK_BACKOFF_FIRST, _LOOPBACK_BACKOFF_MAX
    backoff = min(first * 2.0 ** (attempt - 1), most)
    return backoff * (1 - random.uniform(0, 0.25))


@functools.lru_cache(maxsize=64)
def is_loopback(api_base: str | None) -> bool:
    """Whether `api_base` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not api_base:
        return False
    host = urllib.parse.urlsplit(api_base).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def call_with_retries(
    attempt: Callable[[], Awaitable[_T]],
    *,
    retries: int,
    deadline: float,
    pause: Callable[[float], Awaitable[None]],
    loopback: bool = False,
) -> _T:
    """`await attempt()`, retried up to `retries` times on a `TRANSIENT_ERRORS` error.

    `pause(seconds)` runs between attempts: it waits `seconds` and whatever the limits ask
    for. `deadline` (anyio's clock) is the call's: no wait is started that would end past it.
    """
    if HANDLERS:
        attempt = _announced(attempt)
    try:
        return await attempt()
    except TRANSIENT_ERRORS as error:
        if retries == 0:
            raise
        failed: ModelCallError = error
    return await _retried(attempt, failed, retries, deadline, pause, loopback)


async def _retried(
    attempt: Callable[[], Awaitable[_T]],
    first_error: ModelCallError,
    retries: int,
    deadline: float,
    pause: Callable[[float], Awaitable[None]],
    loopback: bool,
) -> _T:
    """The retries after a first attempt that failed with `first_error`, on tenacity (it
    costs ~60 µs a call, the direct call ~0.5 µs). A function of its own: the closures
    below make their variables cells, which `call_with_retries` would make on every call."""
    import tenacity

    failed: ModelCallError | None = first_error

    async def attempts() -> _T:
        nonlocal failed
        if failed is not None:  # tenacity's attempt 1 is the one that just failed
            error, failed = failed, None
            raise error
        return await attempt()

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return retry_wait(error, state.attempt_number, loopback=loopback)

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
        stop=lambda state: _should_stop(state, retries, deadline),
        wait=wait,
        sleep=pause,
        before_sleep=_announce_retry,
        reraise=True,
    )
    result: _T = await retrying(attempts)  # a coroutine function: tenacity awaits it
    return result


def _announced(attempt: Callable[[], Awaitable[_T]]) -> Callable[[], Awaitable[_T]]:
    """`attempt`, emitting an `attempt` event (its number on this name) as it starts."""
    made = 0

    async def announced() -> _T:
        nonlocal made
        made += 1
        if (state := CURRENT.get()) is not None:
            state.attempts += 1  # the call's, every name of it
            emit_in_call(Attempt, number=made, started=time.time())
        return await attempt()

    return announced


def _announce_retry(state: RetryCallState) -> None:
    """Emit a `retry` event: which error, and how long the call waits before the next."""
    if "retry" not in HANDLERS:
        return
    error = state.outcome.exception() if state.outcome is not None else None
    status = getattr(error, "status_code", None)
    asked = getattr(error, "retry_after", None)  # retry_wait waits it out (spread)
    emit_in_call(
        Retry,
        attempt=state.attempt_number,
        error=type(error).__name__,
        status_code=status if isinstance(status, int) else None,
        wait_s=state.upcoming_sleep,
        retry_after=float(asked) if asked is not None else None,
    )


def _should_stop(state: RetryCallState, retries: int, deadline: float) -> bool:
    """Whether to give up after the attempt `state` holds (a note on the error says why,
    when it is the wait and not the count)."""
    if state.attempt_number > retries:
        return True
    error = state.outcome.exception() if state.outcome is not None else None
    asked = getattr(error, "retry_after", None) or 0.0
    now, wait = anyio.current_time(), state.upcoming_sleep
    if now + wait < deadline and asked <= MAX_RETRY_WAIT:
        return False
    if error is not None and asked > MAX_RETRY_WAIT:
        error.add_note(
            f"not retried: the server asked to wait {asked:.0f} s, over the "
            f"{MAX_RETRY_WAIT:.0f} s a retry waits"
        )
    elif error is not None and now < deadline:
        error.add_note(
            f"not retried: the wait before the next attempt ({wait:.1f} s) would end "
            f"past the call's timeout ({deadline - now:.1f} s left)"
        )
    return True


# -- Retry-After --------------------------------------------------------------------------


def retry_after_seconds(
    headers_or_value: Mapping[str, Any] | str | float | None, now: datetime | None = None
) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), in
    response headers (any case) or one value; None when absent, negative or unreadable; a
    date in the past gives 0.0; more than `MAX_RETRY_AFTER` gives that."""
    if isinstance(headers_or_value, Mapping):
        lowered = {str(k).lower(): v for k, v in headers_or_value.items()}
        millis = _seconds(lowered.get("retry-after-ms"), None)
        seconds = None if millis is None else millis / 1000
        if seconds is None:
            seconds = _seconds(lowered.get("retry-after"), now)
    else:
        seconds = _seconds(headers_or_value, now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _seconds(value: object, now: datetime | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return _date_seconds(text, now)
    return number if math.isfinite(number) and number >= 0 else None


def _date_seconds(text: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
