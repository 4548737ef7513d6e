"""Declared rate limits: requests and tokens per minute, calls in flight, cooldowns.

One `Limiter` per `LimitKey`, shared by every client in the process: a provider's key is
(provider, api_base, a salted hash of the API key), an alias's key is its name. A call
holds a permit from each limiter that applies (provider's, then alias's):

    async with acquire([provider_limiter, alias_limiter], estimated_tokens) as permit:
        generation = await call()
        permit.report_usage(generation.usage.total_tokens)

`rpm` and `tpm` are leaky buckets (`_limits_bucket.Bucket`) with a burst B of 0.4 s worth (at least
1), refilling at 0.99 (rpm - B)/60 a second: W seconds hold at most
B + 0.99 (rpm - B) * W/60, so any 60 s window at most 0.99 `rpm` + B/100 (a server's
sliding minute) and any 1 s window at most about 1.4x rpm/60 (a strict server allows 1.5x):
the margins absorb requests that reach the server a little later than they left here.
A new requests bucket lets one request go at once, then the rate (no burst at start), and
so does one whose cooldown just ended (the calls it paused do not resume in one burst).
Below 2 rpm (B = 1) the rate is 0.99 rpm/120 a second (a minute still holds one).
Tokens likewise with `tpm`: a request is charged `estimate_tokens(...)` before it starts
and corrected by `report_usage` (unused tokens are credit for the next request, extra ones
a debt); a charge larger than the bucket is taken in bucket-sized parts.
Where an adapter hooks the HTTP send, `take_send` spaces the sends too (a second bucket
for requests and one for the tokens each request was charged): a lagging loop can bunch
admitted calls.
`concurrency` slots are taken first, in one process-wide order (no deadlock between calls
that share limiters). `Limiter.cool_down(seconds)` (a 429/503 with Retry-After) pauses
every acquire on that limiter; an acquire given a deadline that a cooldown outlasts raises
`CooldownPastDeadline` at once. Buckets and slots belong to an event loop (one set per
loop); cooldowns and token balances are shared.
The buckets are ours (`_limits_bucket`); asyncio is imported on first use, so
`import model_registry` does not load it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from model_registry._limits_bucket import LoopState
from model_registry.errors import InvalidParameterError
from model_registry.types import redact

if TYPE_CHECKING:
    import asyncio

__all__: list[str] = []

DEFAULT_COMPLETION_TOKENS = 256
"""Completion tokens charged up front for a request without `max_tokens`."""

LIMIT_KEYS = ("rpm", "tpm", "concurrency")

_SPREAD = 0.25  # of a wait, added at random (see `spread`)
_SPREAD_MAX = 5.0
_KEY_SALT = os.urandom(16)  # per process: the hash identifies a key here, reveals nothing
_order = itertools.count()


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Declared limits: requests started per minute, tokens per minute, calls in flight."""

    rpm: float | None = None
    tpm: float | None = None
    concurrency: int | None = None


# -- validation ---------------------------------------------------------------------------

_UNITS = {
    "rpm": "requests started per minute, e.g. rpm = 600",
    "tpm": "tokens per minute (prompt + completion), e.g. tpm = 200000",
    "concurrency": "calls in flight, e.g. concurrency = 8",
}


def limit_problems(value: object) -> list[tuple[str | None, str]]:
    """Every problem in a limits table, as (key or None, message naming the key and the fix)."""
    if not isinstance(value, Mapping):
        return [
            (None, f"limits must be a table of {', '.join(LIMIT_KEYS)}, got {type(value).__name__}")
        ]
    problems: list[tuple[str | None, str]] = []
    for key, item in value.items():
        if key not in LIMIT_KEYS:
            problems.append((str(key), _unknown_key(key)))
        elif item is not None and (message := _value_problem(key, item)):
            problems.append((key, message))
    return problems


def validate_limits(value: Mapping[str, object] | Limits, where: str) -> Limits:
    """A checked `Limits`; InvalidParameterError (a ValueError) names `where`, each key, the fix."""
    if isinstance(value, Limits):
        value = msgspec.structs.asdict(value)
    problems = limit_problems(value)
    if problems:
        raise InvalidParameterError("; ".join(f"{where}: {message}" for _, message in problems))
    rpm, tpm, concurrency = (value.get(key) for key in LIMIT_KEYS)
    return Limits(
        rpm=None if rpm is None else float(rpm),  # type: ignore[arg-type]
        tpm=None if tpm is None else float(tpm),  # type: ignore[arg-type]
        concurrency=concurrency,  # type: ignore[arg-type]
    )


def _unknown_key(key: object) -> str:
    import difflib  # here: loaded by a mistake, not at import

    close = difflib.get_close_matches(str(key), LIMIT_KEYS, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key {str(key)!r}{hint}; the keys are {', '.join(LIMIT_KEYS)}"


def _value_problem(key: str, item: object) -> str | None:
    if key == "concurrency":
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            return f"'concurrency' must be a whole number >= 1 ({_UNITS[key]}), got {item!r}"
        return None
    if isinstance(item, bool) or not isinstance(item, int | float):
        return f"{key!r} must be a number ({_UNITS[key]}), got {type(item).__name__} {item!r}"
    if not math.isfinite(item) or item <= 0:
        return f"{key!r} must be a positive finite number ({_UNITS[key]}), got {item!r}"
    return None


# -- keys and the registry ----------------------------------------------------------------


class LimitKey(msgspec.Struct, frozen=True):
    """What a limiter is shared by: a provider endpoint and key (`api_base` redacted,
    `credential` a salted hash of the key, never the key), or an alias name."""

    scope: Literal["provider", "alias"]
    name: str
    api_base: str | None = None
    credential: str | None = None


def provider_key(
    provider: str, api_base: str | None = None, api_key: str | None = None
) -> LimitKey:
    """The key every client of `provider` at `api_base` with `api_key` shares."""
    digest = None
    if api_key or api_base:
        raw = f"{api_base or ''}\0{api_key or ''}".encode()
        import hashlib  # with OpenSSL, 3.7 MiB: loaded by the first client, not at import
        import hmac

        digest = hmac.new(_KEY_SALT, raw, hashlib.sha256).hexdigest()[:16]
    shown = redact({"api_base": api_base})["api_base"] if api_base else None
    return LimitKey("provider", provider, shown, digest)


def alias_key(alias: str) -> LimitKey:
    """The key of an alias's own limits (applied on top of its provider's)."""
    return LimitKey("alias", alias)


_registry: dict[LimitKey, Limiter] = {}


def limiter_for(key: LimitKey, limits: Limits) -> Limiter:
    """The process-wide limiter for `key`; other limits for a key apply from the next call."""
    if (limiter := _registry.get(key)) is None:
        limiter = _registry[key] = Limiter(key, limits)
    elif limiter.limits != limits:
        limiter.reconfigure(limits)
    return limiter


# -- the limiter --------------------------------------------------------------------------


class CooldownPastDeadline(Exception):
    """A cooldown that ends after the caller's deadline: `seconds` is its remaining time."""

    def __init__(self, limiter: Limiter, seconds: float) -> None:
        super().__init__(f"{limiter.key.name} cools down for {seconds:.1f} s more")
        self.limiter = limiter
        self.seconds = seconds


class Limiter:
    """Rate, token and concurrency limits shared by every holder of one `LimitKey`."""

    def __init__(self, key: LimitKey, limits: Limits) -> None:
        self.key = key
        self.limits = limits
        self.order = next(_order)
        self.cooldown_until = 0.0  # time.monotonic() (the loop's clock) until acquires go on
        self._token_balance = 0.0  # > 0: tokens used beyond estimates (debt); < 0: credit
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"Limiter({self.key!r}, {self.limits!r})"

    def reconfigure(self, limits: Limits) -> None:
        """Apply new limits to calls that start from now on."""
        self.limits = limits
        self._states = weakref.WeakKeyDictionary()

    def cool_down(self, seconds: float) -> None:
        """Pause every acquire on this limiter for `seconds` (extends, never shortens)."""
        if math.isfinite(seconds) and seconds > 0:
            self.cooldown_until = max(self.cooldown_until, time.monotonic() + seconds)

    def cooldown_remaining(self) -> float:
        """Seconds until acquires may proceed again (0.0 when not cooling down)."""
        return max(0.0, self.cooldown_until - time.monotonic())

    def _state(self) -> LoopState:
        import asyncio

        loop = asyncio.get_running_loop()
        if (state := self._states.get(loop)) is None:
            state = self._states[loop] = LoopState(
                self.limits.rpm, self.limits.tpm, self.limits.concurrency, loop
            )
        return state

    async def wait_cooldown(self, deadline: float = math.inf) -> bool:
        """Return once no cooldown is in force, each waiter a little later than the next:
        up to a quarter of its wait (at most 5 s) more, so they do not resume in lockstep;
        True if it waited. A cooldown that outlasts `deadline` (the loop's clock) raises
        CooldownPastDeadline."""
        import asyncio

        waited = False
        # a deadline, not an event: another 429 may extend it while we sleep
        while (remaining := self.cooldown_remaining()) > 0:
            left = deadline - asyncio.get_running_loop().time()
            if remaining > left:
                raise CooldownPastDeadline(self, remaining)
            waited = True
            await asyncio.sleep(min(spread(remaining), left))
        return waited

    async def _take_tokens(self, state: LoopState, estimate: float) -> float:
        """Charge `estimate` (plus any debt, less any credit), in bucket-sized parts; the
        tokens charged."""
        bucket = state.tokens
        if bucket is None:
            return 0.0
        async with state.token_turn:
            need = estimate + self._token_balance
            self._token_balance = min(need, 0.0)
            taken = 0.0
            try:
                while taken < need:
                    part = min(need - taken, bucket.capacity)
                    await bucket.acquire(part)
                    taken += part
            except BaseException:
                # the request will not run: its estimate is void, what was taken is credit
                self._token_balance += max(need, 0.0) - taken - estimate
                raise
            return taken

    def _give_back_tokens(self, estimate: float) -> None:
        """A charged request that will not start after all (cooldown): credit its estimate."""
        if self.limits.tpm is not None:
            self._token_balance -= estimate

    def _report(self, estimate: float, actual: float) -> None:
        if self.limits.tpm is not None:
            self._token_balance += actual - estimate


# -- acquiring ----------------------------------------------------------------------------


class Permit:
    """Held while a call runs; `report_usage` corrects the token estimate with real usage."""

    def __init__(self, limiters: Sequence[Limiter], estimated_tokens: float) -> None:
        self.limiters = tuple(limiters)
        self.estimated_tokens = estimated_tokens
        #: the tokens each limiter charged at admission (paced again at the send)
        self.charged: dict[Limiter, float] = {}
        self._reported = False

    def report_usage(self, total_tokens: int | None) -> None:
        """Record the tokens the call really used (prompt + completion); once; None: keep the estimate."""
        if self._reported or total_tokens is None:
            return
        self._reported = True
        for limiter in self.limiters:
            limiter._report(self.estimated_tokens, float(total_tokens))


@contextlib.asynccontextmanager
async def acquire(
    limiters: Sequence[Limiter], estimated_tokens: float = 0, deadline: float = math.inf
) -> AsyncIterator[Permit]:
    """Wait for every limiter (slots, cooldowns, rates); the call starts inside the block.

    Pass the provider's limiter first, then the alias's: rates are taken in reverse order,
    so the provider's bucket (the server's) admits the call last, just before it starts.
    A cooldown that outlasts `deadline` raises CooldownPastDeadline at once."""
    permit = Permit(limiters, max(float(estimated_tokens), 0.0))
    async with contextlib.AsyncExitStack() as stack:
        for limiter in sorted(limiters, key=lambda limiter: limiter.order):
            slots = limiter._state().slots
            if slots is not None:
                await slots.acquire()
                stack.callback(slots.release)
        permit.charged = await _take_rates(limiters, permit.estimated_tokens, deadline)
        yield permit


def spread(seconds: float) -> float:
    """`seconds` plus up to a quarter more (at most 5 s), at random: callers paused by one
    Retry-After come back spread out, not in lockstep."""
    import random  # here: loaded by the first Retry-After, not at import

    return seconds + random.uniform(0, min(seconds * _SPREAD, _SPREAD_MAX))


async def take_request(limiters: Sequence[Limiter], deadline: float = math.inf) -> None:
    """Before a retry: wait out any cooldown and take another request from each bucket
    (a retry is a request the server counts; its tokens were charged with the first)."""
    await _take_rates(limiters, 0.0, deadline)


async def _take_rates(
    limiters: Sequence[Limiter], estimate: float, deadline: float
) -> dict[Limiter, float]:
    """Take a request and its tokens from each bucket, again if a cooldown began meanwhile;
    the tokens each limiter charged."""
    while True:
        for limiter in limiters:
            # skip a coroutine on the common path
            if limiter.cooldown_until and await limiter.wait_cooldown(deadline):
                # the buckets drained during the pause: restart them, no burst at its end
                for other in limiters:
                    other._state().restart_after_cooldown(limiter.cooldown_until)
        charged: dict[Limiter, float] = {}
        try:
            for limiter in reversed(limiters):
                state = limiter._state()
                charged[limiter] = await limiter._take_tokens(state, estimate)
                if state.requests is not None:
                    await state.requests.acquire(1.0)
        except BaseException:
            for limiter in charged:
                limiter._give_back_tokens(estimate)
            raise
        if not any(limiter.cooldown_remaining() > 0 for limiter in limiters):
            return charged
        for limiter in charged:
            limiter._give_back_tokens(estimate)


async def take_send(limiters: Sequence[Limiter], tokens: Mapping[Limiter, float]) -> None:
    """At the send (an HTTP hook): take the request, and the `tokens` each limiter charged
    at admission (none for a retry), from each limiter's sends buckets."""
    for limiter in reversed(limiters):
        state = limiter._state()
        if state.sends is not None:
            await state.sends.acquire(1.0)
        if state.token_sends is not None and tokens.get(limiter):
            await state.token_sends.acquire_parts(tokens[limiter])


def estimate_tokens(prompt: str | Sequence[Mapping[str, Any]], max_tokens: int | None) -> int:
    """Tokens to charge before a call: the prompt's (about 4 characters a token, plus 4 a
    message) plus `max_tokens`, or `DEFAULT_COMPLETION_TOKENS` when it is unset."""
    if isinstance(prompt, str):
        chars, messages = len(prompt), 1
    else:
        chars, messages = sum(_content_chars(m.get("content")) for m in prompt), len(prompt)
    completion = DEFAULT_COMPLETION_TOKENS if max_tokens is None else max(max_tokens, 0)
    return -(-chars // 4) + 4 * messages + completion


def _content_chars(content: object) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(p["text"])
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return 0
