"""Provider batch APIs behind generate_many(batch_api=True): what reaches OpenAI's Files +
Batches endpoints (respx, at the real URLs), answers in input order, and the durable jobs."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import respx

from model_registry import InvalidParameterError, ResultStore, get_client, resolve
from model_registry._store_jobs import all_jobs, record_intent
from model_registry.clients._batch import _keys
from model_registry.clients._batch_api.connect import batch_provider
from model_registry.clients._batch_api.jobs import poll_intervals
from model_registry.errors import (
    AuthenticationError,
    BadRequestError,
    ModelCallError,
    NotFoundError,
)
from tests.hosted.batch_fakes import (
    OPENAI,
    AnthropicBatches,
    OpenAIBatches,
    anthropic_echo,
    openai_echo,
)

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
    assert results[0].to_dict()["batch_id"] == "batch_0"


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


def _latest_batch(db: Path) -> list[tuple[int, str | None]]:
    """The store's latest batch as iterating the store gives it: (index, answer text)."""
    with ResultStore(db) as store:
        return [(r.index, r.result.text if r.result else None) for r in store]


async def test_a_batch_api_run_is_the_stores_latest_batch_in_input_order(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    OpenAIBatches(batch_mock)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        await client.generate_many(["q0", "q1", "q2", "q3"], batch_api=True, results_db=db)
        await client.generate_many(["q2", "new", "q0"], batch_api=True, results_db=db)
        assert _latest_batch(db) == [(0, "echo: q2"), (1, "echo: new"), (2, "echo: q0")]
        async for _ in client.iter_many(["q3", "q1"], batch_api=True, results_db=db):
            pass
        assert _latest_batch(db) == [(0, "echo: q3"), (1, "echo: q1")]
        await client.submit_batch(["q1", "later"], results_db=db)  # not answered yet
        assert _latest_batch(db) == [(0, "echo: q1"), (1, None)]


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
            record_intent(store, tag, "openai", "gpt-4o-mini", client.name, [k for k in keys if k])
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
        ("openai:no-such-price", {"results_db": "x.sqlite", "max_cost": 1.0}, "no-such-price"),
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


async def test_anthropic_gets_message_batch_requests_with_valid_custom_ids(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    def answer(params: dict) -> dict:
        text = params["messages"][-1]["content"][0]["text"]
        if text == "bad":
            error = {"type": "invalid_request_error", "message": "prompt is too long"}
            return {"type": "errored", "error": {"type": "error", "error": error}}
        if text == "late":
            return {"type": "expired"}
        return anthropic_echo(params)

    fake = AnthropicBatches(batch_mock, answer=answer)
    prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "bad",
        "late",
        "hi",
    ]
    async with get_client("anthropic:claude-3-5-haiku-20241022", max_tokens=50) as client:
        results = await client.generate_many(
            prompts, batch_api=True, results_db=tmp_path / "r.db", return_exceptions=True
        )
    requests = fake.created[0]["requests"]
    assert requests[0]["params"] == {
        "model": "claude-3-5-haiku-20241022",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 50,
    }
    ids = [r["custom_id"] for r in requests]
    assert len(set(ids)) == 4 and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)
    headers = fake.create.calls[0].request.headers
    assert headers["x-api-key"] == "sk-ant-test-key" and headers["anthropic-version"]
    assert results[0].text == "echo: hi" and results[0].batch_id == "msgbatch_0"
    assert results[0].usage.prompt_tokens == 10 and results[0].finish_reason == "stop"
    assert isinstance(results[1], BadRequestError) and results[1].status_code == 400
    assert "prompt is too long" in str(results[1])
    assert isinstance(results[2], ModelCallError) and "expired" in str(results[2])
    assert results[3].text == "echo: hi"


async def test_anthropic_structured_answers_come_back_parsed(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    class Capital(msgspec.Struct):
        city: str

    def answer(params: dict) -> dict:
        tool = params["tools"][0]["name"]
        reply = anthropic_echo(params)
        reply["content"] = [
            {"type": "tool_use", "id": "t1", "name": tool, "input": {"city": "Paris"}}
        ]
        reply["stop_reason"] = "tool_use"
        return reply

    AnthropicBatches(batch_mock, answer=answer)
    async with get_client("anthropic:claude-3-5-haiku-20241022") as client:
        (result,) = await client.generate_many(
            ["Capital of France?"],
            batch_api=True,
            results_db=tmp_path / "r.db",
            response_format=Capital,
        )
    assert result.parsed == Capital(city="Paris")


async def test_openai_logprobs_and_structured_answers_are_read_from_the_batch(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    def answer(body: dict) -> dict:
        reply = openai_echo(body)
        reply["choices"][0]["message"]["content"] = '{"city": "Paris"}'
        reply["choices"][0]["logprobs"] = {
            "content": [{"token": "{", "logprob": -0.5, "bytes": None, "top_logprobs": []}]
        }
        return reply

    fake = OpenAIBatches(batch_mock, answer=answer)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    async with get_client("openai:gpt-4o-mini") as client:
        (result,) = await client.generate_many(
            ["Capital?"],
            batch_api=True,
            results_db=tmp_path / "r.db",
            response_format=schema,
            logprobs=True,
        )
    assert result.parsed == {"city": "Paris"}
    assert result.logprobs is not None and result.logprobs[0].logprob == -0.5
    body = fake.uploads[0][0]["body"]
    assert body["logprobs"] is True
    assert body["response_format"]["json_schema"]["schema"]["additionalProperties"] is False


async def test_iter_many_yields_batch_answers_as_jobs_are_collected(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    OpenAIBatches(batch_mock)
    async with get_client("openai:gpt-4o-mini") as client:
        got = {
            index: g.text
            async for index, g in client.iter_many(
                ["a", "b", "c"], batch_api=True, batch_size=2, results_db=tmp_path / "r.db"
            )
        }
    assert got == {0: "echo: a", 1: "echo: b", 2: "echo: c"}


async def test_a_refused_create_says_why_without_the_key(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    batch_mock.post(f"{OPENAI}/files").mock(
        return_value=httpx.Response(
            401, json={"error": {"message": "Incorrect API key provided: sk-openai-test-key"}}
        )
    )
    async with get_client("openai:gpt-4o-mini") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r.db")
    assert "sk-openai-test-key" not in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)
    with ResultStore(tmp_path / "r.db") as store:
        assert all_jobs(store) == []  # refused: no job, the intent dropped


async def test_fallbacks_do_not_apply_to_batch_jobs_and_say_so(
    batch_mock: respx.MockRouter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = OpenAIBatches(batch_mock)
    client = get_client("openai:gpt-4o-mini", fallbacks=["anthropic:claude-3-5-haiku-20241022"])
    async with client:
        results = await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r.db")
    assert results[0].text == "echo: a" and len(fake.created) == 1
    assert "fallbacks ('anthropic:claude-3-5-haiku-20241022') do not apply" in caplog.text


async def test_a_store_written_before_batch_jobs_existed_takes_a_batch(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    db = tmp_path / "old.sqlite"
    with ResultStore(db) as store:  # a store with its results table only
        store.put_error("k#0", 0, "APIError", "earlier", None)
    OpenAIBatches(batch_mock)
    async with get_client("openai:gpt-4o-mini") as client:
        results = await client.generate_many(["a"], batch_api=True, results_db=db)
    assert results[0].text == "echo: a"
    with ResultStore(db) as store:
        assert store.summary().failed == 1 and len(all_jobs(store)) == 1


def test_a_local_name_has_no_batch_api() -> None:
    resolution = resolve("local:org/some-model")
    with pytest.raises(InvalidParameterError, match="is a local model, which has no provider"):
        batch_provider(resolution, "local")


async def test_polls_back_off_and_timeout_bounds_each_request_not_the_job(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    fake.polls_before_end = 2  # ends on the third poll: about 1 s + 1.5 s after the first
    started = time.monotonic()
    async with get_client("openai:gpt-4o-mini") as client:
        (result,) = await client.generate_many(
            ["a"], batch_api=True, results_db=tmp_path / "r.db", timeout=0.5
        )
    assert result.text == "echo: a"
    assert fake.jobs["batch_0"]["polls"] == 3
    assert time.monotonic() - started >= 2.4


def test_the_wait_between_polls_grows_from_about_a_second_to_at_most_a_minute() -> None:
    waits = list(itertools.islice(poll_intervals(), 40))
    assert waits[:3] == [1.0, 1.5, 2.25]
    assert waits.index(60.0) == 11  # 1.5 ** 10 s, then the cap
    assert all(a < b for a, b in itertools.pairwise(waits[:12]))
    assert waits[11:] == [60.0] * 29  # reached, then kept


async def test_a_poll_that_fails_for_want_of_connection_is_asked_again(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    flaky = batch_mock.get(url__regex=rf"{OPENAI}/batches/[^/]+$")
    answers = iter([httpx.ConnectError("reset")])

    def first_fails(request: httpx.Request) -> httpx.Response:
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return fake._get(request)

    flaky.mock(side_effect=first_fails)
    async with get_client("openai:gpt-4o-mini") as client:
        (result,) = await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r.db")
    assert result.text == "echo: a" and flaky.call_count == 2


async def test_progress_shows_the_jobs_own_counts(
    batch_mock: respx.MockRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    OpenAIBatches(batch_mock)
    async with get_client("openai:gpt-4o-mini") as client:
        await client.generate_many(
            ["a", "b"], batch_api=True, results_db=tmp_path / "r.db", progress=True
        )
    shown = capsys.readouterr().err
    assert "job batch_0 completed" in shown and "completed 2" in shown


async def test_a_server_without_batch_endpoints_is_named_with_what_it_lacks(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    base = "http://127.0.0.1:9/v1"
    batch_mock.post(f"{base}/files").mock(return_value=httpx.Response(404, text="Not Found"))
    async with get_client("openai:my-model", api_base=base) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r.db")
    assert caught.value.status_code == 404
    assert "serves no OpenAI Files endpoint" in "".join(caught.value.__notes__)


async def test_the_key_never_follows_a_results_url_at_another_host(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = AnthropicBatches(batch_mock)
    elsewhere = batch_mock.get("https://elsewhere.example/results")
    ended = fake._get

    def moved(request: httpx.Request) -> httpx.Response:
        job = json.loads(ended(request).content)
        return httpx.Response(200, json={**job, "results_url": "https://elsewhere.example/results"})

    batch_mock.get(url__regex=r"https://api.anthropic.com/v1/messages/batches/[^/]+$").mock(
        side_effect=moved
    )
    async with get_client("anthropic:claude-3-5-haiku-20241022", max_tokens=9) as client:
        (result,) = await client.generate_many(["hi"], batch_api=True, results_db=tmp_path / "r")
    assert result.text == "echo: hi" and not elsewhere.called


async def test_a_pending_job_the_provider_no_longer_knows_is_submitted_again(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    fake = OpenAIBatches(batch_mock)
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4o-mini") as client:
        await client.submit_batch(["a", "b"], results_db=db)
        fake.jobs.clear()  # deleted at the provider (or a new server at this api_base)
        results = await client.generate_many(["a", "b"], batch_api=True, results_db=db)
    assert [g.text for g in results] == ["echo: a", "echo: b"]
    assert [g.batch_id for g in results] == ["batch_0", "batch_0"]  # the new job's id
    with ResultStore(db) as store:
        assert [j.state for j in all_jobs(store)] == ["gone", "collected"]


@pytest.mark.parametrize(("prompts", "jobs"), [(["a", "b"], 1), (["a", "b", "c"], 2)])
async def test_an_anthropic_job_left_unrecorded_by_a_crash_is_found_by_size_and_time(
    batch_mock: respx.MockRouter, tmp_path: Path, prompts: list[str], jobs: int
) -> None:
    fake = AnthropicBatches(batch_mock)
    name = "anthropic:claude-3-5-haiku-20241022"
    async with get_client(name, max_tokens=9) as client:
        await client.submit_batch(["a", "b"], results_db=tmp_path / "first.sqlite")
        # the state a process leaves when it dies after the create, before recording it
        keys = _keys(prompts, client.resolution.route or "", {**client.params})
        with ResultStore(tmp_path / "crashed.sqlite") as store:
            record_intent(store, "mr-x", "anthropic", "m", name, [k for k in keys if k])
        results = await client.generate_many(
            prompts, batch_api=True, results_db=tmp_path / "crashed.sqlite"
        )
    assert [g.text for g in results] == [f"echo: {p}" for p in prompts]
    assert len(fake.created) == jobs  # the same size: adopted; another size: sent anew


async def test_cached_and_reasoning_tokens_are_read_from_batch_answers(
    batch_mock: respx.MockRouter, tmp_path: Path
) -> None:
    def answer(body: dict) -> dict:
        reply = openai_echo(body)
        reply["usage"]["prompt_tokens_details"] = {"cached_tokens": 400}
        reply["usage"]["completion_tokens_details"] = {"reasoning_tokens": 30}
        return reply

    OpenAIBatches(batch_mock, answer=answer)
    async with get_client("openai:gpt-4o-mini") as client:
        (result,) = await client.generate_many(["a"], batch_api=True, results_db=tmp_path / "r")
    assert (result.usage.cached_tokens, result.usage.reasoning_tokens) == (400, 30)
