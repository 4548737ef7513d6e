"""A batch through a provider's batch API, durable across crashes: `generate_many` and
`iter_many` with `batch_api=True`, and `submit_batch`.

Prompts with a stored success come from the store. Before a job is created its intent is
committed to the store's jobs table (`_store_jobs`), with a tag the job carries as metadata
(OpenAI); the moment the provider accepts the job its id is committed. A run finds the
store's jobs still pending for its prompts and collects them instead of sending those
prompts again, and adopts (or drops) an intent left by a process that died before its job
was recorded (found by its tag, or on Anthropic by its size and time). The rest is submitted, split into jobs within the provider's limits
(`batch_size` lowers the cap). Waiting polls each job, from about 1 s apart up to 60 s;
every answer and error is stored as it is read (a failed, expired or cancelled request is
stored as an error: the next run submits it again, in a new job). Declared rpm/tpm limits
and fallbacks do not apply: a provider queues batch jobs apart from its calls.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread

from model_registry._prompts import to_messages
from model_registry._store_jobs import (
    BatchJob,
    all_jobs,
    drop_intent,
    open_jobs,
    record_accepted,
    record_intent,
    record_state,
)
from model_registry.clients._batch import Batch, Emit, _record
from model_registry.clients._batch_api.budget import JobBudget
from model_registry.clients._batch_api.providers import Intent, JobStatus, ProviderJobs
from model_registry.clients._batch_api.shape import RequestShape
from model_registry.clients._batch_api.wire import error_for_status
from model_registry.clients._batch_checks import mark_index
from model_registry.errors import (
    TRANSIENT_ERRORS,
    BudgetExceededError,
    InvalidParameterError,
    ModelCallError,
    ModelRegistryError,
    NotFoundError,
)
from model_registry.store import ResultStore
from model_registry.types import Generation

__all__ = ["POLL_FIRST_S", "POLL_MAX_S", "JobSession", "custom_id", "poll_intervals"]

logger = logging.getLogger("model_registry")

#: The first wait between two polls of a job, and the longest.
POLL_FIRST_S = 1.0
POLL_MAX_S = 60.0


def poll_intervals() -> Iterator[float]:
    """The waits between two rounds of polls: `POLL_FIRST_S`, then each 1.5 times the one
    before, up to `POLL_MAX_S` (reached after about 11 rounds), then that for ever."""
    interval = POLL_FIRST_S
    while True:
        yield interval
        interval = min(interval * 1.5, POLL_MAX_S)


def custom_id(key: str) -> str:
    """A request's id within a job, from its store key (`<sha256>#<n>`): at most 64
    characters of `[A-Za-z0-9_-]` (Anthropic's rule), unique within a job."""
    digest, _, number = key.partition("#")
    return f"{digest[:48]}-{number or 0}"


class JobSession:
    """The jobs of one batch over one store: adopt, submit, wait, collect, deliver."""

    def __init__(
        self,
        batch: Batch,
        store: ResultStore,
        keys: list[str | None],
        emit: Emit,
        api: ProviderJobs,
        shape: RequestShape,
    ) -> None:
        self.batch, self.store, self.keys, self.emit = batch, store, keys, emit
        self.api, self.shape = api, shape
        self.index_of = {key: i for i, key in enumerate(keys) if key is not None}
        self.failure: BaseException | None = None
        #: Called with each job's status as it is polled (the progress bar shows it).
        self.on_status: Any = None
        #: Called with the number of prompts each delivery completes.
        self.on_done: Any = None
        #: The reservations of a run with max_cost (`budget`), and its first prompt not sent.
        self.budget: JobBudget | None = None
        self.over_budget: BudgetExceededError | None = None
        self.not_sent = 0

    async def _thread(self, function: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, self.store, *args)

    # --- which jobs --------------------------------------------------------------------

    async def plan(self, todo: list[int]) -> tuple[list[BatchJob], list[int]]:
        """The pending jobs holding some of `todo`'s prompts (intents left by a crash adopted
        or dropped first), and the prompts of `todo` in none of them."""
        wanted = {self.keys[i] for i in todo if self.keys[i] is not None}
        known = {j.job_id for j in await self._thread(all_jobs) if j.job_id is not None}
        for record in await self._thread(open_jobs):
            if record.state == "intent" and wanted.intersection(record.keys):
                intent = Intent(record.tag, len(record.keys), record.created_at, frozenset(known))
                found = await self.api.find(intent)
                if found:
                    logger.info("adopting batch job %s (created before a crash)", found[0])
                    await self._thread(record_accepted, record.tag, found[0])
                    known.add(found[0])
                else:
                    await self._thread(drop_intent, record.tag)
        pending = [
            record
            for record in await self._thread(open_jobs)
            if record.state == "pending"
            and wanted.intersection(record.keys)
            and await self._known(record)
        ]
        held = {key for record in pending for key in record.keys}
        return pending, [i for i in todo if self.keys[i] not in held]

    async def _known(self, record: BatchJob) -> bool:
        """Whether the provider still knows a pending job; one it answers 404 for (deleted,
        or another server at this api_base) is recorded `gone` and its prompts sent anew."""
        assert record.job_id is not None
        try:
            await self.api.status(record.job_id)
        except NotFoundError:
            logger.warning(
                "batch job %s is unknown to the provider (HTTP 404): its %d requests are "
                "submitted again",
                record.job_id,
                len(record.keys),
            )
            await self._thread(record_state, record.tag, "gone")
            return False
        return True

    # --- submitting --------------------------------------------------------------------

    async def submit(self, indexes: list[int], cap: int | None) -> list[BatchJob]:
        """Submit the prompts at `indexes` (each with a key) in jobs of at most `cap`."""
        api, prompts = self.api, self.batch.prompts
        lines = [
            (key, api.line(custom_id(key), self.shape.body(prompts[i])))
            for i in indexes
            if (key := self.keys[i]) is not None
        ]
        most = min(cap or api.max_requests, api.max_requests)
        records = []
        for chunk in _chunks(lines, most, api.max_bytes):
            records.append(await self._create([key for key, _ in chunk], [b for _, b in chunk]))
        return records

    async def _create(self, keys: list[str], lines: list[bytes]) -> BatchJob:
        tag = f"mr-{uuid.uuid4().hex}"
        api, model = self.api, self.shape.model_id
        await self._thread(record_intent, tag, api.provider, model, self.shape.name, keys)
        try:
            job_id = await api.create(lines, tag)
        except ModelCallError as exc:
            if exc.status_code is not None:  # refused: no job was made
                await self._thread(drop_intent, tag)
            raise
        await self._thread(record_accepted, tag, job_id)
        logger.info("batch job %s accepted (%d requests)", job_id, len(keys))
        now = time.time()
        name = self.shape.name
        return BatchJob(tag, job_id, api.provider, model, name, "pending", keys, now, now)

    # --- waiting and collecting --------------------------------------------------------

    async def wait(self, records: list[BatchJob]) -> None:
        """Poll the jobs until each has ended and been collected (or a failure stops it)."""
        remaining = list(records)
        intervals = poll_intervals()
        while remaining:
            for record in list(remaining):
                status = await self._poll(record)
                if status is None or not status.done:
                    continue
                await self.collect(record, status)
                remaining.remove(record)
                if self.failure is not None:
                    return
            if remaining:
                await anyio.sleep(next(intervals))

    async def _poll(self, record: BatchJob) -> JobStatus | None:
        assert record.job_id is not None
        try:
            status = await self.api.status(record.job_id)
        except TRANSIENT_ERRORS as exc:  # the job runs on: ask again later
            logger.warning("could not poll batch job %s: %s", record.job_id, exc)
            return None
        if self.on_status is not None:
            self.on_status(status)
        return status

    async def collect(self, record: BatchJob, status: JobStatus) -> None:
        """Read an ended job's results into the store and out to the caller."""
        ids = {custom_id(key): key for key in record.keys}
        latency = max(0.0, time.time() - record.created_at)
        seen = set()
        for cid, outcome in await self.api.results(status):
            key = ids.get(cid)
            if key is None or key in seen:
                continue
            seen.add(key)
            result: Generation | ModelRegistryError
            if isinstance(outcome, ModelCallError):
                result = outcome
            else:
                result = self._generation(outcome, status.job_id, latency)
            self.deliver(key, result)
        for key in record.keys:
            if key not in seen:
                self.deliver(key, self._missing(status))
        await self._thread(record_state, record.tag, "collected")

    def _generation(
        self, answer: dict[str, Any], job_id: str, latency: float
    ) -> Generation | ModelRegistryError:
        try:
            return self.shape.generation(answer, batch_id=job_id, latency=latency)
        except (ModelCallError, InvalidParameterError) as exc:  # a structured answer, invalid
            return exc

    def _missing(self, status: JobStatus) -> ModelCallError:
        errors = status.data.get("errors")
        details = errors.get("data") if isinstance(errors, dict) else None
        said = "; ".join(str(e.get("message")) for e in details or () if isinstance(e, dict))
        wire = self.api.wire
        return error_for_status(
            None,
            f"the batch job {status.job_id} ended ({status.status}) without a result for this "
            f"request{': ' + said if said else ''}",
            provider=wire.provider,
            model=wire.model,
        )

    def deliver(self, key: str, result: Generation | BaseException) -> None:
        """Store one result (an enqueue) and hand it out, if it is one of this run's."""
        index = self.index_of.get(key)
        if self.budget is not None:
            self.budget.settle(key, result)
        if isinstance(result, Generation):
            record = _record(result)
            record.extra["batch_id"] = result.batch_id
            self.store.put_result(key, -1 if index is None else index, record)
        else:
            status = getattr(result, "status_code", None)
            status = status if isinstance(status, int) else None
            where = -1 if index is None else index
            self.store.put_error(key, where, type(result).__name__, str(result), status)
        if index is not None:
            self.hand_out(index, result)

    def hand_out(self, index: int, result: Generation | BaseException) -> None:
        """Emit one result, or keep the first error to raise (without return_exceptions)."""
        batch = self.batch
        if isinstance(result, BaseException):
            mark_index(result, index, len(batch.prompts), batch.caller)
            if isinstance(result, BudgetExceededError) and not batch.return_exceptions:
                self.over_budget = self.over_budget or result  # the jobs are still collected
                return
            if not batch.return_exceptions:
                self.failure = self.failure or result
                return
        if self.failure is None:
            self.emit(index, result)
            if self.on_done is not None:
                self.on_done(1)

    async def admit(self, pending: list[BatchJob], fresh: list[int]) -> list[int]:
        """The prompts of `fresh` the budget (if any) leaves room for; the others get
        BudgetExceededError, handed out and not stored."""
        if self.budget is None:
            return fresh
        admitted, refused = await self.budget.admit(pending, fresh, self.batch.prompts, self.keys)
        self.not_sent = len(refused)
        for index, error in refused.items():
            self.hand_out(index, error)
        return admitted

    def not_prompts(self, todo: list[int]) -> None:
        """Hand out the error of each prompt in `todo` that is no prompt (it has no key)."""
        for index in todo:
            if self.keys[index] is None:
                try:
                    to_messages(self.batch.prompts[index])
                except ModelRegistryError as exc:
                    self.hand_out(index, exc)


def _chunks(
    lines: list[tuple[str, bytes]], most: int, max_bytes: int
) -> list[list[tuple[str, bytes]]]:
    """`lines` in runs of at most `most` lines and `max_bytes` bytes (a line and its newline)."""
    chunks: list[list[tuple[str, bytes]]] = []
    size = 0
    for item in lines:
        if not chunks or len(chunks[-1]) >= most or size + len(item[1]) + 1 > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item[1]) + 1
    return chunks
