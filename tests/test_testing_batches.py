"""The fake server's batch endpoints, driven with plain HTTP in the providers' documented
shapes: OpenAI Files + Batches, Anthropic Message Batches; their knobs and counters."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from model_registry.testing import FakeOpenAIServer, run_openai_server

KEY = "sk-fake-batch"
OPENAI_HEADERS = {"Authorization": f"Bearer {KEY}"}
ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeOpenAIServer]:
    with run_openai_server(api_key=KEY) as server:
        yield server


@pytest.fixture
def server(shared_server: FakeOpenAIServer) -> FakeOpenAIServer:
    shared_server.reset()
    return shared_server


# --- OpenAI ---------------------------------------------------------------------------


def _line(custom_id: str, prompt: str, model: str = "gpt-batch") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def _upload(server: FakeOpenAIServer, content: bytes, name: str = "in.jsonl") -> httpx.Response:
    return httpx.post(
        f"{server.url}/files",
        headers=OPENAI_HEADERS,
        files={"file": (name, content, "application/jsonl")},
        data={"purpose": "batch"},
    )


def _create(server: FakeOpenAIServer, file_id: str, **extra: Any) -> httpx.Response:
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
    return httpx.post(
        f"{server.url}/batches",
        headers=OPENAI_HEADERS,
        json={**body, "completion_window": "24h", **extra},
    )


def _submit(server: FakeOpenAIServer, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    upload = _upload(server, _jsonl(items))
    assert upload.status_code == 200, upload.text
    created = _create(server, upload.json()["id"], **extra)
    assert created.status_code == 200, created.text
    return dict(created.json())


def _poll(server: FakeOpenAIServer, batch_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/batches/{batch_id}", headers=OPENAI_HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _lines(server: FakeOpenAIServer, file_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/files/{file_id}/content", headers=OPENAI_HEADERS)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _chat(server: FakeOpenAIServer, prompt: str, model: str = "gpt-batch") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    response = httpx.post(f"{server.url}/chat/completions", headers=OPENAI_HEADERS, json=body)
    return dict(response.json())


def test_an_openai_job_runs_through_its_lifecycle_and_answers_in_input_order(
    server: FakeOpenAIServer,
) -> None:
    server.configure_batches(polls=3)
    items = [_line(f"req-{i}", f"question {i}") for i in range(300)]
    upload = _upload(server, _jsonl(items))
    file = upload.json()
    assert (file["object"], file["purpose"], file["filename"]) == ("file", "batch", "in.jsonl")
    assert file["bytes"] == len(_jsonl(items)) and file["id"].startswith("file-")
    batch = _create(server, file["id"], metadata={"store": "abc"}).json()
    assert batch["object"] == "batch" and batch["id"].startswith("batch_")
    assert (batch["status"], batch["output_file_id"], batch["metadata"]) == (
        "validating",
        None,
        {"store": "abc"},
    )
    assert batch["request_counts"] == {"total": 300, "completed": 0, "failed": 0}
    first, second, third = (_poll(server, batch["id"]) for _ in range(3))
    assert (first["status"], first["request_counts"]["completed"]) == ("in_progress", 100)
    assert (second["status"], second["request_counts"]["completed"]) == ("in_progress", 200)
    assert third["status"] == "completed" and third["completed_at"] is not None
    assert third["request_counts"] == {"total": 300, "completed": 300, "failed": 0}
    assert third["error_file_id"] is None and third["input_file_id"] == file["id"]
    lines = _lines(server, third["output_file_id"])
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(300)]
    assert len({line["id"] for line in lines}) == 300 and lines[0]["error"] is None
    assert {line["response"]["status_code"] for line in lines} == {200}
    answer = lines[7]["response"]["body"]
    assert server.stats().requests == 0  # nothing went through the per-request endpoint
    alone = _chat(server, "question 7")
    assert answer["choices"] == alone["choices"] and answer["usage"] == alone["usage"]
    stats = server.batch_stats("openai")
    assert (stats.files_uploaded, stats.jobs_created, stats.requests) == (1, 1, 300)
    assert (stats.polls, stats.downloads, stats.rejected) == (3, 1, 0)
    assert server.batch_stats("anthropic").jobs_created == 0


def test_a_job_takes_its_duration_in_seconds(server: FakeOpenAIServer) -> None:
    server.configure_batches(duration=600)
    slow = _submit(server, [_line("a", "x")])
    assert _poll(server, slow["id"])["status"] == "in_progress"
    server.configure_batches(duration=0.3)  # jobs created from now on
    quick = _submit(server, [_line("a", "x")])
    deadline = time.monotonic() + 30
    while (status := _poll(server, quick["id"])["status"]) != "completed":
        assert status == "in_progress" and time.monotonic() < deadline
        time.sleep(0.05)
    assert _poll(server, slow["id"])["status"] == "in_progress"


def test_failed_and_expired_requests_go_to_the_error_file(server: FakeOpenAIServer) -> None:
    server.configure_batches(fail_ids=["r1"], expire_prompts=["too slow"], fail_status=503)
    server.configure("gpt-batch", reply="fixed answer")
    prompts = ["fine", "fails by id", "too slow here", "bad !status=400", "fine too"]
    batch = _submit(server, [_line(f"r{i}", p) for i, p in enumerate(prompts)])
    done = _poll(server, batch["id"])
    assert done["status"] == "expired" and done["expired_at"] is not None
    assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 2}
    good = _lines(server, done["output_file_id"])
    assert [line["custom_id"] for line in good] == ["r0", "r4"]
    assert good[0]["response"]["body"]["choices"][0]["message"]["content"] == "fixed answer"
    bad = {line["custom_id"]: line for line in _lines(server, done["error_file_id"])}
    assert set(bad) == {"r1", "r2", "r3"}
    assert bad["r1"]["response"]["status_code"] == 503 and bad["r1"]["error"] is None
    assert bad["r1"]["response"]["body"]["error"]["type"] == "server_error"
    assert bad["r3"]["response"]["status_code"] == 400
    assert bad["r2"]["response"] is None
    assert bad["r2"]["error"]["code"] == "batch_expired"


def test_a_cancel_keeps_what_ran_and_cancels_the_rest(server: FakeOpenAIServer) -> None:
    server.configure_batches(polls=4, cancel_polls=1)
    batch = _submit(server, [_line(f"c{i}", f"p{i}") for i in range(8)])
    assert _poll(server, batch["id"])["request_counts"]["completed"] == 2
    url = f"{server.url}/batches/{batch['id']}/cancel"
    cancelling = httpx.post(url, headers=OPENAI_HEADERS).json()
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    assert _poll(server, batch["id"])["status"] == "cancelling"  # cancel_polls=1
    done = _poll(server, batch["id"])
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    assert done["request_counts"] == {"total": 8, "completed": 2, "failed": 0}
    assert [line["custom_id"] for line in _lines(server, done["output_file_id"])] == ["c0", "c1"]
    errors = _lines(server, done["error_file_id"])
    assert [line["error"]["code"] for line in errors] == ["batch_cancelled"] * 6
    again = httpx.post(url, headers=OPENAI_HEADERS)  # a job that has ended
    assert again.status_code == 400 and "cancelled" in again.json()["error"]["message"]
    assert server.batch_stats("openai").cancels == 2


def test_batches_are_listed_newest_first_with_their_metadata(server: FakeOpenAIServer) -> None:
    ids = [_submit(server, [_line("a", "x")], metadata={"n": str(n)})["id"] for n in range(3)]
    page = httpx.get(f"{server.url}/batches?limit=2", headers=OPENAI_HEADERS).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [b["id"] for b in page["data"]] == ids[:0:-1]
    assert [b["metadata"] for b in page["data"]] == [{"n": "2"}, {"n": "1"}]
    rest = httpx.get(
        f"{server.url}/batches", params={"after": page["last_id"]}, headers=OPENAI_HEADERS
    ).json()
    assert [b["id"] for b in rest["data"]] == ids[:1] and rest["has_more"] is False
    assert server.batch_stats().lists == 2


def test_openai_requests_are_checked_as_the_provider_checks_them(
    server: FakeOpenAIServer,
) -> None:
    file_id = _upload(server, _jsonl([_line("a", "x")])).json()["id"]
    wrong = {
        "endpoint": _create(server, file_id, endpoint="/v1/embeddings"),
        "window": _create(server, file_id, completion_window="1h"),
        "metadata": _create(server, file_id, metadata={f"k{i}": "v" for i in range(17)}),
        "file": _create(server, "file-nope"),
        "format": _upload(server, b"{}", name="in.txt"),
        "key": httpx.get(f"{server.url}/batches", headers={"Authorization": "Bearer other"}),
    }
    statuses = {name: response.status_code for name, response in wrong.items()}
    assert statuses == dict.fromkeys(wrong, 400) | {"file": 404, "key": 401}
    assert server.batch_stats("openai").rejected == 6
    assert server.batch_stats("openai").jobs_created == 0


def test_a_malformed_input_file_fails_the_job_at_validation(server: FakeOpenAIServer) -> None:
    items = [_line("same", "x"), _line("same", "y"), _line("other", "z", model="gpt-other")]
    batch = _submit(server, items)
    assert batch["status"] == "validating"
    failed = _poll(server, batch["id"])
    assert failed["status"] == "failed" and failed["failed_at"] is not None
    errors = failed["errors"]["data"]
    assert [(e["code"], e["line"]) for e in errors] == [
        ("duplicate_custom_id", 2),
        ("mismatched_model", 3),
    ]
    assert failed["output_file_id"] is None and failed["error_file_id"] is None


def test_openai_limits_per_job_and_per_file_are_knobs(server: FakeOpenAIServer) -> None:
    server.configure_batches(openai_max_requests=2, openai_max_bytes=500)
    too_big = _upload(server, _jsonl([_line(f"r{i}", "x" * 50) for i in range(4)]))
    assert too_big.status_code == 400 and "too large" in too_big.json()["error"]["message"]
    batch = _submit(server, [_line(f"r{i}", "x") for i in range(3)])
    failed = _poll(server, batch["id"])
    assert failed["status"] == "failed"
    assert [e["code"] for e in failed["errors"]["data"]] == ["too_many_requests"]
    assert _poll(server, _submit(server, [_line("a", "x"), _line("b", "y")])["id"])["status"] == (
        "completed"
    )
    assert server.batch_stats("openai").files_uploaded == 2  # the refused upload not counted


def test_results_come_in_reverse_when_asked_and_reset_forgets_jobs(
    server: FakeOpenAIServer,
) -> None:
    server.configure_batches(results_order="reversed")
    batch = _submit(server, [_line(f"r{i}", f"p{i}") for i in range(3)])
    done = _poll(server, batch["id"])
    assert [line["custom_id"] for line in _lines(server, done["output_file_id"])] == [
        "r2",
        "r1",
        "r0",
    ]
    assert [job["id"] for job in server.batch_jobs("openai")] == [batch["id"]]
    server.reset()
    assert server.batch_jobs() == [] and server.batch_stats().jobs_created == 0
    gone = httpx.get(f"{server.url}/batches/{batch['id']}", headers=OPENAI_HEADERS)
    assert gone.status_code == 404


def test_a_job_outlives_the_client_process_that_created_it(
    server: FakeOpenAIServer, tmp_path: Any
) -> None:
    server.configure_batches(polls=2)
    script = tmp_path / "client.py"
    script.write_text(
        "import json, sys, httpx\n"
        "url, key = sys.argv[1], sys.argv[2]\n"
        "h = {'Authorization': 'Bearer ' + key}\n"
        "line = {'custom_id': 'k1', 'method': 'POST', 'url': '/v1/chat/completions',\n"
        "        'body': {'model': 'gpt-batch', 'messages': [{'role': 'user', 'content': 'hi'}]}}\n"
        "f = httpx.post(url + '/files', headers=h, data={'purpose': 'batch'},\n"
        "               files={'file': ('in.jsonl', json.dumps(line).encode())}).json()\n"
        "b = httpx.post(url + '/batches', headers=h, json={'input_file_id': f['id'],\n"
        "    'endpoint': '/v1/chat/completions', 'completion_window': '24h'}).json()\n"
        "print(b['id'], flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    client = subprocess.Popen(
        [sys.executable, str(script), server.url, KEY], stdout=subprocess.PIPE, text=True
    )
    assert client.stdout is not None
    batch_id = client.stdout.readline().strip()
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    client.stdout.close()
    assert _poll(server, batch_id)["status"] == "in_progress"
    done = _poll(server, batch_id)
    assert [line["custom_id"] for line in _lines(server, done["output_file_id"])] == ["k1"]
    assert server.batch_stats().jobs_created == 1


# --- Anthropic ------------------------------------------------------------------------


def _request(custom_id: str, prompt: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    params = {"model": "claude-batch", "max_tokens": 64, "messages": messages}
    return {"custom_id": custom_id, "params": params}


def _messages(server: FakeOpenAIServer, path: str = "") -> str:
    return f"{server.anthropic_url}/v1/messages/batches{path}"


def _anthropic_submit(server: FakeOpenAIServer, requests: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(_messages(server), headers=ANTHROPIC_HEADERS, json={"requests": requests})


def _counts(**counts: int) -> dict[str, int]:
    names = ("processing", "succeeded", "errored", "canceled", "expired")
    return {name: counts.get(name, 0) for name in names}


def _anthropic_poll(server: FakeOpenAIServer, batch_id: str) -> dict[str, Any]:
    response = httpx.get(_messages(server, f"/{batch_id}"), headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_anthropic_batch_runs_through_its_lifecycle(server: FakeOpenAIServer) -> None:
    server.configure_batches(polls=2, fail_prompts=["broken"], expire_ids=["late"])
    requests = [_request("ok-1", "hello there"), _request("bad", "broken one")]
    requests += [_request("late", "x"), _request("ok_2", "bye")]
    created = _anthropic_submit(server, requests).json()
    assert created["type"] == "message_batch" and created["id"].startswith("msgbatch_")
    assert created["processing_status"] == "in_progress" and created["results_url"] is None
    assert created["request_counts"] == _counts(processing=4)
    early = httpx.get(_messages(server, f"/{created['id']}/results"), headers=ANTHROPIC_HEADERS)
    assert early.status_code == 400
    assert _anthropic_poll(server, created["id"])["processing_status"] == "in_progress"
    ended = _anthropic_poll(server, created["id"])
    assert ended["processing_status"] == "ended" and ended["ended_at"] is not None
    assert ended["request_counts"] == _counts(succeeded=2, errored=1, expired=1)
    assert ended["results_url"] == _messages(server, f"/{created['id']}/results")
    results = httpx.get(ended["results_url"], headers=ANTHROPIC_HEADERS)
    lines = [json.loads(line) for line in results.text.splitlines()]
    assert [line["custom_id"] for line in lines] == ["ok-1", "bad", "late", "ok_2"]
    message = lines[0]["result"]["message"]
    assert lines[0]["result"]["type"] == "succeeded" and message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert message["stop_reason"] == "end_turn" and message["usage"]["output_tokens"] == 3
    assert lines[1]["result"]["type"] == "errored"
    assert lines[1]["result"]["error"]["error"]["type"] == "api_error"
    assert lines[2]["result"] == {"type": "expired"}
    stats = server.batch_stats("anthropic")
    assert (stats.jobs_created, stats.requests, stats.polls, stats.downloads) == (1, 4, 2, 1)
    assert stats.rejected == 1  # the early results
    assert server.batch_stats("openai").jobs_created == 0


def test_an_anthropic_cancel_ends_the_batch_with_the_rest_canceled(
    server: FakeOpenAIServer,
) -> None:
    server.configure_batches(polls=4, cancel_polls=0)
    batch = _anthropic_submit(server, [_request(f"r{i}", f"p{i}") for i in range(4)]).json()
    assert _anthropic_poll(server, batch["id"])["request_counts"]["succeeded"] == 1
    cancel = httpx.post(_messages(server, f"/{batch['id']}/cancel"), headers=ANTHROPIC_HEADERS)
    assert cancel.json()["processing_status"] == "canceling"
    assert cancel.json()["cancel_initiated_at"] is not None
    ended = _anthropic_poll(server, batch["id"])
    assert ended["processing_status"] == "ended"
    assert (ended["request_counts"]["succeeded"], ended["request_counts"]["canceled"]) == (1, 3)
    results = httpx.get(ended["results_url"], headers=ANTHROPIC_HEADERS).text.splitlines()
    assert [json.loads(line)["result"]["type"] for line in results] == ["succeeded"] + [
        "canceled"
    ] * 3


@pytest.mark.parametrize("custom_id", ["a" * 65, "has space", "dot.ted", "", "café", 7])
def test_anthropic_refuses_custom_ids_outside_its_rules(
    server: FakeOpenAIServer, custom_id: Any
) -> None:
    odd = {**_request("x", "y"), "custom_id": custom_id}
    response = _anthropic_submit(server, [_request("fine", "x"), odd])
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "requests.1.custom_id" in error["error"]["message"]
    assert server.batch_stats("anthropic").jobs_created == 0


def test_anthropic_accepts_custom_ids_within_its_rules_and_refuses_twins(
    server: FakeOpenAIServer,
) -> None:
    ok = _anthropic_submit(server, [_request("a" * 64, "x"), _request("A-z_09", "y")])
    assert ok.status_code == 200, ok.text
    twins = _anthropic_submit(server, [_request("same", "x"), _request("same", "y")])
    assert twins.status_code == 400 and "Duplicate" in twins.json()["error"]["message"]
    no_tokens = _request("m", "x")
    del no_tokens["params"]["max_tokens"]
    missing = _anthropic_submit(server, [no_tokens])
    assert missing.status_code == 400 and "max_tokens" in missing.json()["error"]["message"]


def test_anthropic_headers_and_limits(server: FakeOpenAIServer) -> None:
    body = {"requests": [_request("a", "x")]}
    headers = {"Authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
    bearer = httpx.post(_messages(server), headers=headers, json=body)
    assert bearer.status_code == 401
    assert bearer.json()["error"]["type"] == "authentication_error"
    unversioned = httpx.post(_messages(server), headers={"x-api-key": KEY}, json=body)
    assert unversioned.status_code == 400
    server.configure_batches(anthropic_max_requests=2, anthropic_max_bytes=1000)
    three = _anthropic_submit(server, [_request(f"r{i}", "x") for i in range(3)])
    assert three.status_code == 400 and "at most 2" in three.json()["error"]["message"]
    large = _anthropic_submit(server, [_request("r", "x" * 2000)])
    assert large.status_code == 413
    assert large.json()["error"]["type"] == "request_too_large"
    assert _anthropic_submit(server, [_request("r", "x")]).status_code == 200
    # the same endpoints under an api_base that ends in /v1
    listed = httpx.get(f"{server.url}/messages/batches", headers=ANTHROPIC_HEADERS).json()
    assert len(listed["data"]) == 1 and server.batch_stats("anthropic").rejected == 4


def test_anthropic_batches_are_listed_newest_first(server: FakeOpenAIServer) -> None:
    ids = [_anthropic_submit(server, [_request("a", "x")]).json()["id"] for _ in range(3)]
    page = httpx.get(_messages(server), params={"limit": 2}, headers=ANTHROPIC_HEADERS).json()
    assert [b["id"] for b in page["data"]] == ids[:0:-1] and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[2], ids[1])
    after = {"after_id": page["last_id"]}
    rest = httpx.get(_messages(server), params=after, headers=ANTHROPIC_HEADERS).json()
    assert [b["id"] for b in rest["data"]] == ids[:1] and rest["has_more"] is False
    before = {"before_id": ids[0], "limit": 1}
    newer = httpx.get(_messages(server), params=before, headers=ANTHROPIC_HEADERS).json()
    assert [b["id"] for b in newer["data"]] == [ids[1]]


def test_files_and_ended_batches_can_be_read_and_deleted(server: FakeOpenAIServer) -> None:
    file_id = _upload(server, _jsonl([_line("a", "x")])).json()["id"]
    url = f"{server.url}/files/{file_id}"
    assert httpx.get(url, headers=OPENAI_HEADERS).json()["id"] == file_id
    deleted = httpx.delete(url, headers=OPENAI_HEADERS).json()
    assert deleted == {"id": file_id, "object": "file", "deleted": True}
    assert httpx.get(url, headers=OPENAI_HEADERS).status_code == 404
    server.configure_batches(polls=1)
    batch_id = _anthropic_submit(server, [_request("a", "x")]).json()["id"]
    early = httpx.delete(_messages(server, f"/{batch_id}"), headers=ANTHROPIC_HEADERS)
    assert early.status_code == 400  # still in progress
    _anthropic_poll(server, batch_id)
    gone = httpx.delete(_messages(server, f"/{batch_id}"), headers=ANTHROPIC_HEADERS).json()
    assert gone == {"id": batch_id, "type": "message_batch_deleted"}
    assert server.batch_jobs("anthropic") == []


def test_an_anthropic_answer_reports_cached_prompt_tokens_as_anthropic_does() -> None:
    from model_registry._testing_batch_anthropic import message

    choice = {"index": 0, "message": {"content": "hi"}, "finish_reason": "length"}
    details = {"cached_tokens": 4}
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": details}
    answer = message({"model": "m", "choices": [choice], "usage": usage})
    assert answer["stop_reason"] == "max_tokens"
    assert answer["usage"] == {
        "input_tokens": 6,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
    }
