"""`max_cost` with `batch_api=True` against the fake server: each request reserves its bound
at the batch price before its job is submitted, so a job holds the prompts that fit, in
input order, and the rest get BudgetExceededError (not stored, not sent)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from model_registry import BudgetExceededError, ResultStore, get_client
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import declare, model_name

#: USD per answer token (prompt tokens are free here): a request's bound is max_tokens (8)
#: of them at the full price, 0.016; its answer "echo: pN w w" has 4 tokens, billed at
#: half the price in a batch job (LiteLLM's batch price for a model with no batch prices).
OUT_PRICE = 0.002
BOUND = 8 * OUT_PRICE
ANSWER_COST = 4 * OUT_PRICE / 2


def priced(tmp_path: Path, server: FakeOpenAIServer, provider: str) -> None:
    """The alias "priced": a model of its own at `provider`, priced in its defaults."""
    declare(
        tmp_path,
        server,
        provider,
        f'[aliases."priced"]\nprovider = "{provider}"\nmodel_id = "{model_name()}"\n\n'
        '[aliases."priced".defaults]\ninput_cost_per_token = 0.0\n'
        f"output_cost_per_token = {OUT_PRICE}\nmax_tokens = 8\n",
    )


def prompts(count: int) -> list[str]:
    return [f"p{i} w w" for i in range(count)]


def job_sizes(server: FakeOpenAIServer) -> list[int]:
    return [len(job["custom_ids"]) for job in server.batch_jobs("openai")]


def stored(db: Path) -> Any:
    with ResultStore(db) as store:
        return store.summary()


async def test_a_job_under_a_cap_holds_the_first_prompts_that_fit_and_the_rest_are_not_sent(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    priced(tmp_path, server, provider)
    db, cap = tmp_path / "r.db", 3.5 * BOUND
    async with get_client("priced") as client:
        results = await client.generate_many(
            prompts(10), batch_api=True, max_cost=cap, results_db=db, return_exceptions=True
        )
    assert job_sizes(server) == [3]
    assert [r.text for r in results[:3]] == [f"echo: {p}" for p in prompts(3)]
    assert all(math.isclose(r.cost, ANSWER_COST) for r in results[:3])
    assert all(isinstance(r, BudgetExceededError) for r in results[3:])
    assert [r.index for r in results[3:]] == list(range(3, 10))
    assert {r.max_cost for r in results[3:]} == {cap}
    summary = stored(db)  # the prompts not sent are not stored
    assert (summary.results, summary.failed) == (3, 0) and summary.cost <= cap


async def test_a_rerun_under_the_same_cap_sends_no_job_and_a_higher_cap_sends_the_rest(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    priced(tmp_path, server, provider)
    db, cap = tmp_path / "r.db", 1.1 * BOUND  # one bound fits, not one more past an answer
    async with get_client("priced") as client:
        with pytest.raises(BudgetExceededError) as raised:  # after the answer is stored
            await client.generate_many(prompts(4), batch_api=True, max_cost=cap, results_db=db)
        assert raised.value.index == 1 and job_sizes(server) == [1]
        assert stored(db).results == 1
        with pytest.raises(BudgetExceededError) as again:
            await client.generate_many(prompts(4), batch_api=True, max_cost=cap, results_db=db)
        assert again.value.index == 1 and math.isclose(again.value.spent, ANSWER_COST)
        assert job_sizes(server) == [1]
        last = await client.generate_many(prompts(4), batch_api=True, max_cost=1.0, results_db=db)
    assert [g.text for g in last] == [f"echo: {p}" for p in prompts(4)]
    assert [g.from_store for g in last] == [True, False, False, False]
    assert job_sizes(server) == [1, 3]
    assert math.isclose(stored(db).cost, 4 * ANSWER_COST)


async def test_the_requests_of_a_pending_job_count_against_the_cap_of_a_rerun(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    server.configure_batches(polls=1000)  # runs until cancelled
    priced(tmp_path, server, provider)
    db, cap = tmp_path / "r.db", 2.5 * BOUND
    async with get_client("priced") as client:
        first = await client.submit_batch(prompts(4), results_db=db, max_cost=cap)
        assert (first.submitted, first.not_sent) == (2, 2)
        again = await client.submit_batch(prompts(4), results_db=db, max_cost=cap)
        assert (again.submitted, again.pending, again.not_sent) == (0, 2, 2)
        assert again.job_ids == first.job_ids and job_sizes(server) == [2]
        more = await client.submit_batch(prompts(4), results_db=db, max_cost=4.5 * BOUND)
        assert (more.submitted, more.pending, more.not_sent) == (2, 2, 0)
        assert job_sizes(server) == [2, 2]
        await client.batch_status(more.job_ids, cancel=True)
