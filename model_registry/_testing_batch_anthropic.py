"""The fake server's Anthropic Message Batches endpoints, in the shapes Anthropic documents.

`POST /v1/messages/batches` ({"requests": [{"custom_id", "params"}]}), `GET
/v1/messages/batches/{id}`, `GET /v1/messages/batches?limit=&after_id=&before_id=`, `POST
/v1/messages/batches/{id}/cancel`, `GET /v1/messages/batches/{id}/results` (JSONL),
`DELETE /v1/messages/batches/{id}`. Requests carry `x-api-key` and `anthropic-version`.
A prompt with `!cache_write=N` reports N prompt-cache writes (`cache_creation_input_tokens`),
as `!cached=N` reports N cache reads (`cache_read_input_tokens`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from model_registry._testing_batch_jobs import (
    ANTHROPIC,
    CANCELED,
    ERRORED,
    EXPIRED,
    PROCESSING,
    SUCCEEDED,
    Batches,
    Job,
    JobEndpoints,
    Outcome,
    after,
    new_id,
    rfc3339,
)

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
WINDOW = 24 * 3600
#: Anthropic's error type for an HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
PROCESSING_STATUS = {"running": "in_progress", "cancelling": "canceling", "ended": "ended"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def anthropic_error(status: int, message: str) -> web.Response:
    """An Anthropic-shaped error answer."""
    error = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    return web.json_response({"type": "error", "error": error}, status=status)


def message(completion: dict[str, Any], written: int = 0) -> dict[str, Any]:
    """The Anthropic message of a chat completion (same text, same token counts; cached
    prompt tokens are Anthropic's `cache_read_input_tokens` and the `written` ones its
    `cache_creation_input_tokens`, both outside `input_tokens`)."""
    choice = completion["choices"][0]
    usage = completion["usage"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": [{"type": "text", "text": choice["message"]["content"]}],
        "stop_reason": STOP_REASONS.get(choice["finish_reason"], "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(0, usage["prompt_tokens"] - cached - written),
            "output_tokens": usage["completion_tokens"],
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": cached,
        },
    }


def _result(outcome: Outcome, kind: str) -> dict[str, Any]:
    if kind == SUCCEEDED:
        return {"type": SUCCEEDED, "message": message(outcome.body, outcome.cache_write)}
    if kind == ERRORED:
        text = outcome.body.get("error", {}).get("message", "error")
        error = {"type": ERROR_TYPES.get(outcome.status, "api_error"), "message": text}
        return {"type": ERRORED, "error": {"type": "error", "error": error}}
    return {"type": kind}


def _request_problem(index: int, item: Any, seen: set[str]) -> str | None:
    """Why `requests[index]` is not a valid batch request (None: it is)."""
    where = f"requests.{index}"
    if not isinstance(item, dict):
        return f"{where}: Input should be an object with 'custom_id' and 'params'"
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        return (
            f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$' "
            f"(got {custom_id!r})"
        )
    if custom_id in seen:
        return f"{where}.custom_id: Duplicate custom_id {custom_id!r}; each must be unique"
    seen.add(custom_id)
    params = item.get("params")
    if not isinstance(params, dict):
        return f"{where}.params: Field required"
    for field, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if not isinstance(params.get(field), kind):
            return f"{where}.params.{field}: Field required"
    return None


class AnthropicBatches(JobEndpoints):
    """The handlers; state in the shared `Batches`."""

    provider = ANTHROPIC

    def __init__(self, batches: Batches, api_key: str | None) -> None:
        super().__init__(batches)
        self.api_key = api_key

    def not_found(self, ident: str) -> web.Response:
        return anthropic_error(404, f"No message batch with id {ident!r}")

    def not_cancelled(self, request: web.Request, job: Job) -> web.Response:
        return anthropic_error(400, f"Message batch {job.id} has ended and cannot be canceled")

    def refusal(self, request: web.Request) -> web.Response | None:
        """A 401 without the right `x-api-key`, a 400 without `anthropic-version`."""
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return anthropic_error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "anthropic-version: header is required")
        return None

    async def create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        limit = self.batches.knobs.anthropic_max_bytes
        if len(raw) > limit:
            message = f"Request exceeds the maximum size: {len(raw)} bytes, at most {limit}"
            return anthropic_error(413, message)
        try:
            body = json.loads(raw)
        except ValueError:
            return anthropic_error(400, "The request body is not valid JSON")
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return anthropic_error(400, "requests: a non-empty list is required")
        most = self.batches.knobs.anthropic_max_requests
        if len(requests) > most:
            message = f"requests: {len(requests)} requests, at most {most} in a batch"
            return anthropic_error(400, message)
        seen: set[str] = set()
        for index, item in enumerate(requests):
            if (problem := _request_problem(index, item, seen)) is not None:
                return anthropic_error(400, problem)
        pairs = [(item["custom_id"], item["params"]) for item in requests]
        job = self.batches.create(ANTHROPIC, pairs)
        return web.json_response(self.view(request, job, fresh=True))

    async def results(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if job.state() != "ended":
            return anthropic_error(400, f"Message batch {job.id} has not ended; no results yet")
        self.counts.downloads += 1
        lines, done = [], job.finished()
        for index in job.order():
            result = _result(job.outcomes[index], job.kind(index, "ended", done))
            lines.append(json.dumps({"custom_id": job.custom_ids[index], "result": result}))
        return web.Response(text="\n".join(lines) + "\n", content_type="application/x-jsonl")

    async def delete(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if job.state() != "ended":
            return anthropic_error(400, f"Message batch {job.id} must end before it is deleted")
        del self.batches.jobs[job.id]
        return web.json_response({"id": job.id, "type": "message_batch_deleted"})

    async def list(self, request: web.Request) -> web.Response:
        limit = self.limit(request, 1000)
        if limit is None:
            return anthropic_error(400, "limit: an integer from 1 to 1000")
        jobs = self.batches.newest_first(ANTHROPIC)
        chosen = jobs[:limit]
        if (after_id := request.query.get("after_id")) is not None:
            jobs = after(jobs, after_id)
            chosen = jobs[:limit]
        elif (before := request.query.get("before_id")) is not None:
            ids = [job.id for job in jobs]
            jobs = jobs[: ids.index(before)] if before in ids else []
            chosen = jobs[-limit:]
        page = [self.view(request, job) for job in chosen]
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        body = {"data": page, "has_more": len(jobs) > limit, "first_id": first, "last_id": last}
        return web.json_response(body)

    def view(self, request: web.Request, job: Job, fresh: bool = False) -> dict[str, Any]:
        """The message batch object as Anthropic returns it (`fresh`: just created)."""
        state, counts = job.snapshot(fresh)
        base = request.path.split("/messages/batches")[0]
        url = f"{request.scheme}://{request.host}{base}/messages/batches/{job.id}/results"
        return {
            "id": job.id,
            "type": "message_batch",
            "processing_status": PROCESSING_STATUS[state],
            "request_counts": {
                "processing": counts[PROCESSING],
                "succeeded": counts[SUCCEEDED],
                "errored": counts[ERRORED],
                "canceled": counts[CANCELED],
                "expired": counts[EXPIRED],
            },
            "ended_at": rfc3339(job.ended_wall),
            "created_at": rfc3339(job.created_wall),
            "expires_at": rfc3339(job.created_wall + WINDOW),
            "archived_at": None,
            "cancel_initiated_at": rfc3339(job.cancel_wall),
            "results_url": url if state == "ended" else None,
        }
