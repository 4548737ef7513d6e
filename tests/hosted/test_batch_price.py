"""The price of an answer at its provider's batch price, from LiteLLM's installed price map."""

from __future__ import annotations

from types import ModuleType

import pytest

from model_registry import Usage
from model_registry.clients._batch_price import batch_cost

USAGE = Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200)


@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "gpt-4o-mini"])
def test_a_priced_model_costs_its_batch_price_from_the_price_map(
    litellm: ModuleType, name: str
) -> None:
    prices = litellm.model_cost["gpt-4o-mini"]
    batch = 1000 * prices["input_cost_per_token_batches"]
    batch += 200 * prices["output_cost_per_token_batches"]
    normal = 1000 * prices["input_cost_per_token"] + 200 * prices["output_cost_per_token"]

    cost = batch_cost(name, USAGE, {})

    assert cost == pytest.approx(batch)
    assert cost == pytest.approx(normal / 2)  # OpenAI's batch API: half price


def test_a_model_litellm_does_not_price_has_no_batch_cost() -> None:
    assert batch_cost("openai/my-own-model", USAGE, {}) is None


def test_prices_given_in_params_are_halved_as_litellm_halves_them_for_batches() -> None:
    params = {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6, "max_tokens": 9}
    cost = batch_cost("openai/my-own-model", USAGE, params)
    assert cost == pytest.approx((1000 * 1e-6 + 200 * 4e-6) / 2)


def test_batch_prices_given_in_params_win() -> None:
    params = {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 4e-6,
        "input_cost_per_token_batches": 1e-7,
        "output_cost_per_token_batches": 1e-6,
    }
    cost = batch_cost("openai/gpt-4o-mini", USAGE, params)
    assert cost == pytest.approx(1000 * 1e-7 + 200 * 1e-6)


def test_one_price_alone_in_params_is_ignored_as_litellm_ignores_it() -> None:
    assert batch_cost("openai/my-own-model", USAGE, {"input_cost_per_token": 1e-6}) is None


def test_unknown_token_counts_have_no_batch_cost() -> None:
    assert batch_cost("openai/gpt-4o-mini", Usage(), {}) is None
