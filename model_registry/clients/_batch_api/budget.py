"""`max_cost` on a batch-API run: each request reserves its bound at the batch price before
its job is submitted.

The spend other processes recorded in the store since the run started is read again just
before (`StoreSpend`). The requests of the jobs still pending for the run's prompts reserve
first, fit or not (they are at the provider already and will be billed); then the new
requests, in input order, as long as they fit: the job holds those, and every later prompt gets
BudgetExceededError (not stored, not sent). When a job's answers are read, each answer's
cost (`Generation.cost`, at the batch price) replaces its reservation (None: the
reservation stays spent); a request the job failed, expired or cancelled gives its
reservation back, since providers bill only the requests a job answered.
"""

from __future__ import annotations

from typing import Any

from model_registry._prompts import Prompt, to_messages
from model_registry._store_jobs import BatchJob
from model_registry.clients._policy.cost_bound import Pricing, json_text, prompt_token_bound
from model_registry.clients._policy.spend import Budget, Reservation, StoreSpend
from model_registry.errors import BudgetExceededError
from model_registry.store import ResultStore
from model_registry.types import Generation

__all__ = ["JobBudget", "job_budget"]


async def job_budget(max_cost: float, store: ResultStore, price: Pricing) -> JobBudget:
    """The budget of a batch-API run: `max_cost`, the store's recorded cost spent already,
    other processes' spend in the store read again before the requests reserve."""
    spent, shared = await StoreSpend.start(store)
    return JobBudget(Budget(max_cost, spent, shared), price)


class JobBudget:
    """The reservation of each request of a batch-API run, by store key."""

    def __init__(self, budget: Budget, price: Pricing) -> None:
        self.budget = budget
        self.price = price
        self.held: dict[str, Reservation] = {}

    def bound(self, prompt: Prompt) -> float:
        """The most one request of `prompt` can cost at the batch price."""
        messages = to_messages(prompt)
        caches = "cache_control" in json_text(messages)
        return self.price.bound(prompt_token_bound(messages), caches)

    async def admit(
        self,
        pending: list[BatchJob],
        fresh: list[int],
        prompts: list[Any],
        keys: list[str | None],
    ) -> tuple[list[int], dict[int, BudgetExceededError]]:
        """Reserve for the pending jobs' requests, then for `fresh` in order while they fit
        (the others' spend in the store read first): the indexes to submit, and the error of
        each prompt left out."""
        await self.budget.refresh()
        index_of = {key: i for i, key in enumerate(keys) if key is not None}
        for record in pending:
            for held_key in record.keys:
                where = index_of.get(held_key)
                if where is not None and held_key not in self.held:
                    self.held[held_key] = self.budget.hold(self.bound(prompts[where]))
        admitted: list[int] = []
        refused: dict[int, BudgetExceededError] = {}
        for index in fresh:
            key = keys[index]
            if key is None:
                continue
            amount = self.bound(prompts[index])
            reservation = None if refused else self.budget.reserve(amount)
            if reservation is None:
                refused[index] = self.budget.exceeded(None if refused else amount)
                continue
            self.held[key] = reservation
            admitted.append(index)
        return admitted, refused

    def settle(self, key: str, result: Generation | BaseException) -> None:
        """An answer's cost replaces its request's reservation; an error gives it back."""
        reservation = self.held.pop(key, None)
        if reservation is None:
            return
        if isinstance(result, Generation):
            self.budget.settle(reservation, result.cost)
        else:
            self.budget.release(reservation)
