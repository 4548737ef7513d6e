"""`max_cost` against the loopback server: each attempt reserves an upper bound of its cost
before it is sent, so the total spent (the store's included) never passes the cap; prompts
that do not fit get BudgetExceededError and are not stored, so a rerun continues."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from model_registry import (
    BudgetExceededError,
    Generation,
    InvalidParameterError,
    RequestTimeoutError,
    ResultStore,
    ServiceUnavailableError,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import declare, model_name

#: USD per token, in the alias's defaults (LiteLLM prices the call by them).
IN_PRICE, OUT_PRICE = 0.001, 0.002
#: The fake server counts a token per word: "pN w w" costs 3 prompt tokens and its answer
#: "echo: pN w w" 4 completion tokens, so every answer costs 0.011 USD.
ANSWER_COST = 3 * IN_PRICE + 4 * OUT_PRICE


def alias(tmp_path: Path, server: FakeOpenAIServer, provider: str, **defaults: Any) -> str:
    """An alias of a model of its own at `provider`, priced in its defaults, max_tokens 8."""
    model = model_name()
    table = {"input_cost_per_token": IN_PRICE, "output_cost_per_token": OUT_PRICE}
    table |= {"max_tokens": 8, "num_retries": 0, **defaults}
    lines = "".join(f"{key} = {value!r}\n" for key, value in table.items())
    extra = (
        f'[aliases."priced"]\nprovider = "{provider}"\nmodel_id = "{model}"\n\n'
        f'[aliases."priced".defaults]\n{lines}'
    )
    declare(tmp_path, server, provider, extra)
    return model


def prompts(count: int) -> list[str]:
    return [f"p{i} w w" for i in range(count)]


def stored_cost(db: Path) -> float:
    with ResultStore(db) as store:
        return store.summary().cost or 0.0


def answered(results: list[Any]) -> list[Generation]:
    return [r for r in results if isinstance(r, Generation)]


async def test_the_total_spent_never_exceeds_max_cost_and_the_rest_is_not_sent(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model, db = alias(tmp_path, server, provider), tmp_path / "run.sqlite"
    async with get_client("priced") as client:
        results = await client.generate_many(
            prompts(20), max_cost=0.1, results_db=db, return_exceptions=True
        )
    sent = answered(results)
    assert sent and len(sent) < 20
    assert all(math.isclose(g.cost or 0, ANSWER_COST) for g in sent)
    assert stored_cost(db) <= 0.1
    assert server.stats(model).requests == len(sent)
    refused = [r for r in results if not isinstance(r, Generation)]
    assert all(isinstance(r, BudgetExceededError) for r in refused)
    assert {r.max_cost for r in refused} == {0.1}
    assert all(r.spent <= 0.1 for r in refused)
    with ResultStore(db) as store:  # the prompts not sent are not stored
        assert store.summary().failed == 0 and store.summary().results == len(sent)


async def test_a_rerun_under_the_same_cap_sends_nothing_and_a_higher_cap_finishes(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model, db = alias(tmp_path, server, provider), tmp_path / "run.sqlite"
    async with get_client("priced") as client:
        first = await client.generate_many(
            prompts(10), max_cost=0.1, results_db=db, return_exceptions=True
        )
        paid, sent = stored_cost(db), server.stats(model).requests
        assert 0 < len(answered(first)) < 10 and paid <= 0.1

        with pytest.raises(BudgetExceededError) as raised:
            await client.generate_many(prompts(10), max_cost=0.1, results_db=db)
        assert server.stats(model).requests == sent
        assert raised.value.max_cost == 0.1
        assert math.isclose(raised.value.spent, paid)  # the store's cost counts
        assert isinstance(first[raised.value.index], BudgetExceededError)

        last = await client.generate_many(prompts(10), max_cost=1.0, results_db=db)
    assert [g.text for g in last] == [f"echo: {p}" for p in prompts(10)]
    assert server.stats(model).requests == 10  # each prompt sent once over the three runs
    assert math.isclose(stored_cost(db), 10 * ANSWER_COST)


async def test_iter_many_yields_the_prompts_not_sent_and_raises_after_those_in_flight(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    alias(tmp_path, server, provider)
    async with get_client("priced") as client:
        items = [
            item
            async for item in client.iter_many(prompts(10), max_cost=0.1, return_exceptions=True)
        ]
        assert sorted(i for i, _ in items) == list(range(10))
        refused = [i for i, r in items if isinstance(r, BudgetExceededError)]
        assert refused and len(refused) < 10

        seen: list[int] = []
        with pytest.raises(BudgetExceededError):
            async for index, _ in client.iter_many(prompts(10), max_cost=0.1, concurrency=4):
                seen.append(index)
    assert seen and len(seen) < 10


@pytest.mark.parametrize("concurrency", [64, 256])
async def test_concurrency_at_the_cap_reserves_rather_than_races(
    concurrency: int, server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model, db = alias(tmp_path, server, provider), tmp_path / "run.sqlite"
    server.configure(model, delay=0.05)
    # 0.3 USD holds 27 answers: 64 calls sent at once would spend 0.7 before any answer came
    async with get_client("priced") as client:
        results = await client.generate_many(
            prompts(600),
            concurrency=concurrency,
            max_cost=0.3,
            results_db=db,
            return_exceptions=True,
        )
    stats = server.stats(model)
    assert stored_cost(db) <= 0.3
    assert 1 < stats.max_in_flight < 64
    assert stats.requests == len(answered(results)) > 1
    assert sum(isinstance(r, BudgetExceededError) for r in results) == 600 - stats.requests


async def test_an_attempt_answered_with_an_error_gives_its_reservation_back(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    alias(tmp_path, server, provider)
    async with get_client("priced") as client:
        results = await client.generate_many(
            ["x !status=500", *prompts(2)], concurrency=1, max_cost=0.1, return_exceptions=True
        )
        retried = await client.generate_many(
            ["y !once=503", *prompts(2)], concurrency=1, max_cost=0.1, num_retries=1
        )
    assert isinstance(results[0], ServiceUnavailableError)
    assert all(isinstance(r, Generation) for r in results[1:])
    assert [g.text for g in retried] == ["echo: y !once=503", "echo: p0 w w", "echo: p1 w w"]


async def test_an_attempt_whose_outcome_is_unknown_keeps_its_reservation(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model = alias(tmp_path, server, provider)
    async with get_client("priced") as client:
        results = await client.generate_many(
            ["x !delay=5", *prompts(2)],
            concurrency=1,
            max_cost=0.1,
            timeout=0.5,
            return_exceptions=True,
        )
    # the timed-out attempt may have been billed: what it reserved leaves no room for more
    assert isinstance(results[0], RequestTimeoutError)
    assert all(isinstance(r, BudgetExceededError) for r in results[1:])
    assert results[1].spent > 0.05
    assert server.stats(model).requests == 1


async def test_a_model_with_no_known_price_is_refused_before_any_call(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    async with get_client(f"openai:{model}", api_base=server.base_url, api_key="k") as client:
        with pytest.raises(InvalidParameterError) as raised:
            await client.generate_many(["a"], max_cost=1.0, max_tokens=8)
    message = str(raised.value)
    assert f"'openai:{model}'" in message
    assert "input_cost_per_token" in message and "output_cost_per_token" in message
    assert "defaults" in message
    assert server.stats(model).requests == 0


async def test_a_fallback_with_no_known_price_is_refused_before_any_call(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model = alias(tmp_path, server, provider)
    async with get_client("priced", fallbacks=["openai:unpriced-fallback"]) as client:
        with pytest.raises(InvalidParameterError, match="'openai:unpriced-fallback'"):
            await client.generate_many(["a"], max_cost=1.0)
    assert server.stats(model).requests == 0


async def test_max_cost_with_a_local_fallback_is_refused_before_any_call(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model = alias(tmp_path, server, provider)
    async with get_client("priced", fallbacks=["local:some-org/some-model"]) as client:
        with pytest.raises(InvalidParameterError, match="'local:some-org/some-model' is a local"):
            await client.generate_many(["a"], max_cost=1.0)
    assert server.stats(model).requests == 0


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "5", True])
async def test_max_cost_must_be_a_number_of_dollars(
    bad: Any, server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    alias(tmp_path, server, provider)
    async with get_client("priced") as client:
        with pytest.raises(InvalidParameterError, match="max_cost must be a number of US dollars"):
            await client.generate_many(["a"], max_cost=bad)


async def test_a_fallback_reserves_at_its_own_price(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    primary, dear = model_name(), model_name()
    prices = "max_tokens = 8\nnum_retries = 0\n"
    declare(
        tmp_path,
        server,
        provider,
        f'[aliases."cheap"]\nprovider = "{provider}"\nmodel_id = "{primary}"\n'
        f'fallbacks = ["dear"]\n\n[aliases."cheap".defaults]\n{prices}'
        "input_cost_per_token = 0.001\noutput_cost_per_token = 0.002\n\n"
        f'[aliases."dear"]\nprovider = "{provider}"\nmodel_id = "{dear}"\n\n'
        f'[aliases."dear".defaults]\n{prices}'
        "input_cost_per_token = 0.01\noutput_cost_per_token = 0.02\n",
    )
    server.configure(primary, status=503)
    async with get_client("cheap") as client:
        # the primary's bound fits 0.3 USD, the fallback's (ten times its price) does not
        with pytest.raises(BudgetExceededError):
            await client.generate_many(["p0 w w"], max_cost=0.3)
        assert (server.stats(primary).requests, server.stats(dear).requests) == (1, 0)
        [answer] = await client.generate_many(["p0 w w"], max_cost=1.0)
    assert answer.name == "dear"
    assert answer.cost == pytest.approx(10 * ANSWER_COST)
