"""The fake server's OpenAI Files and Batch endpoints, in the shapes OpenAI documents.

`POST /v1/files` (multipart: `file`, `purpose`), `GET /v1/files/{id}`, `GET
/v1/files/{id}/content`, `DELETE /v1/files/{id}`, `POST /v1/batches`, `GET /v1/batches/{id}`,
`GET /v1/batches?limit=&after=`, `POST /v1/batches/{id}/cancel`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from model_registry._testing_batch_jobs import (
    CANCELED,
    ERRORED,
    EXPIRED,
    OPENAI,
    SUCCEEDED,
    Job,
    JobEndpoints,
    after,
    new_id,
)

ENDPOINT = "/v1/chat/completions"
WINDOW = 24 * 3600
#: The error-file line of a request that never ran.
NOT_RUN = {
    EXPIRED: (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    CANCELED: (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}


def bad_request(message: str, param: str | None = None, status: int = 400) -> web.Response:
    """An OpenAI-shaped `invalid_request_error`."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return web.json_response({"error": error}, status=status)


def _problem(code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """One entry of a failed batch's `errors.data` (its `line` is added by the caller)."""
    return {"code": code, "message": message, "param": param}


def _file_object(ident: str, size: int, filename: str, purpose: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": ident,
        "object": "file",
        "bytes": size,
        "created_at": now,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": now + 30 * 24 * 3600,
        "status_details": None,
    }


def _metadata_problem(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        return "metadata must be an object of at most 16 string pairs"
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            return "metadata keys are strings of at most 64 characters, values at most 512"
    return None


def _line_problem(line: str, seen: dict[str, Any]) -> dict[str, Any] | None:
    """Why a line of an input file is not a valid request (None: it is, and it is kept)."""
    try:
        item = json.loads(line)
    except ValueError:
        return _problem("invalid_json_line", "This line is not valid JSON.")
    if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
        return _problem("missing_required_parameter", "Missing 'body'.", "body")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _problem("missing_required_parameter", "Missing 'custom_id'.", "custom_id")
    if custom_id in seen["ids"]:
        message = f"The custom_id {custom_id!r} is used more than once."
        return _problem("duplicate_custom_id", message, "custom_id")
    if item.get("method") != "POST" or item.get("url") != ENDPOINT:
        message = f"Each request must be POST {ENDPOINT}, the batch's endpoint."
        return _problem("invalid_url", message, "url")
    model = item["body"].get("model")
    if seen.setdefault("model", model) != model:
        message = "Every request of a batch must use the same model."
        return _problem("mismatched_model", message, "body.model")
    seen["ids"][custom_id] = item["body"]
    return None


def read_input(content: bytes, max_requests: int) -> tuple[list[tuple[str, Any]], list[Any]]:
    """The (custom id, body) pairs of an input file, and the validation errors (if any)."""
    seen: dict[str, Any] = {"ids": {}}
    errors: list[dict[str, Any]] = []
    lines = [line for line in content.decode("utf-8", "replace").splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        if (problem := _line_problem(line, seen)) is not None:
            errors.append({**problem, "line": number})
    if not lines:
        errors.append({**_problem("empty_file", "The input file holds no request."), "line": None})
    if len(lines) > max_requests:
        message = (
            f"The input file holds {len(lines)} requests; a batch holds at most {max_requests}."
        )
        errors.append({**_problem("too_many_requests", message), "line": None})
    return list(seen["ids"].items()), errors


class OpenAIBatches(JobEndpoints):
    """The handlers; state in the shared `Batches`."""

    provider = OPENAI

    def not_found(self, ident: str) -> web.Response:
        return bad_request(f"No batch found with id '{ident}'.", "batch_id", status=404)

    def not_cancelled(self, request: web.Request, job: Job) -> web.Response:
        status = self.view(request, job)["status"]
        return bad_request(f"Cannot cancel a batch with status '{status}'.")

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str):
            return bad_request("A file upload needs the multipart fields 'file' and 'purpose'.")
        content = upload.file.read()
        if purpose == "batch":
            if not upload.filename.endswith(".jsonl"):
                return bad_request("Invalid file format for Batch API. Must be .jsonl", "file")
            limit = self.batches.knobs.openai_max_bytes
            if len(content) > limit:
                message = f"File is too large: {len(content)} bytes, at most {limit} for a batch."
                return bad_request(message, "file")
        ident = new_id("file-")
        file = _file_object(ident, len(content), upload.filename, purpose)
        self.batches.files[ident] = (file, content)
        self.counts.files_uploaded += 1
        return web.json_response(file)

    def _file(self, request: web.Request) -> tuple[dict[str, Any], bytes] | web.Response:
        ident = request.match_info["file_id"]
        found = self.batches.files.get(ident)
        if found is None:
            return bad_request(f"No such File object: {ident}", "id", status=404)
        return found

    async def get_file(self, request: web.Request) -> web.Response:
        found = self._file(request)
        return found if isinstance(found, web.Response) else web.json_response(found[0])

    async def content(self, request: web.Request) -> web.Response:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        self.counts.downloads += 1
        return web.Response(body=found[1], content_type="application/octet-stream")

    async def delete_file(self, request: web.Request) -> web.Response:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        del self.batches.files[found[0]["id"]]
        return web.json_response({"id": found[0]["id"], "object": "file", "deleted": True})

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return bad_request("The request body is not JSON.")
        problem = self._create_problem(body)
        if problem is not None:
            return problem
        file, content = self.batches.files[body["input_file_id"]]
        requests, errors = read_input(content, self.batches.knobs.openai_max_requests)
        if errors:
            job = Job(OPENAI, [], [], self.batches.knobs)
            job.errors = errors
            self.batches.jobs[job.id] = job
            self.counts.jobs_created += 1
        else:
            job = self.batches.create(OPENAI, requests)
        job.info = {"input_file_id": file["id"], "metadata": body.get("metadata")}
        return web.json_response(self.view(request, job, fresh=True))

    def _create_problem(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return bad_request("The request body must be a JSON object.")
        if body.get("endpoint") != ENDPOINT:
            message = f"endpoint must be {ENDPOINT!r} here, got {body.get('endpoint')!r}."
            return bad_request(message, "endpoint")
        if body.get("completion_window") != "24h":
            return bad_request("completion_window must be '24h'.", "completion_window")
        if (problem := _metadata_problem(body.get("metadata"))) is not None:
            return bad_request(problem, "metadata")
        ident = str(body.get("input_file_id"))
        found = self.batches.files.get(ident)
        if found is None:
            return bad_request(f"No such File object: {ident}", "input_file_id", 404)
        if found[0]["purpose"] != "batch":
            message = "The input file must be uploaded with purpose 'batch'."
            return bad_request(message, "input_file_id")
        return None

    async def list(self, request: web.Request) -> web.Response:
        limit = self.limit(request, 100)
        if limit is None:
            return bad_request("limit must be an integer from 1 to 100.", "limit")
        jobs = self.batches.newest_first(OPENAI)
        if (after_id := request.query.get("after")) is not None:
            jobs = after(jobs, after_id)
        page = [self.view(request, job) for job in jobs[:limit]]
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        body = {"object": "list", "data": page, "first_id": first, "last_id": last}
        return web.json_response({**body, "has_more": len(jobs) > limit})

    def view(self, request: web.Request, job: Job, fresh: bool = False) -> dict[str, Any]:
        """The batch object as OpenAI returns it (`fresh`: just created)."""
        state, counts = job.snapshot(fresh=fresh)
        status = _status(job, state, fresh)
        stamps = _stamps(job, status)
        if state == "ended" and "output_file_id" not in job.info:
            job.info.update(self._write_results(job))
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": job.errors} if job.errors else None,
            "input_file_id": job.info.get("input_file_id"),
            "completion_window": "24h",
            "status": status,
            "output_file_id": job.info.get("output_file_id"),
            "error_file_id": job.info.get("error_file_id"),
            **stamps,
            "request_counts": {
                "total": len(job.outcomes),
                "completed": counts[SUCCEEDED],
                "failed": counts[ERRORED],
            },
            "metadata": job.info.get("metadata"),
        }

    def _write_results(self, job: Job) -> dict[str, str | None]:
        """The output and error files of an ended job (None where one would be empty)."""
        good: list[str] = []
        bad: list[str] = []
        done = job.finished()
        for index in job.order():
            kind = job.kind(index, "ended", done)
            line = _result_line(job, index, kind)
            (good if kind == SUCCEEDED else bad).append(json.dumps(line))
        ids: dict[str, str | None] = {}
        for field, lines in (("output_file_id", good), ("error_file_id", bad)):
            ids[field] = None
            if lines:
                content = ("\n".join(lines) + "\n").encode()
                ident = new_id("file-")
                name = f"{job.id}_{field.split('_')[0]}.jsonl"
                file = _file_object(ident, len(content), name, "batch_output")
                self.batches.files[ident] = (file, content)
                ids[field] = ident
        return ids


def _result_line(job: Job, index: int, kind: str) -> dict[str, Any]:
    """One line of an output or error file."""
    line: dict[str, Any] = {"id": new_id("batch_req_"), "custom_id": job.custom_ids[index]}
    if kind in NOT_RUN:
        code, message = NOT_RUN[kind]
        return {**line, "response": None, "error": {"code": code, "message": message}}
    outcome = job.outcomes[index]
    response = {"status_code": outcome.status, "request_id": new_id("req_"), "body": outcome.body}
    return {**line, "response": response, "error": None}


def _status(job: Job, state: str, created: bool) -> str:
    if created:
        return "validating"
    if state == "ended":
        if job.cancel_mark is not None:
            return "cancelled"
        return "expired" if any(o.kind == EXPIRED for o in job.outcomes) else "completed"
    return {"failed": "failed", "cancelling": "cancelling"}.get(state, "in_progress")


def _stamps(job: Job, status: str) -> dict[str, int | None]:
    """The batch's `*_at` timestamps for `status`."""
    created = int(job.created_wall)
    ended = int(job.ended_wall) if job.ended_wall is not None else None
    cancelling = int(job.cancel_wall) if job.cancel_wall is not None else None
    return {
        "created_at": created,
        "in_progress_at": created if status not in ("validating", "failed") else None,
        "expires_at": created + WINDOW,
        "finalizing_at": ended if status in ("completed", "expired") else None,
        "completed_at": ended if status == "completed" else None,
        "failed_at": created if status == "failed" else None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": cancelling,
        "cancelled_at": ended if status == "cancelled" else None,
    }
