"""`limiter_wait` events of hosted calls on the loopback server under each kind of declared
limit: which limit held the call ("rpm", "tpm", "concurrency"), and the waits both where
the call is admitted and where its request is sent (`limits.take_send`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from model_registry import get_client, off
from model_registry.events import EVENT_NAMES, CallEnd, LimiterWait
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY
from tests.hosted.test_events import listen


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    for name in EVENT_NAMES:
        off(name)


def client_of(server: FakeOpenAIServer, limits: dict[str, int], delay: float = 0.0) -> Any:
    """A client of a model of its own at the loopback server, under `limits` (given in
    code: a limiter of its own)."""
    model = f"lim-{uuid.uuid4().hex[:8]}"
    if delay:
        server.configure(model, delay=delay)
    kwargs: dict[str, Any] = {"api_base": server.base_url, "api_key": SERVER_KEY, "num_retries": 0}
    return get_client(f"openai:{model}", limits=limits, **kwargs)


def waits(seen: list[Any]) -> list[LimiterWait]:
    return [e for e in seen if isinstance(e, LimiterWait)]


# tpm 6,000: the token buckets hold 40 tokens and refill ~98 a second; a call charged 86
# tokens (the prompt's 6, max_tokens 80) is taken in three parts: ~0.47 s of waiting
TPM = 6000
MAX_TOKENS = 80


async def test_a_call_over_a_tpm_bucket_waits_for_tpm(server: FakeOpenAIServer) -> None:
    async with client_of(server, {"tpm": TPM}) as client:
        seen = listen()
        await client.generate("hello", max_tokens=MAX_TOKENS)
    found = waits(seen)
    assert found and all(w.limit == "tpm" for w in found)  # no rpm was declared
    assert found[0].seconds >= 0.3


async def test_the_wait_at_the_send_is_reported_too(server: FakeOpenAIServer) -> None:
    async with client_of(server, {"tpm": TPM}) as client:
        seen = listen()
        await client.generate("hello", max_tokens=MAX_TOKENS)
    # admitted after ~0.47 s, then its request waits as long for the sends' token bucket
    assert [e.kind for e in seen] == [
        "call_start",
        "limiter_wait",
        "attempt",
        "limiter_wait",
        "call_end",
    ]
    admitted, sent = waits(seen)
    assert (admitted.limit, sent.limit) == ("tpm", "tpm")
    assert admitted.seconds >= 0.3 and sent.seconds >= 0.3
    end = seen[-1]
    assert isinstance(end, CallEnd) and end.latency_s >= admitted.seconds + sent.seconds


async def test_a_second_call_under_an_rpm_waits_for_rpm(server: FakeOpenAIServer) -> None:
    # rpm 60: one request at once, then ~1 a second
    async with client_of(server, {"rpm": 60}) as client:
        await client.generate("first")
        seen = listen()
        await client.generate("second")
    found = waits(seen)
    assert found and all(w.limit == "rpm" for w in found)
    assert found[0].seconds >= 0.5


async def test_a_call_behind_another_waits_for_concurrency(server: FakeOpenAIServer) -> None:
    async with client_of(server, {"concurrency": 1}, delay=0.5) as client:
        seen = listen()
        async with anyio.create_task_group() as group:
            group.start_soon(client.generate, "a")
            group.start_soon(client.generate, "b")
    (wait,) = waits(seen)
    assert wait.limit == "concurrency" and wait.seconds >= 0.3
