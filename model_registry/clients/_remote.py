"""A batch answered elsewhere (Ray actors), kept in this process's store exactly as
`generate_many` keeps it: the same keys, the same stored records, stored answers reused;
and its `max_cost` budget, held in one place (`BudgetKeeper`, a Ray actor) and reserved
from by every worker's attempts (`RemoteBudget`) as `_policy.spend` reserves from a batch's.
Imports nothing of Ray."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from model_registry._store_read import record_batch
from model_registry.clients._batch import _keys, _stored_generation
from model_registry.clients._batch_checks import refuse_local
from model_registry.clients._batch_records import keep_in_store
from model_registry.clients._policy.cost_bound import pricing
from model_registry.clients._policy.spend import Budget, Reservation, Spending, check_max_cost
from model_registry.clients._structured import output_schema
from model_registry.clients.base import BaseClient
from model_registry.errors import BudgetExceededError
from model_registry.store import ResultStore
from model_registry.types import Generation

__all__ = [
    "BudgetKeeper",
    "RemoteBudget",
    "StoredRun",
    "check_max_cost",
    "check_prices",
    "spent_calls",
    "worker_spending",
]


class StoredRun:
    """The store side of one run of `prompts` through `client` with per-call `kwargs`."""

    def __init__(
        self, client: BaseClient, prompts: list[Any], kwargs: Mapping[str, Any], store: ResultStore
    ) -> None:
        params = {**client.params, **kwargs}
        self.store = store
        self.keys = _keys(prompts, client._store_target(), params)
        self._schema = output_schema(params.get("response_format"))

    def record_inputs(self) -> None:
        """Queue the run's inputs (index, key) as a new batch of the store, as generate_many
        records its own: the store's latest batch, read back in input order (`export`)."""
        record_batch(self.store, self.keys)

    def stored(self) -> dict[int, Generation]:
        """The prompts (by index) whose success is in the store, as Generations."""
        found = self.store.lookup([k for k in self.keys if k is not None])
        done: dict[int, Generation] = {}
        for index, key in enumerate(self.keys):
            stored = found.get(key) if key is not None else None
            generation = None if stored is None else _stored_generation(stored, self._schema)
            if generation is not None:
                done[index] = generation
        return done

    def keep(self, index: int, result: Generation | BaseException) -> None:
        """Queue one answer or error to the store (the store's writer commits it)."""
        keep_in_store(self.store, self.keys[index], index, result)


class BudgetKeeper:
    """A run's budget (`max_cost`, the store's recorded cost spent already) and the open
    reservations of each worker (an async Ray actor: every method runs on its event loop)."""

    def __init__(self, max_cost: float, spent: float) -> None:
        self.budget = Budget(max_cost, spent)
        self.held: dict[int, tuple[str, Reservation]] = {}
        self.tickets = 0

    async def acquire(self, owner: str, amount: float) -> tuple[int | None, float]:
        """A ticket for `amount` once it fits (None: it cannot, the budget is closed), and
        what is spent."""
        try:
            reservation = await self.budget.acquire(amount)
        except BudgetExceededError:
            return None, self.budget.spent
        self.tickets += 1
        self.held[self.tickets] = (owner, reservation)
        return self.tickets, self.budget.spent

    async def settle(self, ticket: int, cost: float | None) -> None:
        """The ticket's real cost (None: its reservation kept as spent)."""
        self.budget.settle(self.held.pop(ticket)[1], cost)

    async def orphaned(self, owner: str) -> None:
        """A worker restarted: its attempts in flight died with it, their outcome unknown,
        so their reservations are kept as spent."""
        for ticket, (held_by, _) in list(self.held.items()):
            if held_by == owner:
                await self.settle(ticket, None)

    async def spent(self) -> float:
        return self.budget.spent


class _Ticket(Reservation):
    __slots__ = ("ticket",)

    def __init__(self, amount: float, ticket: int) -> None:
        super().__init__(amount)
        self.ticket = ticket


class RemoteBudget(Budget):
    """A worker's side of a `BudgetKeeper` (a Ray actor handle), in a batch's `Budget`'s
    place: each attempt reserves there, in the run's one budget, before it is sent."""

    def __init__(self, keeper: Any, owner: str, max_cost: float) -> None:
        super().__init__(max_cost)
        self.keeper, self.owner = keeper, owner

    async def acquire(self, amount: float) -> Reservation:
        """A reservation of `amount` once it fits in the run's budget; BudgetExceededError
        (and this worker's budget closed) when it cannot."""
        ticket, self.spent = await self.keeper.acquire.remote(self.owner, amount)
        if ticket is None:
            raise self.exceeded(amount)
        return _Ticket(amount, ticket)

    def settle(self, reservation: Reservation, cost: float | None) -> None:
        if reservation.open and isinstance(reservation, _Ticket):
            reservation.open = False
            self.keeper.settle.remote(reservation.ticket, cost)


def check_prices(client: BaseClient) -> None:
    """InvalidParameterError, before any call, for a local name or a name with no known
    price among those `client`'s calls may go to (max_cost needs each price)."""
    names = client._chain()
    refuse_local(names)
    for resolution in names:
        pricing(resolution, {})


def worker_spending(client: BaseClient, keeper: Any, owner: str, max_cost: float) -> Spending:
    """A worker's spending under the run's `BudgetKeeper`, with the price of each name its
    calls may go to."""
    prices = {n.name: pricing(n, {}) for n in client._chain()}
    return Spending(RemoteBudget(keeper, owner, max_cost), prices)


async def spent_calls(
    client: BaseClient, spending: Spending, prompts: list[Any]
) -> list[Generation | BaseException]:
    """Each prompt's call, its attempts reserving from `spending`'s budget first
    (BudgetExceededError without a call once it is spent), as generate_many's under max_cost."""

    async def one(prompt: Any) -> Generation:
        if spending.budget.closed:
            raise spending.budget.exceeded()
        with spending.call(prompt) as spend:
            generation = await client.generate(prompt)
            spend.settle(generation)
            return generation

    return await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)
