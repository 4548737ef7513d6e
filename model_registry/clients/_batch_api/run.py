"""The entry points of a batch-API run: `generate_many`/`iter_many` with `batch_api=True`
(submit what is new, wait, collect) and `submit_batch` (submit, return at once)."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from model_registry._store_read import record_batch
from model_registry.clients._batch import Batch, Emit, _keys, _open_store, _ProgressBar
from model_registry.clients._batch_api.budget import job_budget
from model_registry.clients._batch_api.connect import batch_provider, connect
from model_registry.clients._batch_api.jobs import JobSession
from model_registry.clients._batch_api.options import BatchSubmission
from model_registry.clients._batch_api.providers import JobStatus
from model_registry.clients._batch_api.shape import RequestShape
from model_registry.clients._policy.cost_bound import pricing
from model_registry.clients._structured import output_schema

__all__ = ["job_statuses", "run_jobs"]

logger = logging.getLogger("model_registry")


def _primary(client: Any) -> Any:
    """The client that sends the batch: a fallback wrapper's primary (fallbacks do not
    apply to batch jobs: warned once per run)."""
    fallbacks = getattr(client, "fallbacks", ())
    if not fallbacks:
        return client
    logger.warning(
        "%s: fallbacks (%s) do not apply to batch jobs; the batch goes to %r only",
        client.name,
        ", ".join(map(repr, fallbacks)),
        client.name,
    )
    return client._client(0)


async def run_jobs(client: Any, batch: Batch, emit: Emit, *, wait: bool = True) -> BatchSubmission:
    """Run `batch` through the provider's batch API (see `jobs`); with `wait=False`, submit
    and return. Its inputs are recorded as the store's latest batch, as without the API."""
    primary = _primary(client)
    provider = batch_provider(primary.resolution, primary.kind)
    store, owned = await _open_store(batch.results_db)
    assert store is not None  # batch_options requires results_db
    bar = _ProgressBar(len(batch.prompts), client.name) if batch.progress and wait else None
    api = None
    try:
        params = {**primary.params, **batch.kwargs}
        keys = _keys(batch.prompts, primary._store_target(), params)
        schema = output_schema(params.get("response_format"))
        record_batch(store, keys)
        todo = await batch._from_store(store, keys, emit, bar, schema)
        if not todo:
            return BatchSubmission([], 0, 0, len(keys))
        await primary.start()  # LiteLLM imported, credentials checked
        call_params, _ = primary._call_params(batch.kwargs)
        api = connect(primary.resolution, provider, call_params)
        shape = RequestShape(
            provider=provider,
            model_id=primary.model_id,
            params=call_params,
            name=primary.name,
            shown=primary.provider,
        )
        session = JobSession(batch, store, keys, emit, api, shape)
        session.on_status = _on_status(bar, client.name, batch.on_batch_status if wait else None)
        if bar is not None:
            session.on_done = bar.advance
        session.not_prompts(todo)
        if batch.max_cost is not None:
            price = pricing(primary.resolution, batch.kwargs, tier="batches")
            session.budget = await job_budget(batch.max_cost, store, price)
        pending, fresh = await session.plan(todo)
        sent = await session.admit(pending, fresh)
        new = await session.submit(sent, batch.batch_size)
        if wait:
            await session.wait(pending + new)
        job_ids = [str(record.job_id) for record in pending + new]
        held, stored = len(todo) - len(fresh), len(keys) - len(todo)
        summary = BatchSubmission(job_ids, len(sent), held, stored, session.not_sent)
    finally:
        with anyio.CancelScope(shield=True):
            if api is not None:
                await api.wire.aclose()
            if bar is not None:
                bar.close()
            await (store.aclose() if owned else store.aflush())
    if session.failure is not None:
        raise session.failure
    if session.over_budget is not None:
        raise session.over_budget
    return summary


def _on_status(bar: _ProgressBar | None, name: str, callback: Any) -> Any:
    """What each job status polled goes to: the progress bar's description (the job's own
    counts) and the caller's `on_batch_status`; None when neither wants it."""
    if bar is None and callback is None:
        return None

    def show(status: JobStatus) -> None:
        if bar is not None:
            bar._progress.update(bar._task, description=f"{name}: {status}")
        if callback is not None:
            callback(status)

    return show


async def job_statuses(client: Any, job_ids: list[str], cancel: bool) -> list[JobStatus]:
    """The status of each job at the provider of `client`, after cancelling the running
    ones when `cancel`."""
    primary = _primary(client)
    provider = batch_provider(primary.resolution, primary.kind)
    await primary.start()
    api = connect(primary.resolution, provider, primary._call_params({})[0])
    try:
        statuses = [await api.status(job_id) for job_id in job_ids]
        if cancel and any(not s.done for s in statuses):
            for status in statuses:
                if not status.done:
                    await api.cancel(status.job_id)
            statuses = [await api.status(job_id) for job_id in job_ids]
        return statuses
    finally:
        with anyio.CancelScope(shield=True):
            await api.wire.aclose()
