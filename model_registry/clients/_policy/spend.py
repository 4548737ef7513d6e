"""Spend limits: `max_cost` on a batch, kept by reserving each attempt's cost before it is sent.

A `Budget` holds the cap, what is spent (the store's recorded cost included) and what is
reserved by attempts in flight. Before each attempt is sent (the first and every retry, on
whichever name of a fallback chain takes it) it reserves an upper bound of that attempt's
cost at that name's price (`Pricing.bound`); an attempt that does not fit waits for the
attempts in flight to settle, and is refused with `BudgetExceededError` when it still does
not fit (the budget then closes: no later prompt is sent). The reservation of an answered
call is replaced by its real cost (`Generation.cost`; kept when that is None); an attempt
answered with an HTTP error (4xx/5xx other than a gateway timeout) gives its reservation
back, since providers bill answers, not errors; one whose outcome is unknown (a timeout, no
response, a cancel after it was sent) keeps it as spent. So the total never exceeds the cap
as long as each bound is one.

The bound of an attempt's cost is `cost_bound`'s.

Processes sharing the batch's store see each other's spend (`StoreSpend`): at each
reservation the budget counts the cost the store's other writers recorded since the batch
started (read incrementally: the rows written since the last read, less what this store's
own writer committed meanwhile; a race only over-counts the others). So together they can
pass the cap by at most what the others have in flight, not yet recorded (docs/spend.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from model_registry._prompts import Prompt, to_messages
from model_registry.clients._policy.cost_bound import Pricing, json_text, prompt_token_bound
from model_registry.errors import (
    BudgetExceededError,
    InvalidParameterError,
    ModelCallError,
    RequestTimeoutError,
)
from model_registry.store import ResultStore
from model_registry.types import Generation, Resolution

__all__ = ["Budget", "Reservation", "Spending", "StoreSpend", "check_max_cost", "spent_attempt"]

_T = TypeVar("_T")

#: Statuses of an HTTP error whose request may still have been processed upstream.
_GATEWAY_TIMEOUTS = frozenset({408, 504, 524})
#: How long a read of the others' spend serves the reservations that follow it (seconds).
FRESH_S = 0.005


def check_max_cost(max_cost: Any) -> float | None:
    """`max_cost` as a float (None: no cap); InvalidParameterError for anything but a finite
    number >= 0."""
    if max_cost is None:
        return None
    if (
        isinstance(max_cost, bool)
        or not isinstance(max_cost, int | float)
        or not math.isfinite(max_cost)
        or max_cost < 0
    ):
        raise InvalidParameterError(
            f"max_cost must be a number of US dollars, 0 or more (e.g. max_cost=5.0), got "
            f"{max_cost!r}"
        )
    return float(max_cost)


# --- the budget ---------------------------------------------------------------------------


class Reservation:
    """Part of a budget held for one attempt (or one request of a provider batch job)."""

    __slots__ = ("amount", "open")

    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.open = True

    def __repr__(self) -> str:
        return f"<Reservation {self.amount!r} USD {'open' if self.open else 'settled'}>"


class Budget:
    """A cap in USD, what is spent against it and what is reserved by attempts in flight.

    `reserve(amount) -> Reservation | None` holds `amount` if it fits now; `settle(r, cost)`
    replaces it by the real cost (None: the reservation is kept as spent); `release(r)` gives
    it back (nothing was billed). `await acquire(amount)` waits for reservations in flight to
    settle and raises BudgetExceededError (and closes the budget) when it cannot fit.
    A provider batch job reserves each request at the batch price before it is submitted
    (`hold`: the requests of a job already submitted, fit or not).
    """

    def __init__(
        self, max_cost: float, spent: float = 0.0, shared: StoreSpend | None = None
    ) -> None:
        self.max_cost = max_cost
        #: Settled costs, the store's recorded cost (the others' since the start included,
        #: as last read) and kept reservations included.
        self.spent = spent
        #: The store other processes record their spend in, and what of it `spent` holds.
        self.shared = shared
        self.others = 0.0
        #: Reserved by open reservations.
        self.held = 0.0
        #: Set once a reservation was refused for good: no later one is made.
        self.closed = False
        self._open = 0
        self._settled: anyio.Event | None = None

    def reserve(self, amount: float) -> Reservation | None:
        """Hold `amount` if it fits now (spent, held and it within the cap), else None."""
        if self.closed or self.spent + self.held + amount > self.max_cost:
            return None
        self.held += amount
        self._open += 1
        return Reservation(amount)

    def hold(self, amount: float) -> Reservation:
        """Hold `amount` whether it fits or not: a request already submitted to a provider
        batch job, which will be billed."""
        self.held += amount
        self._open += 1
        return Reservation(amount)

    def settle(self, reservation: Reservation, cost: float | None) -> None:
        """Replace an open reservation by the real cost (None: keep the reservation as spent)."""
        if not reservation.open:
            return
        reservation.open = False
        self._open -= 1
        self.held = self.held - reservation.amount if self._open else 0.0
        self.spent += reservation.amount if cost is None else cost
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def release(self, reservation: Reservation) -> None:
        """Give an open reservation back: nothing was billed."""
        self.settle(reservation, 0.0)

    async def refresh(self, now: bool = False) -> None:
        """Count in `spent` what the store's other writers recorded since the start (as
        `StoreSpend` reads it; `now`: a read started now); nothing without a store."""
        if self.shared is not None:
            others = await self.shared.others(now)
            self.spent += others - self.others
            self.others = others

    async def acquire(self, amount: float) -> Reservation:
        """A reservation of `amount`, once the reservations in flight leave room for it;
        BudgetExceededError (and the budget closed) when they cannot. The others' spend is
        read again first, after each wait, and once more before the budget closes (a read
        racing a commit of ours counts it as the others' until the next read)."""
        await self.refresh()
        last_read = self.shared is None
        while (reservation := self.reserve(amount)) is None:
            if self.closed or not self._open or self.spent + amount > self.max_cost:
                if not (self.closed or last_read):
                    last_read = True
                    await self.refresh(now=True)
                    continue
                self.closed = True
                raise self.exceeded(amount)
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()
            await self.refresh()
        return reservation

    def exceeded(self, amount: float | None = None) -> BudgetExceededError:
        """The error of a prompt not sent (`amount`: the bound that did not fit)."""
        self.closed = True
        would = "" if amount is None else f" and the next call may cost up to ${amount:.6f}"
        return BudgetExceededError(
            f"not sent: max_cost=${self.max_cost:.6f} would be exceeded (${self.spent:.6f} "
            f"spent, the results_db's recorded cost included{would}); nothing of it was "
            "stored: run again with a higher max_cost to send the prompts not answered",
            max_cost=self.max_cost,
            spent=self.spent,
        )


# --- the others' spend ----------------------------------------------------------------------


class StoreSpend:
    """The cost the other writers of a store (other processes, other `ResultStore`s of its
    file) recorded since a batch started, read incrementally: the rows written after the
    last row read (`ResultStore.recorded_cost`), less what this store's own writer
    committed meanwhile (`committed_cost`, read first: each commit it counts is in the rows
    read after it, so a commit racing the read counts as the others', never the reverse).

    `await others()` reads it again, with at most one read in flight: a reservation that
    comes while one is in flight waits for it, one that comes within `FRESH_S` of the last
    read's start reuses its figure; a figure is never older than the previous one."""

    def __init__(self, store: ResultStore, after: int | None, own: float) -> None:
        self.store = store
        self.figure = 0.0
        self._after, self._own = after, own
        self._read_at = -math.inf
        self._reading: anyio.Event | None = None

    @classmethod
    async def start(cls, store: ResultStore) -> tuple[float, StoreSpend]:
        """The cost recorded in `store` (what it has queued committed first), and the
        reader of the others' spend from now on."""

        def read() -> tuple[float, StoreSpend]:
            store.flush()
            cost, after = store.recorded_cost()
            # read after: a commit of our own racing the read then counts as the others'
            return cost, cls(store, after, store.committed_cost)

        return await anyio.to_thread.run_sync(read)

    async def others(self, now: bool = False) -> float:
        """The others' spend since the start, as recorded in the store (see the class;
        `now`: from a read that starts after this call, none reused)."""
        while self._reading is not None:
            await self._reading.wait()
            if not now:
                return self.figure
        started = time.monotonic()
        if not now and started - self._read_at < FRESH_S:
            return self.figure
        self._reading = reading = anyio.Event()
        try:  # the read runs to its end even when the caller is cancelled (anyio's default)
            await anyio.to_thread.run_sync(self._read)
            self._read_at = started
        finally:
            self._reading = None
            reading.set()
        return self.figure

    def _read(self) -> None:
        """One read, in a worker thread; every change to the state is made here."""
        own = self.store.committed_cost
        cost, self._after = self.store.recorded_cost(self._after)
        self.figure += cost - (own - self._own)
        self._own = own


# --- a batch's calls -------------------------------------------------------------------------


class Spending:
    """What a batch's calls spend under: its budget and the price of each name they may call."""

    def __init__(self, budget: Budget, prices: Mapping[str, Pricing]) -> None:
        self.budget = budget
        self.prices = prices

    @contextlib.contextmanager
    def call(self, prompt: Prompt) -> Iterator[_CallSpend]:
        """The spend of one prompt's call: its attempts reserve (see `spent_attempt`);
        `settle` it with the answer. A reservation left open at the end is kept as spent."""
        spend = _CallSpend(self, prompt)
        token = _CALL.set(spend)
        try:
            yield spend
        finally:
            _CALL.reset(token)
            if spend.held is not None:
                self.budget.settle(spend.held, None)


class _CallSpend:
    """One prompt's call under a budget: the reservation of its answered attempt."""

    def __init__(self, spending: Spending, prompt: Prompt) -> None:
        self.spending = spending
        self.prompt = prompt
        self.held: Reservation | None = None
        self._prompt: tuple[int, bool] | None = None

    def bound(self, name: str) -> float:
        """The most an attempt of this call at `name`'s price can cost."""
        if self._prompt is None:
            messages = to_messages(self.prompt)
            self._prompt = (prompt_token_bound(messages), "cache_control" in json_text(messages))
        return self.spending.prices[name].bound(*self._prompt)

    def settle(self, generation: Generation) -> None:
        """The answer came: its cost replaces the reservation (None: the reservation stays)."""
        if self.held is not None:
            self.spending.budget.settle(self.held, generation.cost)
            self.held = None


_CALL: contextvars.ContextVar[_CallSpend | None] = contextvars.ContextVar(
    "model_registry_call_spend", default=None
)


def spent_attempt(
    resolution: Resolution, attempt: Callable[[], Awaitable[_T]]
) -> Callable[[], Awaitable[_T]]:
    """`attempt` as it runs under the batch's budget (itself outside a max_cost batch): each
    run reserves its bound at `resolution`'s price first, and settles as the module says."""
    spend = _CALL.get()
    if spend is None or resolution.name not in spend.spending.prices:
        return attempt
    budget = spend.spending.budget

    async def reserved() -> _T:
        reservation = await budget.acquire(spend.bound(resolution.name))
        try:
            result = await attempt()
        except BaseException as exc:
            if _answered(exc):
                budget.release(reservation)
            else:
                budget.settle(reservation, None)
            raise
        if spend.held is not None:  # not expected: one answered attempt per call
            budget.settle(spend.held, None)
        spend.held = reservation
        return result

    return reserved


def _answered(exc: BaseException) -> bool:
    """Whether the server answered the attempt with an error (so it billed nothing)."""
    status = getattr(exc, "status_code", None)
    return (
        isinstance(exc, ModelCallError)
        and not isinstance(exc, RequestTimeoutError)
        and isinstance(status, int)
        and status not in _GATEWAY_TIMEOUTS
    )
