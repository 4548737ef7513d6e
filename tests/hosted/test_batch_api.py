"""Provider batch APIs behind generate_many(batch_api=True): what reaches OpenAI's Files +
Batches endpoints (respx, at the real URLs), answers in input order, and the durable jobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from model_registry import InvalidParameterError, ResultStore, get_client
from model_registry._store_jobs import all_jobs, record_intent
from model_registry.clients._batch import _keys
from model_registry.errors import BadRequestError
from tests.hosted.batch_fakes import OPENAI, OpenAIBatches

pytestmark = pytest.mark.usefixtures("provider_keys")


@pytest.fixture
def batch_mock() -> Iterator[respx.MockRouter]:
    """respx at the providers' URLs; a fake's routes need not all be called."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


#: gpt-4o-mini's batch price per token (half its per-request price): input, output.
BATCH_PRICE = (0.075e-6, 0.30e-6)


async def test_a_batch_of_300_prompts_comes_back_in_order_from_three_jobs(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    prompts = [f"question {i}" for i in range(300)]
    async with get_client("openai:gpt-4o-mini") as client:
        results = await client.generate_many(
            prompts,
            batch_api=True,
            batch_size=100,
            results_db=tmp_path / "run.sqlite",
            temperature=0.2,
            max_tokens=5,
        )
    assert [g.text for g in results] == [f"echo: question {i}" for i in range(300)]
    assert [g.batch_id for g in results] == ["batch_0"] * 100 + ["batch_1"] * 100 + [
        "batch_2"
    ] * 100
    assert [len(lines) for lines in fake.uploads] == [100, 100, 100]
    line = fake.uploads[0][0]
    assert line == {
        "custom_id": line["custom_id"],
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "question 0"}],
            "temperature": 0.2,
            "max_tokens": 5,
        },
    }
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", line["custom_id"])
    tag = fake.created[0]["metadata"]["model_registry_tag"]
    assert fake.created[0] == {
        "input_file_id": "file-0",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"model_registry_tag": tag},
    }
    request = fake.create.calls[0].request
    assert request.headers["authorization"] == "Bearer sk-openai-test-key"
    assert results[0].cost == pytest.approx(1000 * BATCH_PRICE[0] + 1000 * BATCH_PRICE[1])
    assert results[0].usage.total_tokens == 2000 and results[0].finish_reason == "stop"


async def test_a_rerun_answers_from_the_store_and_sends_nothing(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        await client.generate_many(["a", "b"], batch_api=True, results_db=db)
        again = await client.generate_many(["a", "b"], batch_api=True, results_db=db)
    assert [g.text for g in again] == ["echo: a", "echo: b"]
    assert all(g.from_store for g in again)
    assert len(fake.created) == 1 and fake.upload.call_count == 1


async def test_submit_batch_returns_at_once_and_the_run_collects_the_same_job(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        submitted = await client.submit_batch(["a", "b", "c"], results_db=db)
        assert (submitted.job_ids, submitted.submitted, submitted.pending) == (["batch_0"], 3, 0)
        assert fake.jobs["batch_0"]["polls"] == 0  # not waited for
        again = await client.submit_batch(["a", "b", "c"], results_db=db)
        assert (again.job_ids, again.submitted, again.pending) == (["batch_0"], 0, 3)
        results = await client.generate_many(["a", "b", "c"], batch_api=True, results_db=db)
    assert [g.text for g in results] == ["echo: a", "echo: b", "echo: c"]
    assert len(fake.created) == 1
    with ResultStore(db) as store:
        assert [(j.job_id, j.state) for j in all_jobs(store)] == [("batch_0", "collected")]


async def test_a_job_created_just_before_a_crash_is_found_by_its_tag_and_collected(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        await client.submit_batch(["a", "b"], results_db=db)
        tag = fake.created[0]["metadata"]["model_registry_tag"]
        # the state a process leaves when it dies after the create, before recording it
        keys = _keys(["a", "b"], client.resolution.route or "", dict(client.params))
        (tmp_path / "crashed.sqlite").unlink(missing_ok=True)
        with ResultStore(tmp_path / "crashed.sqlite") as store:
            record_intent(store, tag, "openai", "gpt-4o-mini", [k for k in keys if k])
        results = await client.generate_many(
            ["a", "b"], batch_api=True, results_db=tmp_path / "crashed.sqlite"
        )
    assert [g.text for g in results] == ["echo: a", "echo: b"]
    assert len(fake.created) == 1 and fake.listing.call_count == 1


async def test_failed_requests_are_stored_as_errors_and_only_they_are_sent_again(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    refuse = {"b"}

    def answer(body: dict) -> object:
        text = body["messages"][-1]["content"]
        if text in refuse:
            return 400, {"error": {"message": f"no {text}", "type": "invalid_request_error"}}
        from tests.hosted.batch_fakes import openai_echo

        return openai_echo(body)

    fake = OpenAIBatches(batch_mock, answer=answer)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        first = await client.generate_many(
            ["a", "b", "c"], batch_api=True, results_db=db, return_exceptions=True
        )
        assert isinstance(first[1], BadRequestError)
        assert first[1].status_code == 400 and "no b" in str(first[1])
        assert first[1].index == 1
        with pytest.raises(BadRequestError):
            await client.generate_many(["a", "b", "c"], batch_api=True, results_db=db)
        refuse.clear()
        last = await client.generate_many(["a", "b", "c"], batch_api=True, results_db=db)
    assert [g.text for g in last] == ["echo: a", "echo: b", "echo: c"]
    assert [len(lines) for lines in fake.uploads] == [3, 1, 1]
    assert [line["body"]["messages"][0]["content"] for line in fake.uploads[2]] == ["b"]


async def test_expired_requests_are_errors_that_a_rerun_submits_again(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    fake.end_status = "expired"
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        first = await client.generate_many(
            ["a", "b"], batch_api=True, results_db=db, return_exceptions=True
        )
        assert all("batch_expired" in str(e) for e in first)
        fake.end_status = "completed"
        last = await client.generate_many(["a", "b"], batch_api=True, results_db=db)
    assert [g.text for g in last] == ["echo: a", "echo: b"]
    assert len(fake.created) == 2


@pytest.mark.parametrize(
    ("name", "kwargs", "said"),
    [
        ("openai:gpt-4o-mini", {}, "needs results_db"),
        ("gemini:gemini-2.5-flash", {"results_db": "x.sqlite"}, "provider 'gemini'"),
        ("openai:gpt-4o-mini", {"batch_size": 10}, "pass batch_api=True too"),
    ],
)
async def test_a_batch_that_cannot_be_sent_is_refused_before_anything_is_sent(
    batch_mock: respx.MockRouter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    kwargs: dict,
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    fake = OpenAIBatches(batch_mock)
    batch_api = "batch_size" not in kwargs
    async with get_client(name) as client:
        with pytest.raises(InvalidParameterError, match=said):
            await client.generate_many(["a"], batch_api=batch_api, **kwargs)
    assert fake.upload.call_count == 0 and not batch_mock.calls


async def test_an_openai_compatible_api_base_gets_the_batch_with_its_own_key(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    base = "http://127.0.0.1:9/v1"
    fake = OpenAIBatches(batch_mock, base=base)
    async with get_client("openai:my-model", api_base=base, api_key="sk-server-9") as client:
        results = await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r.db")
    assert results[0].text == "echo: a" and results[0].cost is None
    assert fake.upload.calls[0].request.headers["authorization"] == "Bearer sk-server-9"
    assert fake.uploads[0][0]["body"]["model"] == "my-model"
    assert OPENAI not in str(batch_mock.calls[0].request.url)
