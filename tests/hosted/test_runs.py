"""Durable runs against the loopback server: results kept as they complete, resumed without
paying twice, cost per call and per run, results in completion order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from model_registry import (
    BadRequestError,
    Generation,
    InvalidParameterError,
    ResultStore,
    ServiceUnavailableError,
    StoreSummary,
    get_client,
)
from model_registry.clients.base import BaseClient
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

#: A model LiteLLM prices: the server answers with the model it was asked for.
PRICED = "gpt-4o-mini"


@pytest.fixture
async def client(server: FakeOpenAIServer) -> AsyncIterator[BaseClient]:
    async with get_client(
        f"openai:{PRICED}",
        api_base=server.base_url,
        api_key=SERVER_KEY,
        num_retries=0,
        max_retries=0,
    ) as client:
        yield client


def requests(server: FakeOpenAIServer) -> int:
    return server.stats().requests


def summary(db: Path) -> StoreSummary:
    with ResultStore(db) as store:
        return store.summary()


def texts(results: list[Any]) -> list[str]:
    return [r.text for r in results]


async def test_a_rerun_with_the_same_store_makes_no_request_and_returns_the_same_results(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = [f"question {i}" for i in range(40)]

    first = await client.generate_many(prompts, results_db=db, concurrency=8)
    assert requests(server) == 40
    assert summary(db).results == 40  # closed by the batch: it opens again

    again = await client.generate_many(prompts, results_db=str(db))
    assert requests(server) == 40
    assert texts(again) == texts(first) == [f"echo: question {i}" for i in range(40)]
    assert [g.from_store for g in first] == [False] * 40
    assert [g.from_store for g in again] == [True] * 40
    for made, stored in zip(first, again, strict=True):
        assert (stored.usage, stored.cost, stored.model, stored.provider, stored.name) == (
            made.usage,
            made.cost,
            made.model,
            made.provider,
            made.name,
        )
        assert stored.finish_reason == made.finish_reason == "stop"


async def test_stored_errors_are_retried_on_rerun(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    # every third prompt fails its first request only
    prompts = [f"q{i} !once=500" if i % 3 == 0 else f"q{i}" for i in range(12)]

    first = await client.generate_many(prompts, results_db=db, return_exceptions=True)
    failed = [i for i, r in enumerate(first) if isinstance(r, Exception)]
    assert failed == [0, 3, 6, 9]
    assert all(isinstance(first[i], ServiceUnavailableError) for i in failed)
    totals = summary(db)
    assert (totals.results, totals.failed) == (8, 4)

    again = await client.generate_many(prompts, results_db=db, return_exceptions=True)
    assert requests(server) == 12 + 4  # only the failed ones were asked again
    assert all(isinstance(r, Generation) for r in again)
    assert [r.from_store for r in again] == [i % 3 != 0 for i in range(12)]
    totals = summary(db)
    assert (totals.results, totals.failed) == (12, 0)


async def test_repeated_prompts_are_separate_samples_each_resumed_in_its_place(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = ["joke !serial=1", "fact !serial=1", "joke !serial=1", "joke !serial=1"]

    first = texts(await client.generate_many(prompts, results_db=db, concurrency=1))
    assert len({first[0], first[2], first[3]}) == 3  # three samples of one prompt

    again = texts(await client.generate_many(prompts, results_db=db))
    assert again == first
    assert requests(server) == 4


async def test_a_reordered_and_grown_batch_resumes_with_each_prompts_own_answer(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    first = texts(
        await client.generate_many(["a !serial=1", "b !serial=1", "c !serial=1"], results_db=db)
    )

    second = await client.generate_many(
        ["c !serial=1", "new !serial=1", "a !serial=1", "b !serial=1"], results_db=db
    )
    assert [second[0].text, second[2].text, second[3].text] == [first[2], first[0], first[1]]
    assert [g.from_store for g in second] == [True, False, True, True]
    assert requests(server) == 4


async def test_cost_is_litellms_for_generate_stream_and_batches_and_the_store_sums_it(
    client: BaseClient, tmp_path: Path
) -> None:
    one = await client.generate("how much is this")
    assert one.cost is not None and one.cost > 0
    assert one.name == client.name == f"openai:{PRICED}"

    stream = client.stream("how much is this")
    async for _ in stream:
        pass
    assert stream.result is not None
    assert stream.result.cost == pytest.approx(one.cost)  # same tokens, same price
    assert stream.result.name == client.name

    db = tmp_path / "run.sqlite"
    many = await client.generate_many([f"prompt number {i}" for i in range(10)], results_db=db)
    assert all(g.cost is not None and g.cost > 0 for g in many)
    totals = summary(db)
    assert totals.cost == pytest.approx(sum(g.cost or 0 for g in many))
    assert totals.prompt_tokens == sum(g.usage.prompt_tokens or 0 for g in many)
    assert totals.completion_tokens == sum(g.usage.completion_tokens or 0 for g in many)


async def test_a_model_litellm_does_not_price_has_no_cost(server: FakeOpenAIServer) -> None:
    async with get_client(
        "openai:no-such-priced-model", api_base=server.base_url, api_key=SERVER_KEY
    ) as client:
        assert (await client.generate("hi")).cost is None


async def test_an_interrupted_batch_keeps_what_finished_and_a_rerun_pays_only_the_rest(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    n, concurrency = 120, 10
    prompts = [f"item {i}" for i in range(n)]
    server.configure(PRICED, delay=0.05)  # slow enough to cancel mid-run
    with ResultStore(tmp_path / "run.sqlite") as store:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: client.generate_many(prompts, results_db=store, concurrency=concurrency)
            )
            with anyio.fail_after(60):
                # polling a file another thread writes: there is no event to wait on
                while (await anyio.to_thread.run_sync(store.summary)).results < 30:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()  # as Ctrl-C or a pipeline's timeout would
        kept = store.summary().results  # the batch flushed before its cancel went on
        await server.await_idle()
        paid_first = requests(server)
        assert kept >= 30
        assert paid_first - kept <= concurrency  # only calls in flight were lost

        server.configure(PRICED)  # no delay
        results = await client.generate_many(prompts, results_db=store)
    assert texts(results) == [f"echo: item {i}" for i in range(n)]
    assert sum(g.from_store for g in results) == kept
    assert requests(server) - paid_first == n - kept
    assert requests(server) <= n + concurrency


async def test_the_first_error_still_keeps_every_finished_result_and_names_its_index(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "run.sqlite"
    prompts = [f"fine {i}" for i in range(10)] + ["bad !delay=0.5 !status=500"]

    with pytest.raises(ServiceUnavailableError) as caught:
        await client.generate_many(prompts, results_db=db)
    assert caught.value.index == 10  # type: ignore[attr-defined]
    assert "(prompt 10 of the 11 given to generate_many)" in caught.value.__notes__
    totals = summary(db)
    assert (totals.results, totals.failed) == (10, 1)

    again = await client.generate_many(prompts, results_db=db, return_exceptions=True)
    assert requests(server) == 11 + 1  # the error retried, nothing else
    assert isinstance(again[10], ServiceUnavailableError)
    assert all(g.from_store for g in again[:10])


async def test_iter_many_yields_every_index_once_in_completion_order(
    client: BaseClient, tmp_path: Path
) -> None:
    delays = [0.9, 0.6, 0.3, 0.0]
    prompts = [f"p{i} !delay={d}" for i, d in enumerate(delays)]
    seen = [
        (i, g.text) async for i, g in client.iter_many(prompts, results_db=tmp_path / "r.sqlite")
    ]
    assert seen == [(i, f"echo: {prompts[i]}") for i in (3, 2, 1, 0)]

    # a rerun with one new prompt: the stored ones come first, without a call
    grown = [*prompts, "p4"]
    again = [
        (i, g.from_store)
        async for i, g in client.iter_many(grown, results_db=tmp_path / "r.sqlite")
    ]
    assert again == [(0, True), (1, True), (2, True), (3, True), (4, False)]


async def test_iter_many_raises_the_first_error_with_its_index_or_yields_it_in_place(
    client: BaseClient,
) -> None:
    prompts = ["a", "b !status=400", "c !delay=0.3"]
    got: list[int] = []
    with pytest.raises(BadRequestError) as caught:
        async for index, _ in client.iter_many(prompts):
            got.append(index)
    assert caught.value.index == 1  # type: ignore[attr-defined]
    assert got == [0]

    results = dict([item async for item in client.iter_many(prompts, return_exceptions=True)])
    assert sorted(results) == [0, 1, 2]
    assert isinstance(results[1], BadRequestError) and results[1].index == 1  # type: ignore[attr-defined]


async def test_stopping_iter_many_early_cancels_the_rest_and_keeps_what_finished(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    prompts = ["quick"] + [f"slow {i} !delay=30" for i in range(5)]
    with ResultStore(tmp_path / "run.sqlite") as store:
        async with contextlib.aclosing(client.iter_many(prompts, results_db=store)) as results:
            async for index, _ in results:
                assert index == 0
                break
        assert store.summary().results == 1
        stats = await server.await_idle(within=10)
    assert stats.disconnects == 5  # the slow calls were cancelled, not left running


async def test_a_caller_store_stays_open_and_a_bad_results_db_is_refused_before_any_call(
    client: BaseClient, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        await client.generate_many(["x"], results_db=store)
        await client.generate_many(["x"], results_db=store)  # still open: ours to close
        assert store.summary().results == 1
    with pytest.raises(InvalidParameterError, match="results_db must be a file path"):
        await client.generate_many(["x"], results_db=42)
    assert requests(server) == 1
