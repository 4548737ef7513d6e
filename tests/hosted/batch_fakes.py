"""respx stand-ins for the providers' batch endpoints, at their real URLs: what was sent is
kept (uploads, job bodies), and each request is answered from its own body."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

OPENAI = "https://api.openai.com/v1"
ANTHROPIC = "https://api.anthropic.com/v1/messages/batches"

#: A request body -> its answer: a chat answer dict, or (status, error body).
Answer = Callable[[dict[str, Any]], Any]


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def openai_echo(body: dict[str, Any]) -> dict[str, Any]:
    text = f"echo: {_last_user_text(body['messages'])}"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
    }


class OpenAIBatches:
    """OpenAI's Files + Batches at `base`: a job ends (with `status`) on its first poll."""

    def __init__(
        self, mock: respx.MockRouter, base: str = OPENAI, answer: Answer = openai_echo
    ) -> None:
        self.base, self.answer = base, answer
        self.uploads: list[list[dict[str, Any]]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.end_status = "completed"
        self.polls_before_end = 0
        self.upload = mock.post(f"{base}/files").mock(side_effect=self._upload)
        self.create = mock.post(f"{base}/batches").mock(side_effect=self._create)
        self.listing = mock.get(f"{base}/batches").mock(side_effect=self._list)
        mock.get(url__regex=rf"{base}/batches/[^/]+$").mock(side_effect=self._get)
        self.cancel = mock.post(url__regex=rf"{base}/batches/[^/]+/cancel$").mock(
            side_effect=self._cancel
        )
        mock.get(url__regex=rf"{base}/files/[^/]+/content$").mock(side_effect=self._content)

    def _upload(self, request: httpx.Request) -> httpx.Response:
        content = request.content
        start = content.index(b"\r\n\r\n", content.index(b'filename="batch.jsonl"')) + 4
        data = content[start : content.index(b"\r\n--", start)]
        lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        self.uploads.append(lines)
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = data
        return httpx.Response(200, json={"id": file_id, "object": "file", "purpose": "batch"})

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.created.append(body)
        job_id = f"batch_{len(self.jobs)}"
        job = {"id": job_id, "object": "batch", "status": "validating", "polls": 0, **body}
        self.jobs[job_id] = job
        return httpx.Response(200, json=self._shown(job))

    def _shown(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k != "polls"}

    def _get(self, request: httpx.Request) -> httpx.Response:
        job = self.jobs.get(request.url.path.rsplit("/", 1)[1])
        if job is None:
            return httpx.Response(404, json={"error": {"message": "No batch found"}})
        job["polls"] += 1
        if job["status"] in ("validating", "in_progress") and job["polls"] > self.polls_before_end:
            self._end(job)
        return httpx.Response(200, json=self._shown(job))

    def _end(self, job: dict[str, Any]) -> None:
        out, errors = [], []
        lines = self.files[job["input_file_id"]].splitlines()
        for line in map(json.loads, lines):
            if self.end_status != "completed":
                errors.append(
                    {
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {"code": f"batch_{self.end_status}", "message": "not run"},
                    }
                )
                continue
            answer = self.answer(line["body"])
            status, body = answer if isinstance(answer, tuple) else (200, answer)
            item = {
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "body": body},
            }
            (out if status == 200 else errors).append(item)
        job["status"] = self.end_status
        job["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(errors)}
        for field, items in (("output_file_id", out), ("error_file_id", errors)):
            if items:
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = b"\n".join(json.dumps(i).encode() for i in items) + b"\n"
                job[field] = file_id

    def _content(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self.files[request.url.path.split("/")[-2]])

    def _cancel(self, request: httpx.Request) -> httpx.Response:
        job = self.jobs[request.url.path.split("/")[-2]]
        job["status"] = "cancelling"
        return httpx.Response(200, json=self._shown(job))

    def _list(self, request: httpx.Request) -> httpx.Response:
        data = [self._shown(job) for job in reversed(self.jobs.values())]
        return httpx.Response(200, json={"object": "list", "data": data, "has_more": False})


def anthropic_echo(params: dict[str, Any]) -> dict[str, Any]:
    text = f"echo: {_last_user_text(params['messages'])}"
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 4},
    }


class AnthropicBatches:
    """Anthropic's Message Batches: a job ends on its first poll; `answer` gives each
    request's result (a message, or a whole `result` object for other outcomes)."""

    def __init__(self, mock: respx.MockRouter, answer: Answer = anthropic_echo) -> None:
        self.answer = answer
        self.created: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.create = mock.post(ANTHROPIC).mock(side_effect=self._create)
        self.listing = mock.get(ANTHROPIC).mock(side_effect=self._list)
        mock.get(url__regex=rf"{ANTHROPIC}/[^/]+$").mock(side_effect=self._get)
        mock.get(url__regex=rf"{ANTHROPIC}/[^/]+/results$").mock(side_effect=self._results)
        self.cancel = mock.post(url__regex=rf"{ANTHROPIC}/[^/]+/cancel$").mock(
            return_value=httpx.Response(200, json={"processing_status": "canceling"})
        )

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.created.append(body)
        job_id = f"msgbatch_{len(self.jobs)}"
        self.jobs[job_id] = {
            "id": job_id,
            "processing_status": "in_progress",
            "request_counts": {"processing": len(body["requests"]), "succeeded": 0},
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "body": body,
        }
        return httpx.Response(200, json=self._shown(self.jobs[job_id]))

    def _list(self, request: httpx.Request) -> httpx.Response:
        data = [self._shown(job) for job in reversed(self.jobs.values())]
        return httpx.Response(200, json={"data": data, "has_more": False})

    def _shown(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k != "body"}

    def _get(self, request: httpx.Request) -> httpx.Response:
        job = self.jobs[request.url.path.rsplit("/", 1)[1]]
        job["processing_status"] = "ended"
        job["results_url"] = f"{ANTHROPIC}/{job['id']}/results"
        return httpx.Response(200, json=self._shown(job))

    def _results(self, request: httpx.Request) -> httpx.Response:
        job = self.jobs[request.url.path.split("/")[-2]]
        lines = []
        for item in job["body"]["requests"]:
            answer = self.answer(item["params"])
            result = answer if "type" in answer and answer["type"] != "message" else None
            result = result or {"type": "succeeded", "message": answer}
            lines.append(json.dumps({"custom_id": item["custom_id"], "result": result}))
        return httpx.Response(200, content="\n".join(lines).encode())
