"""The limits one client calls under: its provider's limiter (shared by every client of
that provider, endpoint and key in the process), its name's, and `get_client(limits=)`'s.

A hosted client always has its provider's limiter (unlimited when none is declared), so a
429/503 with Retry-After (`ModelCallError.retry_after`) pauses every client of that
provider. When no limit is declared, a call only reads the cooldown's deadline: no
acquire, no token estimate.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from model_registry._events import HANDLERS, emit_in_call
from model_registry._prompts import Prompt
from model_registry.errors import ModelCallError, RateLimitError, RequestTimeoutError
from model_registry.events import Cooldown, LimiterWait
from model_registry.limits import (
    CooldownPastDeadline,
    Limiter,
    Limits,
    Permit,
    acquire,
    alias_key,
    estimate_tokens,
    limiter_for,
    provider_key,
    take_request,
    take_send,
)
from model_registry.types import Resolution

if TYPE_CHECKING:
    from model_registry._limits_bucket import Bucket, LoopState

__all__ = ["CallLimits", "call_timeout", "pace_send"]

logger = logging.getLogger("model_registry")
_LONG_COOLDOWN = 60.0  # seconds: a longer Retry-After is logged


class _Sending:
    """The running call's limiters with an `rpm` or `tpm`, and the tokens its permit was
    charged (paced at its first send only: a retry's tokens were charged with the first)."""

    def __init__(self, limiters: tuple[Limiter, ...], tokens: dict[Limiter, float]) -> None:
        self.limiters = limiters
        self.tokens = tokens


_sending: contextvars.ContextVar[_Sending | None] = contextvars.ContextVar(
    "model_registry_sending", default=None
)


async def pace_send(request: object) -> None:
    """An HTTP request hook: in a call holding a permit, wait for its limiters' sends
    buckets (the call's deadline still bounds the wait); a wait is a `limiter_wait`."""
    if (sending := _sending.get()) is not None:
        tokens, sending.tokens = sending.tokens, {}
        if "limiter_wait" not in HANDLERS:
            await take_send(sending.limiters, tokens)
            return
        limit = _send_holding(sending.limiters, tokens)
        started = time.perf_counter()
        await take_send(sending.limiters, tokens)
        _waited(limit, time.perf_counter() - started)


class CallLimits:
    """The limiters of one client; `binding` is False while no declared limit applies
    (rates no process reaches, `limits.UNREACHABLE_RPM` and `_TPM`, are not counted)."""

    def __init__(self, provider: str, model: str) -> None:
        self.limiters: tuple[Limiter, ...] = ()
        #: The provider's limiter: Retry-After cools it down (None: a local client without).
        self.cooldown: Limiter | None = None
        self.binding = False
        #: The limiters with an `rpm` or `tpm` (their sends are paced again at the send).
        self.paced: tuple[Limiter, ...] = ()
        self._counts_tokens = False
        self._params: Mapping[str, Any] = {}
        self._provider, self._model = provider, model

    def configure(
        self,
        resolution: Resolution,
        provider: Limits | None,
        alias: Limits | None,
        code: Limits | None,
    ) -> None:
        """Take the limiters of `resolution`'s provider (hosted: always), its name's (when
        declared) and `get_client(name, limits=)`'s (shared by the clients made with it)."""
        limiters: list[Limiter] = []
        params = resolution.params
        if resolution.kind == "hosted" or provider is not None:
            key = provider_key(resolution.provider, params.get("api_base"), _api_key(resolution))
            self.cooldown = limiter_for(key, provider or Limits())
            limiters.append(self.cooldown)
        if alias is not None:
            limiters.append(limiter_for(alias_key(resolution.name), alias))
        if code is not None:
            name = f"get_client({resolution.name!r}, limits=)"
            limiters.append(limiter_for(alias_key(name), code))
        self.limiters = tuple(limiters)
        counted = [limiter.counted for limiter in limiters if limiter.counted != Limits()]
        self.binding = bool(counted)
        self._counts_tokens = any(limits.tpm is not None for limits in counted)
        self.paced = tuple(
            limiter
            for limiter in limiters
            if limiter.counted.rpm is not None or limiter.counted.tpm is not None
        )
        self._params = params

    def cooldown_remaining(self) -> float:
        """Seconds until the provider's Retry-After pause ends (0.0 when none is in force)."""
        return 0.0 if self.cooldown is None else self.cooldown.cooldown_remaining()

    @contextlib.asynccontextmanager
    async def permit(
        self, prompt: Prompt, kwargs: Mapping[str, Any], deadline: float, timeout_s: Any
    ) -> AsyncIterator[Permit | None]:
        """A permit from every limiter (None when no limit binds; a cooldown is still
        waited), taken before `deadline` (anyio's clock; `math.inf` for none)."""
        if not self.binding:
            await self.before_retry(deadline, timeout_s)
            yield None
            return
        tokens = 0
        if self._counts_tokens:
            max_tokens = kwargs.get("max_tokens", self._params.get("max_tokens"))
            tokens = estimate_tokens(prompt, max_tokens if isinstance(max_tokens, int) else None)
        acquiring = acquire(self.limiters, tokens, deadline)
        watch = _Watch(self.limiters, tokens) if HANDLERS else None
        if deadline == math.inf:
            permit = await acquiring.__aenter__()
        else:
            with self._bounded(deadline, timeout_s):
                permit = await acquiring.__aenter__()
        if watch is not None:
            watch.done()
        try:
            paced = self.paced
            if not paced and _sending.get() is None:
                yield permit
                return
            token = _sending.set(_Sending(paced, dict(permit.charged)) if paced else None)
            try:
                yield permit
            finally:
                with contextlib.suppress(ValueError):  # a stream finalised in another context
                    _sending.reset(token)
        finally:
            await acquiring.__aexit__(None, None, None)

    async def before_retry(self, deadline: float = math.inf, timeout_s: Any = None) -> None:
        """Before an attempt: wait out any cooldown and, where an `rpm` binds, take a
        request from its bucket (the server counts a retry like any request)."""
        if self.binding:
            watch = _Watch(self.limiters, 0.0) if HANDLERS else None
            with self._bounded(deadline, timeout_s):
                await take_request(self.limiters, deadline)
            if watch is not None:
                watch.done()
        elif self.cooldown is not None and self.cooldown.cooldown_until:
            started = time.perf_counter()
            with self._bounded(deadline, timeout_s):
                await self.cooldown.wait_cooldown(deadline)
            if HANDLERS:
                _waited("cooldown", time.perf_counter() - started)

    @contextlib.contextmanager
    def _bounded(self, deadline: float, timeout_s: Any) -> Iterator[None]:
        """Waits for the limits that end by `deadline`: a cooldown past it raises
        RateLimitError at once, a limiter wait that reaches it RequestTimeoutError."""
        if deadline == math.inf:
            yield
            return
        with anyio.CancelScope(deadline=deadline) as scope:
            try:
                yield
            except CooldownPastDeadline as past:
                raise self._cooldown_error(past.seconds, timeout_s) from None
        if scope.cancelled_caught:
            raise RequestTimeoutError(
                f"the call could not start within timeout={timeout_s} s: it was still waiting "
                "for the declared limits (rpm, tpm, concurrency) of "
                f"{', '.join(limiter.key.name for limiter in self.limiters)}",
                provider=self._provider,
                model=self._model,
            )

    def _cooldown_error(self, seconds: float, timeout_s: Any) -> RateLimitError:
        return RateLimitError(
            f"not sent: {self._provider} asked every caller to wait (Retry-After) "
            f"{seconds:.0f} s more, past this call's timeout={timeout_s} s; try later, "
            "or give the call a fallback",
            provider=self._provider,
            model=self._model,
            retry_after=seconds,
        )

    def cool_down(self, error: ModelCallError) -> None:
        """A 429/503 with Retry-After pauses every client of this provider that long (a
        long pause is logged: calls waiting it out are not silently stuck)."""
        seconds, limiter = error.retry_after, self.cooldown
        if seconds is None or limiter is None:
            return
        if seconds > _LONG_COOLDOWN and seconds > limiter.cooldown_remaining() + 1:
            logger.warning(
                "%s asked to wait %.0f s (Retry-After): every call to it waits until %s",
                error.provider,
                seconds,
                _until(seconds),
            )
        limiter.cool_down(seconds)
        if HANDLERS:
            remaining = limiter.cooldown_remaining()
            emit_in_call(
                Cooldown, until=time.time() + remaining, seconds=remaining, retry_after=seconds
            )


_MEASURABLE_WAIT = 0.001  # seconds: a shorter wait for the limits is not reported


def _waited(limit: str, seconds: float) -> None:
    if seconds >= _MEASURABLE_WAIT:
        emit_in_call(LimiterWait, limit=limit, seconds=seconds)


class _Watch:
    """Times a wait for the limits; which limit holds it is read before it starts: a
    cooldown, then a full concurrency, then a `tpm` bucket without room for the call's
    tokens, else the `rpm` one (`tpm` or `concurrency` where no `rpm` is declared)."""

    def __init__(self, limiters: tuple[Limiter, ...], tokens: float) -> None:
        self.started = time.perf_counter()
        self.limit = _holding(limiters, tokens)

    def done(self) -> None:
        _waited(self.limit, time.perf_counter() - self.started)


def _holding(limiters: tuple[Limiter, ...], tokens: float) -> str:
    if any(limiter.cooldown_remaining() > 0 for limiter in limiters):
        return "cooldown"
    states = [limiter._state() for limiter in limiters]
    if any(state.slots is not None and state.slots.locked() for state in states):
        return "concurrency"
    for limiter, state in zip(limiters, states, strict=True):
        # the charge: the call's tokens, plus the debt (less the credit) of earlier calls
        need = tokens + limiter._token_balance
        if state.tokens is not None and (state.token_turn.locked() or _short(state.tokens, need)):
            return "tpm"
    return _rate_declared(states)


def _send_holding(limiters: tuple[Limiter, ...], tokens: Mapping[Limiter, float]) -> str:
    """Which limit holds a send (`limits.take_send`): a sends token bucket without room
    for the tokens its call was charged, else the rates declared."""
    states = [limiter._state() for limiter in limiters]
    for limiter, state in zip(limiters, states, strict=True):
        if state.token_sends is not None and _short(state.token_sends, tokens.get(limiter, 0.0)):
            return "tpm"
    return _rate_declared(states)


def _rate_declared(states: list[LoopState]) -> str:
    """The label of a wait no full bucket explains: `rpm` where declared, else `tpm`."""
    if any(state.requests is not None for state in states):
        return "rpm"
    return "tpm" if any(state.tokens is not None for state in states) else "concurrency"


def _short(bucket: Bucket, amount: float) -> bool:
    """Whether `bucket` makes a charge of `amount` wait: others wait on it, or it has less
    room than `amount` (a charge over its capacity is taken in parts: it waits)."""
    if amount <= 0:
        return False
    if bucket._turn.locked():
        return True
    level = max(bucket.level - (bucket._clock() - bucket.checked) * bucket.rate, 0.0)
    return bool(level + amount - bucket.capacity > 1e-9)


def call_timeout(params: Mapping[str, Any], kwargs: Mapping[str, Any]) -> float | None:
    """A call's `timeout` in seconds (None when unset, or not a number: the adapter's
    checks name that)."""
    timeout = kwargs.get("timeout", params.get("timeout"))
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return None
    return float(timeout)


def _until(seconds: float) -> str:
    """The local time `seconds` from now; with its date when that is another day."""
    now = time.time()
    then = time.localtime(now + seconds)
    same_day = time.localtime(now)[:3] == then[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", then)


def _api_key(resolution: Resolution) -> str | None:
    """The API key calls use (the provider limiter's key hashes it)."""
    key = resolution.params.get("api_key")
    env_var = resolution.spec.api_key_env
    if not key and env_var:
        key = os.environ.get(env_var)
    return key if isinstance(key, str) else None
