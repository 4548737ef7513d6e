"""A result store for every call: `generate` and `stream` with `results_db=`, a client-wide
store from `get_client(name, results_db=...)`, and keys that do not depend on the method or
on the address of the server, against the loopback server (counting what it saw)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest

from model_registry import (
    ClientClosedError,
    Generation,
    InvalidParameterError,
    ResultStore,
    ServiceUnavailableError,
    get_client,
)
from model_registry.clients.base import BaseClient
from model_registry.testing import fake_openai_server
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, model_name


def client_for(server: FakeOpenAIServer, model: str, **kwargs: Any) -> BaseClient:
    return get_client(
        f"openai:{model}",
        api_base=server.base_url,
        api_key=SERVER_KEY,
        num_retries=0,
        max_retries=0,
        **kwargs,
    )


async def streamed(client: BaseClient, prompt: str, **kwargs: Any) -> tuple[list[str], Generation]:
    stream = client.stream(prompt, **kwargs)
    deltas = [delta async for delta in stream]
    return deltas, stream.result


async def gather_all(calls: Iterable[Awaitable[Any]], return_exceptions: bool = False) -> list[Any]:
    """Every call run at once, outcomes in order (errors in place with return_exceptions)."""
    pending = list(calls)
    outcomes: list[Any] = [None] * len(pending)

    async def run(index: int, call: Awaitable[Any]) -> None:
        try:
            outcomes[index] = await call
        except Exception as exc:
            if not return_exceptions:
                raise
            outcomes[index] = exc

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(pending):
            tg.start_soon(run, index, call)
    return outcomes


def counts(db: Path) -> tuple[int, int]:
    """(answers, failures) in the store file, opened afresh (the clients released it)."""
    with ResultStore(db) as store:
        summary = store.summary()
    return summary.results, summary.failed


async def test_generate_with_a_store_answers_a_repeated_call_without_a_request(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "calls.sqlite"
    async with client_for(server, model) as client:
        first = await client.generate("what is 2+2?", results_db=db)
        again = await client.generate("what is 2+2?", results_db=str(db))
        other = await client.generate("what is 3+3?", results_db=db)
    assert server.stats(model).requests == 2
    assert (first.from_store, again.from_store, other.from_store) == (False, True, False)
    assert again.text == first.text == "echo: what is 2+2?"
    assert (again.usage, again.cost, again.model, again.finish_reason) == (
        first.usage,
        first.cost,
        first.model,
        first.finish_reason,
    )
    assert counts(db) == (2, 0)  # committed, and closed by aclose


async def test_a_stream_replays_a_stored_answer_as_one_delta_then_its_result(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "calls.sqlite"
    async with client_for(server, model) as client:
        made = await client.generate("one two three", results_db=db)
        deltas, result = await streamed(client, "one two three", results_db=db)
    assert server.stats(model).requests == 1
    assert deltas == ["echo: one two three"]
    assert result.from_store and result.text == made.text
    assert result.usage == made.usage


async def test_generate_replays_what_a_stream_stored_and_a_stream_replays_a_batch(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "calls.sqlite"
    async with client_for(server, model) as client:
        deltas, streamed_once = await streamed(client, "from a stream", results_db=db)
        replayed = await client.generate("from a stream", results_db=db)
        await client.generate_many(["from a batch", "from a batch"], results_db=db)
        _, from_batch = await streamed(client, "from a batch", results_db=db)
    assert len(deltas) > 1  # really streamed the first time
    assert not streamed_once.from_store
    assert replayed.from_store and replayed.text == streamed_once.text == "echo: from a stream"
    assert replayed.usage.total_tokens == streamed_once.usage.total_tokens
    assert from_batch.from_store and from_batch.text == "echo: from a batch"
    assert server.stats(model).requests == 3


async def test_separate_identical_calls_share_one_answer_and_samples_need_a_batch_or_a_seed(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "calls.sqlite"
    prompt = "pick a number !serial=1"  # the server ends each answer with its request count
    async with client_for(server, model, results_db=db) as client:
        calls = [await client.generate(prompt) for _ in range(3)]
        samples = await client.generate_many([prompt] * 3)
        seeded = await client.generate(prompt, seed=7)
    assert len({g.text for g in calls}) == 1
    assert [g.from_store for g in calls] == [False, True, True]
    # a batch's first occurrence is the calls' answer; the other two are new samples
    assert samples[0].text == calls[0].text
    assert len({g.text for g in samples}) == 3
    assert not seeded.from_store and seeded.text not in {g.text for g in samples}
    assert server.stats(model).requests == 4


async def test_failed_calls_are_stored_as_failures_and_never_served(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "calls.sqlite"
    server.configure(model, status=503, times=2)
    async with client_for(server, model, results_db=db) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.generate("hello")
        with pytest.raises(ServiceUnavailableError):
            await streamed(client, "hello")
    assert counts(db) == (0, 1)  # one request, its last outcome a failure
    async with client_for(server, model, results_db=db) as client:
        answered = await client.generate("hello")
    assert not answered.from_store and answered.text == "echo: hello"
    assert counts(db) == (1, 0)
    assert server.stats(model).requests == 3


async def test_a_client_store_serves_every_call_and_batch_unless_a_call_turns_it_off(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "client.sqlite"
    async with client_for(server, model, results_db=db) as client:
        await client.generate("a")
        await client.generate_many(["a", "b"])  # the store this client holds open
        got = [result async for _, result in client.iter_many(["a", "b", "c"])]
        _, streamed_a = await streamed(client, "a")
        assert server.stats(model).requests == 3
        fresh = await client.generate("a", results_db=None)
        _, fresh_stream = await streamed(client, "b", results_db=None)
        fresh_batch = await client.generate_many(["a"], results_db=None)
    assert sorted(g.text for g in got) == ["echo: a", "echo: b", "echo: c"]
    assert [g.from_store for g in got].count(True) == 2
    assert streamed_a.from_store
    assert not (fresh.from_store or fresh_stream.from_store or fresh_batch[0].from_store)
    assert server.stats(model).requests == 6
    assert counts(db) == (3, 0)  # released by aclose: the file opens again


async def test_a_client_store_given_first_to_a_batch_then_to_calls(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "client.sqlite"
    async with client_for(server, model, results_db=db) as client:
        batch = await client.generate_many(["a", "b"])  # opened and closed by the batch
        again = await client.generate("b")
        more = await client.generate_many(["b", "c"])  # the store the call holds open
    assert again.from_store and again.text == batch[1].text
    assert [g.from_store for g in more] == [True, False]
    assert server.stats(model).requests == 3


async def test_concurrent_calls_and_clients_on_one_path_share_one_open_store(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "shared.sqlite"
    prompts = [f"q{i % 5}" for i in range(20)]
    answers: list[Generation] = []

    async def ask(client: BaseClient, prompt: str) -> None:
        answers.append(await client.generate(prompt))

    async with client_for(server, model, results_db=db) as one:
        async with (
            client_for(server, model, results_db=str(db)) as two,
            anyio.create_task_group() as tg,
        ):
            for i, prompt in enumerate(prompts):
                tg.start_soon(ask, one if i % 2 else two, prompt)
        after_two = await one.generate("q0")  # still open after the other client closed
    assert len(answers) == 20 and after_two.from_store
    assert sorted({g.text for g in answers}) == [f"echo: q{i}" for i in range(5)]
    assert 5 <= server.stats(model).requests <= 10  # each client sends a request once
    assert counts(db) == (5, 0)


async def test_identical_calls_in_flight_at_once_send_one_request_and_share_its_answer(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "gather.sqlite"
    server.configure(model, delay=0.5)  # the first is still in flight when the others ask
    async with client_for(server, model, results_db=db) as client:
        answers = await gather_all(client.generate("same") for _ in range(5))
        _, streamed_too = await streamed(client, "same")
    assert server.stats(model).requests == 1
    assert {g.text for g in answers} == {"echo: same"}
    assert sorted(g.from_store for g in answers) == [False, True, True, True, True]
    assert streamed_too.from_store


async def test_when_the_call_in_flight_fails_the_same_calls_waiting_send_again(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "gather.sqlite"
    server.configure(model, status=503, times=1, delay=0.5)
    async with client_for(server, model, results_db=db) as client:
        outcomes = await gather_all(
            (client.generate("same") for _ in range(4)), return_exceptions=True
        )
    failed = [o for o in outcomes if isinstance(o, ServiceUnavailableError)]
    answered = [o for o in outcomes if isinstance(o, Generation)]
    assert (len(failed), len(answered)) == (1, 3)  # an error is never served
    assert sorted(g.from_store for g in answered) == [False, True, True]
    assert server.stats(model).requests == 2


async def test_a_one_line_call_in_a_loop_reuses_the_store(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "loop.sqlite"
    got = [await client_for(server, model, results_db=db).generate("same") for _ in range(3)]
    assert [g.from_store for g in got] == [False, True, True]
    assert server.stats(model).requests == 1


async def test_a_store_of_the_caller_is_used_and_left_open(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    with ResultStore(tmp_path / "mine.sqlite") as store:
        async with client_for(server, model, results_db=store) as client:
            await client.generate("x")
        async with client_for(server, model) as client:
            replayed = await client.generate("x", results_db=store)
        assert replayed.from_store
        assert store.summary().results == 1  # still open: the caller's to close
    assert server.stats(model).requests == 1


async def test_a_server_on_a_new_port_resumes_from_the_answers_of_the_last_one(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "run.sqlite"
    prompts = [f"question {i}" for i in range(6)]
    async with client_for(server, model) as client:
        first = await client.generate_many(prompts, results_db=db)
    async with fake_openai_server(api_key=SERVER_KEY) as moved:
        assert moved.port != server.port
        async with client_for(moved, model, results_db=db) as client:
            again = await client.generate_many(prompts)
            one = await client.generate("question 0")
        assert moved.stats().requests == 0
    assert [g.from_store for g in again] == [True] * 6 and one.from_store
    assert [g.text for g in again] == [g.text for g in first]


@pytest.mark.parametrize("bad", [42, b"run.sqlite", ["run.sqlite"]])
async def test_a_results_db_that_is_no_path_or_store_is_refused_before_any_request(
    server: FakeOpenAIServer, bad: Any
) -> None:
    model = model_name()
    message = re.escape(
        "results_db must be a file path (str or os.PathLike) or a ResultStore, got "
    )
    with pytest.raises(InvalidParameterError, match=message):
        client_for(server, model, results_db=bad)
    async with client_for(server, model) as client:
        with pytest.raises(InvalidParameterError, match=message):
            await client.generate("x", results_db=bad)
        with pytest.raises(InvalidParameterError, match=message):
            client.stream("x", results_db=bad)
    assert server.stats(model).requests == 0


async def test_embed_many_uses_the_client_store_unless_it_is_turned_off(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = "text-embedding-3-small", tmp_path / "vectors.sqlite"
    before = server.stats(model).requests
    async with client_for(server, model, results_db=db) as client:
        first = await client.embed_many(["a", "b"])
        again = await client.embed_many(["a", "b"])
        fresh = await client.embed_many(["a"], results_db=None)
    assert (first.from_store, again.from_store, fresh.from_store) == (0, 2, 0)
    assert again.vectors == first.vectors
    assert server.stats(model).requests - before == 2


async def test_a_call_is_kept_under_the_documented_key_of_its_first_occurrence(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    with ResultStore(tmp_path / "keys.sqlite") as store:
        async with client_for(server, model, temperature=0.2) as client:
            await client.generate("hi", max_tokens=5, results_db=store, timeout=30)
            target = client.resolution.route
            params = {**client.params, "max_tokens": 5}  # call options such as timeout: no matter
        assert target == f"openai/{model}"
        messages = [{"role": "user", "content": "hi"}]
        key = ResultStore.request_key(target, messages, params) + "#0"
        assert store.lookup([key])[key].text == "echo: hi"


async def test_a_call_waiting_for_the_same_call_in_flight_ends_closed_when_the_client_closes(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model, db = model_name(), tmp_path / "closing.sqlite"
    server.configure(model, delay=5)
    client = await client_for(server, model, results_db=db)
    outcomes: list[BaseException] = []

    async def ask() -> None:
        try:
            await client.generate("same")
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        tg.start_soon(ask)
        with anyio.fail_after(30):
            while not server.stats(model).in_flight:  # noqa: ASYNC110 (another process)
                await anyio.sleep(0.05)
        await client.aclose()
    assert [type(e) for e in outcomes] == [ClientClosedError, ClientClosedError]
    assert server.stats(model).requests == 1
    assert counts(db) == (0, 0)


async def test_a_call_answered_from_the_store_reports_its_start_and_a_stored_end(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    from model_registry import off, on
    from model_registry.events import EVENT_NAMES, CallEnd, CallStart

    model, db = model_name(), tmp_path / "calls.sqlite"
    seen: list[Any] = []
    async with client_for(server, model, results_db=db) as client:
        await client.generate("what is 2+2?")
        for name in EVENT_NAMES:
            on(name, seen.append)
        try:
            await client.generate("what is 2+2?")
            await streamed(client, "what is 2+2?")
        finally:
            for name in EVENT_NAMES:
                off(name)
    assert [type(event) for event in seen] == [CallStart, CallEnd, CallStart, CallEnd]
    for start, end in (seen[0:2], seen[2:4]):
        assert start.call_id == end.call_id and end.from_store and end.error is None
        assert end.generation is not None and end.generation.from_store
        assert end.attempts == 0 and end.name == f"openai:{model}"
