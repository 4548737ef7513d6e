"""The batch jobs of `model_registry.testing`'s fake server, whatever the provider: the
knobs, the counters, each job's progress, cancel and per-request outcomes, and the
endpoints both providers serve alike (`JobEndpoints`: a job by id, its retrieval, its cancel).

Imported by the server process; it needs only aiohttp, the standard library and
`_testing_replies`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import os
import re
import time
from collections.abc import Callable, Collection
from typing import Any

from aiohttp import web

from model_registry._testing_replies import Answer, prompt_text, reply_text

OPENAI = "openai"
ANTHROPIC = "anthropic"
PROVIDERS = (OPENAI, ANTHROPIC)
#: What a finished request became.
SUCCEEDED, ERRORED, EXPIRED, CANCELED, PROCESSING = (
    "succeeded",
    "errored",
    "expired",
    "canceled",
    "processing",
)
#: The server's rule lookup: (body, model) -> (rule, whether its fault applies, serial).
RuleFor = Callable[[dict[str, Any], str], tuple[dict[str, Any], bool, bool]]


@dataclasses.dataclass
class Knobs:
    """How batch jobs behave (`FakeOpenAIServer.configure_batches` documents each one)."""

    duration: float = 0.0
    polls: int | None = None
    fail_ids: Collection[str] = dataclasses.field(default_factory=frozenset)
    fail_prompts: list[str] = dataclasses.field(default_factory=list)
    fail_status: int = 500
    expire_ids: Collection[str] = dataclasses.field(default_factory=frozenset)
    expire_prompts: list[str] = dataclasses.field(default_factory=list)
    cancel_polls: int = 0
    results_order: str = "input"
    openai_max_requests: int = 50_000
    openai_max_bytes: int = 200_000_000
    anthropic_max_requests: int = 100_000
    anthropic_max_bytes: int = 256_000_000

    def __post_init__(self) -> None:
        self.fail_ids = frozenset(self.fail_ids)
        self.expire_ids = frozenset(self.expire_ids)


@dataclasses.dataclass
class Counts:
    """What one provider's batch endpoints saw."""

    jobs_created: int = 0
    files_uploaded: int = 0
    requests: int = 0  # requests inside the jobs created
    polls: int = 0  # retrievals of one job
    lists: int = 0
    cancels: int = 0
    downloads: int = 0  # file contents and result files read
    rejected: int = 0  # 4xx answers of the batch endpoints


def new_id(prefix: str) -> str:
    return f"{prefix}{os.urandom(12).hex()}"


def rfc3339(seconds: float | None) -> str | None:
    """Anthropic's timestamps: RFC 3339 in UTC."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


#: Prompt-cache writes a batched prompt asks to be reported: `!cache_write=N` (Anthropic's
#: `cache_creation_input_tokens`, carved out of the prompt's tokens like `!cached=N`).
_CACHE_WRITE = re.compile(r"!cache_write=(\d+)")


class Outcome:
    """What one request of a job gets once it runs: an answer, an error, or expiry; and the
    prompt-cache writes its answer reports (`cache_write`)."""

    def __init__(self, kind: str, status: int = 200, body: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.status = status
        self.body = body or {}
        self.cache_write = 0


def _error(status: int, message: str, etype: str, code: str | None) -> Outcome:
    error = {"message": message, "type": etype, "param": None, "code": code}
    return Outcome(ERRORED, status, {"error": error})


def settle(
    knobs: Knobs, rule_for: RuleFor, created: int, custom_id: str, body: dict[str, Any]
) -> Outcome:
    """The outcome of one batched request: the knobs first, then the server's own rules
    (a model's `configure`, a prompt's `!status=`), else the chat completion it would get."""
    text = prompt_text(body)
    if custom_id in knobs.expire_ids or any(p in text for p in knobs.expire_prompts):
        return Outcome(EXPIRED)
    if custom_id in knobs.fail_ids or any(p in text for p in knobs.fail_prompts):
        status = knobs.fail_status
        etype = "server_error" if status >= 500 else "invalid_request_error"
        return _error(status, f"injected batch failure {status}", etype, None)
    model = str(body.get("model", ""))
    rule, faulty, _ = rule_for(body, model)
    if faulty and rule.get("status"):
        message = rule.get("message") or f"injected error {rule['status']}"
        etype = rule.get("error_type") or "server_error"
        return _error(rule["status"], message, etype, rule.get("error_code"))
    answer = Answer(body, model, reply_text(body, rule), rule)
    outcome = Outcome(SUCCEEDED, 200, answer.completion(created))
    outcome.cache_write = sum(int(n) for n in _CACHE_WRITE.findall(text))
    return outcome


class Job:
    """One batch job: its requests' outcomes (decided at creation) and how far it got.

    Requests finish in input order, evenly over the job's `duration` (or its `polls`
    retrievals); a cancel keeps those finished by then and cancels the rest, and takes
    effect after `cancel_polls` more retrievals.
    """

    def __init__(
        self, provider: str, custom_ids: list[str], outcomes: list[Outcome], knobs: Knobs
    ) -> None:
        self.provider = provider
        self.id = new_id("batch_" if provider == OPENAI else "msgbatch_")
        self.custom_ids = custom_ids
        self.outcomes = outcomes
        self.created = time.monotonic()
        self.created_wall = time.time()
        self.duration, self.end_polls, self.cancel_polls = (
            knobs.duration,
            knobs.polls,
            knobs.cancel_polls,
        )
        self.reversed = knobs.results_order == "reversed"
        self.polls = 0
        self.cancel_mark: int | None = None  # `polls` when the cancel came
        self.cancel_done = 0  # requests finished when the cancel came
        self.cancel_wall: float | None = None
        self.ended_wall: float | None = None
        #: Provider-specific fields (OpenAI: input file, endpoint, metadata, output files).
        self.info: dict[str, Any] = {}
        #: OpenAI: why validating the input file failed (the job then does nothing).
        self.errors: list[dict[str, Any]] = []

    def progress(self) -> float:
        if self.end_polls is not None:
            return min(1.0, self.polls / self.end_polls) if self.end_polls > 0 else 1.0
        if self.duration <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.created) / self.duration)

    def finished(self) -> int:
        """How many requests (the first ones) have run so far."""
        if self.cancel_mark is not None:
            return self.cancel_done
        return int(self.progress() * len(self.outcomes))

    def state(self) -> str:
        """ "failed" (validation), "running", "cancelling" or "ended"."""
        if self.errors:
            return "failed"
        if self.cancel_mark is not None:
            ended = self.polls - self.cancel_mark > self.cancel_polls
        else:
            ended = self.progress() >= 1.0
        if not ended:
            return "cancelling" if self.cancel_mark is not None else "running"
        if self.ended_wall is None:
            timed = self.end_polls is None and self.cancel_mark is None
            self.ended_wall = self.created_wall + self.duration if timed else time.time()
        return "ended"

    def kind(self, index: int, state: str, finished: int | None = None) -> str:
        """What request `index` is now: succeeded, errored, expired, canceled, processing
        (`finished`: `self.finished()`, when the caller has it)."""
        outcome = self.outcomes[index].kind
        done = self.finished() if finished is None else finished
        if index < done and outcome != EXPIRED:
            return outcome
        if state != "ended":
            return PROCESSING
        return CANCELED if self.cancel_mark is not None else outcome

    def counts(self) -> collections.Counter[str]:
        """How many requests are of each `kind` now."""
        state, done = self.state(), self.finished()
        if state == "ended" and self.cancel_mark is None:
            return collections.Counter(outcome.kind for outcome in self.outcomes)
        counts = collections.Counter(outcome.kind for outcome in self.outcomes[:done])
        rest = len(self.outcomes) - done + counts.pop(EXPIRED, 0)
        counts[CANCELED if state == "ended" else PROCESSING] = rest
        return counts

    def snapshot(self, fresh: bool = False) -> tuple[str, collections.Counter[str]]:
        """The state and counts to show; `fresh`: as the answer to the creation shows them
        (nothing has run yet, whatever the knobs)."""
        if fresh:
            return "running", collections.Counter({PROCESSING: len(self.outcomes)})
        return self.state(), self.counts()

    def cancel(self) -> bool:
        """Start cancelling (again: a no-op); False when the job has ended (or failed)."""
        state = self.state()
        if state != "running":
            return state == "cancelling"
        self.cancel_done = self.finished()
        self.cancel_mark = self.polls
        self.cancel_wall = time.time()
        return True

    def order(self) -> list[int]:
        """The order the results are written in."""
        indexes = list(range(len(self.outcomes)))
        return indexes[::-1] if self.reversed else indexes


class Batches:
    """The batch side of the fake server: knobs, counters, files and jobs."""

    def __init__(self, rule_for: RuleFor, created: int) -> None:
        self.rule_for = rule_for
        self.created = created
        self.reset()

    def reset(self) -> None:
        self.knobs = Knobs()
        self.counts = {provider: Counts() for provider in PROVIDERS}
        self.jobs: dict[str, Job] = {}
        #: OpenAI files: id -> (file object, content)
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}

    def configure(self, knobs: dict[str, Any]) -> None:
        self.knobs = Knobs(**knobs)

    def create(self, provider: str, requests: list[tuple[str, dict[str, Any]]]) -> Job:
        """A new job for (custom id, request body) pairs, counted as created."""
        knobs = self.knobs
        outcomes = [
            settle(knobs, self.rule_for, self.created, custom_id, body)
            for custom_id, body in requests
        ]
        job = Job(provider, [custom_id for custom_id, _ in requests], outcomes, knobs)
        self.jobs[job.id] = job
        self.counts[provider].jobs_created += 1
        self.counts[provider].requests += len(requests)
        return job

    def newest_first(self, provider: str) -> list[Job]:
        jobs = [job for job in self.jobs.values() if job.provider == provider]
        return jobs[::-1]

    def summary(self, provider: str | None) -> dict[str, Any]:
        """The counters of one provider, or summed over both."""
        chosen = PROVIDERS if provider is None else (provider,)
        total = collections.Counter[str]()
        for name in chosen:
            total.update(dataclasses.asdict(self.counts[name]))
        return {field.name: total[field.name] for field in dataclasses.fields(Counts)}

    def job_list(self, provider: str | None) -> list[dict[str, Any]]:
        """Every job (of `provider`), oldest first: id, provider, state, custom ids, counts."""
        return [
            {
                "id": job.id,
                "provider": job.provider,
                "state": job.state(),
                "custom_ids": job.custom_ids,
                "counts": dict(job.counts()),
            }
            for job in self.jobs.values()
            if provider in (None, job.provider)
        ]


class JobEndpoints:
    """The handlers both providers' batch endpoints share; each provider's class says how its
    jobs look (`view`) and how it refuses (`not_found`, `not_cancelled`)."""

    provider = OPENAI

    def __init__(self, batches: Batches) -> None:
        self.batches = batches

    @property
    def counts(self) -> Counts:
        return self.batches.counts[self.provider]

    def view(self, request: web.Request, job: Job, fresh: bool = False) -> dict[str, Any]:
        """The job object as the provider returns it (`fresh`: just created)."""
        raise NotImplementedError

    def not_found(self, ident: str) -> web.Response:
        """The provider's 404 for a job id it does not know."""
        raise NotImplementedError

    def not_cancelled(self, request: web.Request, job: Job) -> web.Response:
        """The provider's 400 for a cancel of a job that has ended."""
        raise NotImplementedError

    def _job(self, request: web.Request) -> Job | web.Response:
        ident = request.match_info["batch_id"]
        job = self.batches.jobs.get(ident)
        if job is None or job.provider != self.provider:
            return self.not_found(ident)
        return job

    async def retrieve(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        job.polls += 1
        self.counts.polls += 1
        return web.json_response(self.view(request, job))

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        self.counts.cancels += 1
        if not job.cancel():
            return self.not_cancelled(request, job)
        return web.json_response(self.view(request, job))

    def limit(self, request: web.Request, most: int) -> int | None:
        """A list call's `limit` (default 20), the call counted; None unless 1 to `most`."""
        self.counts.lists += 1
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return None
        return limit if 1 <= limit <= most else None


def after(jobs: list[Job], ident: str) -> list[Job]:
    """The jobs after the one with id `ident` in `jobs` (none when it is not there)."""
    ids = [job.id for job in jobs]
    return jobs[ids.index(ident) + 1 :] if ident in ids else []
