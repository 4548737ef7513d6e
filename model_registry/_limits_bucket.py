"""The leaky buckets and slots of one limiter on one event loop (see `limits`).

The bucket is ours, about 30 lines, because none of the libraries compared starts a
bucket nearly full (one request at once, then the rate), which the bounds in `limits`
need: aiolimiter (1.x) starts empty and has no public way to set a level (we wrote its
private `_level`), `limits` (moving or fixed windows) only answers yes or no with no wait,
and pyrate-limiter (3.x) counts windows and raises, or blocks a thread, on a full one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["Bucket", "LoopState"]

# A burst of 0.4 s worth and 99% of the rate: a tenth of a second and 1% below what the
# bounds allow, for requests that reach the server later than they left the limiter (a
# burst's last request leaves after the others' client-side work, under load tens of ms)
_BURST_SECONDS = 0.4
_RATE_MARGIN = 0.99


class Bucket:
    """A leaky bucket on the event loop's clock: `capacity` units, leaking `rate` a second,
    waiters served in arrival order; it starts (and restarts) with room for one unit."""

    def __init__(self, per_minute: float, clock: Any) -> None:
        import asyncio

        self.capacity = max(per_minute / 60 * _BURST_SECONDS, 1.0)
        self.rate = max(per_minute - self.capacity, per_minute / 2) / 60 * _RATE_MARGIN
        self._clock = clock
        self._turn = asyncio.Lock()  # FIFO: a large charge is not passed by small ones
        self.restart()

    def restart(self) -> None:
        """Room for one unit now, then the rate: no burst."""
        self.level = max(self.capacity - 1.0, 0.0)
        self.checked = self._clock()

    def _take(self, amount: float) -> float:
        """Take `amount` if it fits (0.0), else the seconds until it will."""
        now = self._clock()
        self.level = max(self.level - (now - self.checked) * self.rate, 0.0)
        self.checked = now
        over = self.level + amount - self.capacity
        if over <= 1e-9:
            self.level += amount
            return 0.0
        return over / self.rate

    async def acquire(self, amount: float) -> None:
        """Wait until `amount` (at most `capacity`) fits, behind earlier waiters, and take it."""
        if not self._turn.locked() and self._take(amount) == 0.0:
            return
        import asyncio

        async with self._turn:
            while (wait := self._take(amount)) > 0:  # noqa: ASYNC110 (a level, not an event)
                await asyncio.sleep(wait)

    async def acquire_parts(self, amount: float) -> None:
        """Take `amount`, however large, in parts of at most `capacity`."""
        taken = 0.0
        while taken < amount:
            part = min(amount - taken, self.capacity)
            await self.acquire(part)
            taken += part


class LoopState:
    """The asyncio primitives of one limiter on one event loop."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        concurrency: int | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        import asyncio

        self.slots = asyncio.Semaphore(concurrency) if concurrency else None
        self.requests = None if rpm is None else Bucket(rpm, loop.time)
        #: paces the same requests where they leave the process (see `limits.take_send`)
        self.sends = None if rpm is None else Bucket(rpm, loop.time)
        self.tokens = None if tpm is None else Bucket(tpm, loop.time)
        #: paces the tokens each admitted request was charged where it leaves the process
        self.token_sends = None if tpm is None else Bucket(tpm, loop.time)
        for bucket in (self.tokens, self.token_sends):
            if bucket is not None:
                bucket.level = 0.0  # tokens start with the whole bucket
        self.token_turn = asyncio.Lock()
        #: time.monotonic() of the cooldown end the requests bucket last restarted after
        self.restarted_after = 0.0

    def restart_after_cooldown(self, ended: float) -> None:
        """The first acquire after a cooldown restarts the requests bucket (no burst)."""
        if ended > self.restarted_after:
            self.restarted_after = ended
            for bucket in (self.requests, self.sends):
                if bucket is not None:
                    bucket.restart()
