"""The batch endpoints of each provider: OpenAI's Files + Batches (and any OpenAI-compatible
`api_base` that serves them) and Anthropic's Message Batches.

Each adapter turns request lines into a job, reads a job's status, its results (a chat
answer, or our error for a request that failed, expired or was cancelled, its status and
message kept), cancels a job, and finds the job of an intent that a crash left unrecorded:
by the tag it carries in OpenAI's `metadata`; Anthropic's batches carry none, so there by
its size and the minute it was created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from model_registry.clients._batch_api.wire import Wire, error_for_status, error_message
from model_registry.errors import ModelCallError, NotFoundError

__all__ = ["TAG_KEY", "AnthropicJobs", "Intent", "JobStatus", "OpenAIJobs", "ProviderJobs"]

#: The metadata key under which an OpenAI job carries the tag of its store's intent.
TAG_KEY = "model_registry_tag"
#: A result: the provider's chat answer (a dict of its own shape), or our error.
Outcome = dict[str, Any] | ModelCallError


class Intent(NamedTuple):
    """A job a crash may have left unrecorded: its tag, request count, when it was
    recorded (seconds since the epoch), and the job ids the store knows already."""

    tag: str
    requests: int
    created_at: float
    known: frozenset[str]


class JobStatus(NamedTuple):
    """A job as the provider reports it: its own status word, whether it has ended, its
    request counts (named as the provider names them), and the whole job object."""

    job_id: str
    status: str
    done: bool
    counts: dict[str, int]
    data: dict[str, Any]

    def __str__(self) -> str:
        """ "job ID STATUS (COUNT NAME, ...)", the counts as the provider names them."""
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if k != "total")
        return f"job {self.job_id} {self.status}" + (f" ({counts})" if counts else "")


class ProviderJobs(Protocol):
    """What the orchestration needs of a provider's batch endpoints."""

    provider: str
    max_requests: int
    max_bytes: int
    wire: Wire

    def line(self, custom_id: str, body: dict[str, Any]) -> bytes: ...
    async def create(self, lines: list[bytes], tag: str) -> str: ...
    async def status(self, job_id: str) -> JobStatus: ...
    async def results(self, job: JobStatus) -> list[tuple[str, Outcome]]: ...
    async def cancel(self, job_id: str) -> None: ...
    async def find(self, intent: Intent) -> list[str]: ...


def _counts(data: Mapping[str, Any]) -> dict[str, int]:
    counts = data.get("request_counts")
    if not isinstance(counts, Mapping):
        return {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}


class OpenAIJobs:
    """OpenAI's Batch API: a JSONL file uploaded with `purpose=batch`, a batch on
    `/v1/chat/completions`, its output and error files."""

    provider = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    _ENDED = frozenset({"completed", "failed", "expired", "cancelled"})

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        request = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
        return json.dumps({**request, "body": body}, separators=(",", ":")).encode()

    async def create(self, lines: list[bytes], tag: str) -> str:
        content = b"\n".join(lines) + b"\n"
        try:
            upload = await self.wire.json(
                "POST",
                "/files",
                data={"purpose": "batch"},
                files={"file": ("batch.jsonl", content, "application/jsonl")},
            )
        except NotFoundError as exc:
            exc.add_note(
                f"{self.wire.base} serves no OpenAI Files endpoint: an OpenAI-compatible "
                "server needs /files and /batches for batch_api=True (vLLM's does not)"
            )
            raise
        job = await self.wire.json(
            "POST",
            "/batches",
            json={
                "input_file_id": upload["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
                "metadata": {TAG_KEY: tag},
            },
        )
        return str(job["id"])

    async def status(self, job_id: str) -> JobStatus:
        data = await self.wire.json("GET", f"/batches/{job_id}")
        status = str(data.get("status"))
        return JobStatus(job_id, status, status in self._ENDED, _counts(data), data)

    async def results(self, job: JobStatus) -> list[tuple[str, Outcome]]:
        found: list[tuple[str, Outcome]] = []
        for field in ("output_file_id", "error_file_id"):
            file_id = job.data.get(field)
            if file_id:
                for item in await self.wire.lines(f"/files/{file_id}/content"):
                    found.append((str(item.get("custom_id")), self._outcome(item)))
        return found

    def _outcome(self, item: Mapping[str, Any]) -> Outcome:
        response = item.get("response")
        if isinstance(response, Mapping):
            status, body = response.get("status_code"), response.get("body")
            if status == 200 and isinstance(body, dict):
                return body
            code = status if isinstance(status, int) else None
            return self._error(code, error_message(body))
        return self._error(None, error_message({"error": item.get("error")}))

    def _error(self, status: int | None, message: str) -> ModelCallError:
        wire = self.wire
        return error_for_status(status, message, provider=wire.provider, model=wire.model)

    async def cancel(self, job_id: str) -> None:
        await self.wire.send("POST", f"/batches/{job_id}/cancel")

    async def find(self, intent: Intent) -> list[str]:
        found, after = [], None
        for _ in range(20):  # the newest 2,000 jobs: an intent is minutes old at most
            params = {"limit": 100, **({"after": after} if after else {})}
            page = await self.wire.json("GET", "/batches", params=params)
            for job in page.get("data") or ():
                if (job.get("metadata") or {}).get(TAG_KEY) == intent.tag:
                    found.append(str(job["id"]))
            if not page.get("has_more") or not page.get("data"):
                break
            after = page["data"][-1]["id"]
        return found


#: Anthropic's error types and the HTTP status each stands for.
_ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicJobs:
    """Anthropic's Message Batches: `POST /v1/messages/batches` with `{custom_id, params}`
    requests, polled until `ended`, results read from its `results_url`."""

    provider = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def line(self, custom_id: str, body: dict[str, Any]) -> bytes:
        request = {"custom_id": custom_id, "params": body}
        return json.dumps(request, separators=(",", ":")).encode()

    async def create(self, lines: list[bytes], tag: str) -> str:
        content = b'{"requests":[' + b",".join(lines) + b"]}"
        job = await self.wire.json(
            "POST",
            "/v1/messages/batches",
            content=content,
            headers={"content-type": "application/json"},
        )
        return str(job["id"])

    async def status(self, job_id: str) -> JobStatus:
        data = await self.wire.json("GET", f"/v1/messages/batches/{job_id}")
        status = str(data.get("processing_status"))
        return JobStatus(job_id, status, status == "ended", _counts(data), data)

    async def results(self, job: JobStatus) -> list[tuple[str, Outcome]]:
        url = str(job.data.get("results_url") or "")
        if not url.startswith(f"{self.wire.base}/"):  # the key goes to the api_base only
            url = f"/v1/messages/batches/{job.job_id}/results"
        return [
            (str(item.get("custom_id")), self._outcome(item.get("result") or {}))
            for item in await self.wire.lines(url)
        ]

    def _outcome(self, result: Mapping[str, Any]) -> Outcome:
        kind = result.get("type")
        if kind == "succeeded" and isinstance(result.get("message"), dict):
            return dict(result["message"])
        wire = self.wire
        if kind == "errored":
            error: Any = result.get("error") or {}
            inner: Any = error.get("error") if isinstance(error.get("error"), Mapping) else error
            status = _ANTHROPIC_STATUS.get(str(inner.get("type")))
            message = error_message({"error": inner})
            return error_for_status(status, message, provider=wire.provider, model=wire.model)
        message = f"the request was not run: the batch job {kind or 'ended without it'}"
        return error_for_status(None, message, provider=wire.provider, model=wire.model)

    async def cancel(self, job_id: str) -> None:
        await self.wire.send("POST", f"/v1/messages/batches/{job_id}/cancel")

    async def find(self, intent: Intent) -> list[str]:
        """The newest job of the intent's size created from a minute before it on, not
        known to the store (Anthropic's batches carry no metadata to tag them with)."""
        page = await self.wire.json("GET", "/v1/messages/batches", params={"limit": 100})
        for job in page.get("data") or ():
            total = sum(_counts(job).values())
            created = _timestamp(job.get("created_at"))
            if (
                total == intent.requests
                and created is not None
                and created >= intent.created_at - 60
                and job.get("id") not in intent.known
            ):
                return [str(job["id"])]
        return []


def _timestamp(value: Any) -> float | None:
    """An RFC 3339 time (Anthropic's `created_at`) as seconds since the epoch."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
