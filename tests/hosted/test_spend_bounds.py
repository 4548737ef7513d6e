"""The reservation behind `max_cost`: an upper bound of a call's cost from LiteLLM's price map,
and a budget whose reservations wait for those in flight rather than race them."""

from __future__ import annotations

import math
from types import ModuleType

import anyio
import pytest

from model_registry import BudgetExceededError, InvalidParameterError, resolve
from model_registry.clients._policy.cost_bound import IMAGE_TOKENS, pricing, prompt_token_bound
from model_registry.clients._policy.spend import Budget

TEXTS = [
    "Write three distractors for: what is the capital of France?",
    "Ünïcödé, 日本語のテキスト, العربية, emoji 🎉🎉🎉 and code: def f(x): return x**2",
    "a" * 5000,
    " ".join(str(n) for n in range(2000)),
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_prompt_bound_is_at_least_what_litellm_counts(litellm: ModuleType, text: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    for model in ("gpt-4o-mini", "gpt-4"):
        assert prompt_token_bound(messages) >= litellm.token_counter(model=model, messages=messages)


def test_each_part_that_is_not_text_reserves_an_image_worth_of_tokens() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    text = {"type": "text", "text": "what is this?"}
    one = prompt_token_bound([{"role": "user", "content": [text]}])
    two = prompt_token_bound([{"role": "user", "content": [text, image]}])
    assert two - one >= IMAGE_TOKENS


def test_a_priced_model_is_bounded_by_its_prices_and_max_tokens(litellm: ModuleType) -> None:
    info = litellm.get_model_info("openai/gpt-4o-mini")
    price = pricing(resolve("openai:gpt-4o-mini"), {"max_tokens": 100})
    assert price.bound(1000) == pytest.approx(
        1000 * info["input_cost_per_token"] + 100 * info["output_cost_per_token"]
    )
    unbounded = pricing(resolve("openai:gpt-4o-mini"), {})  # the model's max output tokens
    assert unbounded.output_tokens == info["max_output_tokens"]
    standard = pricing(
        resolve("openai:gpt-4o-mini"), {"max_tokens": 100, "service_tier": "default"}
    )
    priority = pricing(
        resolve("openai:gpt-4o-mini"), {"max_tokens": 100, "service_tier": "priority"}
    )
    assert standard.bound(1000) == price.bound(1000) < priority.bound(1000)
    batches = pricing(resolve("openai:gpt-4o-mini"), {"max_tokens": 100}, tier="batches")
    assert batches.bound(1000) == pytest.approx(
        1000 * info["input_cost_per_token_batches"] + 100 * info["output_cost_per_token_batches"]
    )


def test_cache_writes_and_long_context_prices_apply_only_where_they_can(
    litellm: ModuleType,
) -> None:
    info = litellm.get_model_info("anthropic/claude-sonnet-4-5")
    price = pricing(resolve("anthropic:claude-sonnet-4-5"), {"max_tokens": 1})
    plain = price.bound(1000) - info["output_cost_per_token"]
    assert plain == pytest.approx(1000 * info["input_cost_per_token"])
    assert price.bound(1000, caches=True) > price.bound(1000)


def test_prices_given_in_the_call_are_the_ones_used() -> None:
    name = resolve("openai:no-such-model-here", api_base="http://127.0.0.1:9/v1")
    price = pricing(
        name, {"input_cost_per_token": 0.5, "output_cost_per_token": 2, "max_tokens": 3}
    )
    assert price.bound(10) == 10 * 0.5 + 3 * 2
    with pytest.raises(InvalidParameterError, match="pass max_tokens"):
        pricing(name, {"input_cost_per_token": 0.5, "output_cost_per_token": 2})
    with pytest.raises(InvalidParameterError, match="input_cost_per_token must be a price"):
        pricing(name, {"input_cost_per_token": "cheap", "output_cost_per_token": 2})


async def test_a_reservation_waits_for_those_in_flight_and_is_refused_when_none_is_left() -> None:
    budget = Budget(1.0, spent=0.25)
    first = budget.reserve(0.5)
    assert first is not None and budget.reserve(0.5) is None  # 0.25 + 0.5 + 0.5 > 1

    got = []

    async def second() -> None:
        got.append(await budget.acquire(0.5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert not got  # waiting: the first may come back cheaper
        budget.settle(first, 0.1)
    assert math.isclose(budget.spent, 0.35) and math.isclose(budget.held, 0.5)

    budget.settle(got[0], None)  # an unknown cost keeps the reservation as spent
    assert math.isclose(budget.spent, 0.85) and budget.held == 0.0
    with pytest.raises(BudgetExceededError) as raised:
        await budget.acquire(0.5)
    assert (raised.value.max_cost, raised.value.spent) == (1.0, budget.spent)
    assert budget.closed and budget.reserve(0.01) is None  # no later prompt is sent


async def test_a_reservation_that_cannot_fit_even_after_those_in_flight_is_refused_at_once() -> (
    None
):
    budget = Budget(1.0, spent=0.6)
    assert budget.reserve(0.3) is not None
    with anyio.fail_after(5), pytest.raises(BudgetExceededError):
        await budget.acquire(0.5)  # 0.6 spent + 0.5 > 1 whatever the 0.3 in flight costs
