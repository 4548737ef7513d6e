"""`embed` and `embed_many` against the loopback server: order, usage, cost, the call policy
(retries, timeout, typed errors, no secret in them), the store, a kill and a resume."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from model_registry import (
    BadRequestError,
    Embeddings,
    InvalidParameterError,
    ModelClient,
    RequestTimeoutError,
    ResultStore,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, model_name

REPO = Path(__file__).resolve().parents[2]
PRICED = "text-embedding-3-small"  # in LiteLLM's price map: 2e-08 USD a token


def _client(server: FakeOpenAIServer, model: str = PRICED, **kwargs: object) -> ModelClient:
    return get_client(f"openai:{model}", api_base=server.url, api_key=SERVER_KEY, **kwargs)


async def test_vectors_come_back_in_input_order_with_usage_and_cost(
    server: FakeOpenAIServer,
) -> None:
    texts = ["the cat sat", "a dog", "the cat sat", "x"]
    async with _client(server) as client:
        embeddings = await client.embed(texts)
        alone = await client.embed(["a dog"])

    assert len(embeddings.vectors) == 4
    assert embeddings.vectors[0] == embeddings.vectors[2]  # the server's vector of a text
    assert embeddings.vectors[1] == alone.vectors[0]  # order kept: text 1 is "a dog"
    assert len({tuple(v) for v in embeddings.vectors}) == 3
    assert all(math.isclose(sum(x * x for x in v), 1.0) for v in embeddings.vectors)
    assert embeddings.usage.prompt_tokens == 3 + 2 + 3 + 1  # the server: a token a word
    assert embeddings.cost == pytest.approx(9 * 2e-08)
    assert (embeddings.model, embeddings.provider) == (PRICED, "openai")
    assert server.stats(PRICED).bodies[0]["input"] == texts


async def test_dimensions_pass_through(server: FakeOpenAIServer) -> None:
    embeddings = await _client(server).embed(["a", "b"], dimensions=5)
    assert [len(v) for v in embeddings.vectors] == [5, 5]
    assert embeddings.dimensions == 5
    assert server.stats(PRICED).bodies[-1]["dimensions"] == 5


async def test_a_transient_failure_is_retried_like_generate(server: FakeOpenAIServer) -> None:
    model = model_name()
    server.configure(model, status=503, times=1)
    embeddings = await _client(server, model, num_retries=2).embed(["a"])
    assert len(embeddings.vectors) == 1
    assert server.stats(model).requests == 2


async def test_a_refused_request_is_a_typed_error_without_the_key(
    server: FakeOpenAIServer,
) -> None:
    model = model_name()
    server.configure(model, status=400, message=f"bad input (key {SERVER_KEY})")
    with pytest.raises(BadRequestError) as caught:
        await _client(server, model).embed(["a"])
    assert caught.value.status_code == 400
    assert SERVER_KEY not in str(caught.value)
    assert server.stats(model).requests == 1  # a 400 is not retried


async def test_timeout_bounds_an_embedding_call(server: FakeOpenAIServer) -> None:
    model = model_name()
    server.configure(model, delay=10)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        await _client(server, model, timeout=0.5, num_retries=0).embed(["a"])
    assert time.monotonic() - started < 8


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], "embed was given no texts"),
        (["a", 3], "text 1 is a int, not a string"),
        (["a", "b", None], "text 2 is a NoneType"),
        (b"bytes", "takes a string or a list of strings, got bytes"),
        (["a", "caf\u00e9 \udcff"], r"embed: text 1 holds a lone surrogate \(U\+DCFF at index 5\)"),
        ("\ud800", r"embed: the text holds a lone surrogate \(U\+D800 at index 0\)"),
    ],
)
async def test_texts_that_are_not_strings_are_refused_before_any_request(
    server: FakeOpenAIServer, texts: object, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        await _client(server).embed(texts)  # type: ignore[arg-type]
    assert server.stats().requests == 0


async def test_embed_many_batches_keeps_order_and_sums_usage_and_cost(
    server: FakeOpenAIServer,
) -> None:
    texts = [f"text number {i}" for i in range(10)]
    async with _client(server) as client:
        many = await client.embed_many(texts, batch_size=3, concurrency=2)
        whole = await client.embed(texts)

    assert many.vectors == whole.vectors
    assert many.usage.prompt_tokens == whole.usage.prompt_tokens == 30
    assert many.cost == pytest.approx(whole.cost)
    inputs = [body["input"] for body in server.stats(PRICED).bodies[:-1]]
    assert sorted(len(batch) for batch in inputs) == [1, 3, 3, 3]
    assert server.stats(PRICED).max_in_flight <= 2


async def test_embed_many_with_a_store_embeds_each_text_once(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "vectors.sqlite"
    texts = ["a", "b b", "a", "c"]
    async with _client(server) as client:
        first = await client.embed_many(texts, batch_size=2, results_db=db)
        again = await client.embed_many(texts, batch_size=2, results_db=db)
        more = await client.embed_many([*texts, "d"], batch_size=2, results_db=db)

    assert again.vectors == first.vectors == more.vectors[:4]
    assert (first.from_store, again.from_store, more.from_store) == (0, 4, 4)
    assert again.usage.prompt_tokens == first.usage.prompt_tokens == 5
    assert again.cost == pytest.approx(first.cost)
    assert server.stats(PRICED).requests == 2 + 0 + 1
    assert server.stats(PRICED).bodies[-1]["input"] == ["d"]
    with ResultStore(db) as store:
        summary = store.summary()
    assert summary.results == 5 and summary.prompt_tokens == 6


async def test_embed_many_raises_the_first_error_and_keeps_what_finished(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "vectors.sqlite"
    model = model_name()
    texts = ["fine", "also fine", "!status=400", "later"]
    async with _client(server, model) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.embed_many(texts, batch_size=2, concurrency=1, results_db=db)
        assert "texts 2 to 3" in "".join(caught.value.__notes__)
        rerun = await client.embed_many(texts[:2], batch_size=2, results_db=db)
    assert rerun.from_store == 2


_RUNNER = """
import asyncio, sys
from model_registry import get_client

async def main(url, key, db):
    client = get_client("openai:{model}", api_base=url, api_key=key)
    texts = [f"text {{i}}" for i in range({count})]
    await client.embed_many(texts, batch_size=1, concurrency=2, results_db=db)

asyncio.run(main(*sys.argv[1:]))
"""


def _run_and_kill(server: FakeOpenAIServer, model: str, count: int, db: Path) -> None:
    """Run embed_many in a process of its own; SIGKILL it once 10 requests have arrived."""
    code = _RUNNER.format(model=model, count=count)
    args = [sys.executable, "-c", code, server.url, SERVER_KEY, str(db)]
    runner = subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while server.stats(model).requests < 10 and time.monotonic() < deadline:
            assert runner.poll() is None, "the run ended before it was killed"
            time.sleep(0.05)
        assert server.stats(model).requests >= 10
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()


async def test_embed_many_killed_mid_run_resumes_without_embedding_a_text_twice(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db, model, count, concurrency = tmp_path / "vectors.sqlite", model_name(), 40, 2
    server.configure(model, delay=0.1)
    await anyio.to_thread.run_sync(_run_and_kill, server, model, count, db)
    sent_before = server.stats(model).requests
    with ResultStore(db) as store:
        stored = store.summary().results
    assert sent_before - concurrency <= stored <= sent_before  # only what was in flight is lost

    server.configure(model)  # no delay
    texts = [f"text {i}" for i in range(count)]
    resumed = await _client(server, model).embed_many(texts, batch_size=1, results_db=db)
    assert isinstance(resumed, Embeddings)
    assert resumed.from_store == stored
    assert server.stats(model).requests - sent_before == count - stored
    whole = await _client(server, model).embed(texts)
    assert resumed.vectors == whole.vectors
