"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches) behind `generate_many`,
`iter_many` (`batch_api=True`) and `submit_batch`; see `jobs` for how a run stays durable.

`BatchAPIMethods` gives every client these methods; the rest is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from model_registry._prompts import Prompt
from model_registry.clients._batch_api.options import BatchSubmission, batch_options
from model_registry.store import ResultStore

__all__ = ["BatchAPIMethods", "BatchSubmission", "batch_options"]


class BatchAPIMethods:
    """The batch-API methods of a client."""

    def _check_open(self) -> None:
        """Raise ClientClosedError after aclose() (the client's own)."""

    async def submit_batch(
        self,
        prompts: Sequence[Prompt],
        *,
        results_db: str | os.PathLike[str] | ResultStore,
        max_cost: float | None = None,
        **kwargs: Any,
    ) -> BatchSubmission:
        """Submit through the provider's batch API the prompts neither stored nor in a pending
        job (under `max_cost`: those that fit), and return at once;
        `generate_many(..., batch_api=True)` with the same prompts, kwargs and results_db
        collects them."""
        from model_registry.clients._batch import Batch
        from model_registry.clients._batch_api.run import run_jobs

        batch = Batch(
            prompts,
            concurrency=None,
            return_exceptions=True,
            progress=False,
            results_db=results_db,
            kwargs={**kwargs, "batch_api": True},
            caller="submit_batch",
            max_cost=max_cost,
        )
        self._check_open()
        return await run_jobs(self, batch, lambda index, result: None, wait=False)

    async def batch_status(self, job_ids: Sequence[str], *, cancel: bool = False) -> list[Any]:
        """Each job's status at the provider (`JobStatus`: status word, done, request counts),
        in order; `cancel=True` first cancels those still running (a later run collects
        what they finished and submits the rest again)."""
        from model_registry.clients._batch_api.run import job_statuses

        self._check_open()
        return await job_statuses(self, list(job_ids), cancel)

    async def _run_batch_jobs(self, batch: Any, emit: Any) -> None:
        """A `generate_many`/`iter_many` batch with `batch_api=True`."""
        from model_registry.clients._batch_api.run import run_jobs

        await run_jobs(self, batch, emit)
