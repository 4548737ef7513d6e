"""What a batch answer costs, through the fake server: the batch prices an alias gives, and
Anthropic's prompt-cache reads and writes at their batch prices (LiteLLM's price map)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from model_registry import get_client
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, declare, model_name

#: A model of its own with per-request prices and its own (lower) batch prices, per token.
PRICES = {
    "input_cost_per_token": 1e-6,
    "output_cost_per_token": 4e-6,
    "input_cost_per_token_batches": 1e-7,
    "output_cost_per_token_batches": 1e-6,
}


async def test_batch_prices_given_in_an_aliases_defaults_price_its_batch_answers(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    defaults = "".join(f"{key} = {value}\n" for key, value in PRICES.items())
    declare(
        tmp_path,
        server,
        provider,
        f'[aliases."priced"]\nprovider = "{provider}"\nmodel_id = "{model_name()}"\n\n'
        f'[aliases."priced".defaults]\n{defaults}',
    )
    async with get_client("priced") as client:
        (result,) = await client.generate_many(
            ["one two three"], batch_api=True, results_db=tmp_path / "r.db"
        )
    usage = result.usage
    assert usage.prompt_tokens and usage.completion_tokens
    expected = usage.prompt_tokens * 1e-7 + usage.completion_tokens * 1e-6
    assert result.cost == pytest.approx(expected)
    (body,) = [job for job in server.batch_jobs("openai")]
    assert body["counts"] == {"succeeded": 1}  # the prices were not sent as params


async def test_anthropic_cache_reads_and_writes_in_a_batch_cost_their_batch_prices(
    server: FakeOpenAIServer, tmp_path: Path, litellm: ModuleType
) -> None:
    model = "claude-haiku-4-5"
    system = " ".join(["rule"] * 60)
    prompt = [
        {
            "role": "system",
            "content": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": f"{system} question !cached=20 !cache_write=30"},
    ]
    async with get_client(
        f"anthropic:{model}", api_base=server.anthropic_url, api_key=SERVER_KEY, max_tokens=20
    ) as client:
        (result,) = await client.generate_many(
            [prompt], batch_api=True, results_db=tmp_path / "r.db"
        )
    sent = server.batch_stats("anthropic")
    assert sent.jobs_created == 1
    usage = result.raw["usage"]
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (20, 30)
    assert usage["input_tokens"] > 0
    price = litellm.model_cost[model]
    expected = (
        usage["input_tokens"] * price["input_cost_per_token_batches"]
        + 20 * price["cache_read_input_token_cost_batches"]
        + 30 * price["cache_creation_input_token_cost_batches"]
        + usage["output_tokens"] * price["output_cost_per_token_batches"]
    )
    assert result.cost == pytest.approx(expected)
    assert result.usage.cached_tokens == 20
    assert result.usage.prompt_tokens == usage["input_tokens"] + 20 + 30
