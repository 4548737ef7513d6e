"""Sends paced where they leave the process: calls admitted on time by the limiter can
reach the socket bunched when the work between admission and send stalls (a loaded
machine: LiteLLM prepares each call in the loop's thread pool). Here the pool is held on
purpose for the first seconds, so every call admitted meanwhile would go out at once;
the server's arrivals must still keep the 1 s bound, with margin for a loaded machine.
On the openai SDK's routes (the loopback server) and on LiteLLM's own handler's routes
(anthropic at its real URL, respx counting where each request is sent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
import respx

from model_registry import get_client
from model_registry.clients._policy.paced_http import (
    CACHED_ROUTES,
    HANDLER_ROUTES,
    hook_litellm_clients,
    pace_cached_send,
    paced_handler,
    paced_session,
)
from model_registry.limits import estimate_tokens
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY
from tests.hosted.test_enforced_rpm import most_in_any_window
from tests.hosted.test_wire import (
    ANTHROPIC_RESPONSE,
    ANTHROPIC_URL,
    GEMINI_RESPONSE,
    GEMINI_URL,
    _anthropic_sse,
    _gemini_sse,
)

RPM = 600  # 10 a second: a 1 s window holds at most about 14 (a 0.4 s burst + the rate)
CALLS = 50
HELD = 3.0  # seconds the thread pool is held: about 30 calls admitted meanwhile
#: Generous above the limiter's 14, far below the ~40 that held calls send in one second.
MOST_PER_SECOND = 20


class _HeldPool(concurrent.futures.ThreadPoolExecutor):
    """A thread pool whose jobs submitted before `until` (time.monotonic()) start then."""

    def __init__(self, until: float) -> None:
        super().__init__(max_workers=CALLS + 8)
        self.until = until

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        until = self.until

        def held() -> Any:
            time.sleep(max(0.0, until - time.monotonic()))
            return fn(*args, **kwargs)

        return super().submit(held)


@pytest.fixture
async def held_pool() -> AsyncIterator[_HeldPool]:
    loop = asyncio.get_running_loop()
    pool = _HeldPool(until=0.0)
    loop.set_default_executor(pool)
    yield pool
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
    pool.shutdown(wait=True)


async def test_sends_stalled_after_admission_still_reach_the_server_spaced(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    model = f"paced-{uuid.uuid4().hex[:8]}"
    async with get_client(f"{provider}:warm-up") as client:
        await client.generate("warm up")  # LiteLLM's first-call start-up, outside the test
    with anyio.fail_after(120):
        async with get_client(f"{provider}:{model}", limits={"rpm": RPM}) as client:
            held_pool.until = time.monotonic() + HELD
            results = await client.generate_many(
                [f"q{i}" for i in range(CALLS)], return_exceptions=True
            )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} calls failed, the first: {errors[0]!r}"
    arrivals = server.request_starts(model)
    assert len(arrivals) == CALLS
    most = most_in_any_window(arrivals, 1.0)
    assert most <= MOST_PER_SECOND, f"{most} requests reached the server within 1 s"


async def test_the_sends_leave_the_http_client_at_the_declared_rate(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    """Where the request is sent (a hook after ours): the bucket's own bound, on a loop
    whose thread pool stalls the calls admitted in the first seconds."""
    model = f"paced-{uuid.uuid4().hex[:8]}"
    sends: list[float] = []

    async def record(request: Any) -> None:
        if model in request.content.decode():
            sends.append(anyio.current_time())

    with anyio.fail_after(120):
        async with get_client(f"{provider}:{model}", limits={"rpm": RPM}) as client:
            hooks = paced_session().event_hooks["request"]
            hooks.append(record)
            held_pool.until = time.monotonic() + HELD
            try:
                results = await client.generate_many(
                    [f"q{i}" for i in range(CALLS)], return_exceptions=True
                )
            finally:
                hooks.remove(record)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(sends) == CALLS
    # a burst of 0.4 s worth (4) and 0.99 of the rate: at most 4 + 9.83 in any 1 s
    assert most_in_any_window(sends, 1.0) <= 14


async def test_tokens_stalled_after_admission_still_reach_the_server_spaced(
    server: FakeOpenAIServer, provider: str, held_pool: _HeldPool
) -> None:
    """`tpm` likewise: each request's charged tokens are taken again where it is sent."""
    model = f"paced-{uuid.uuid4().hex[:8]}"
    server.configure(model, reply=" ".join(["word"] * 16))  # usage close to the estimate
    tokens_each = estimate_tokens("q10", 16)  # what the limiter charges each call
    async with get_client(f"{provider}:warm-up") as client:
        await client.generate("warm up")
    with anyio.fail_after(120):
        tpm = tokens_each * RPM  # the same 10 calls a second as the rpm tests
        async with get_client(f"{provider}:{model}", limits={"tpm": tpm}) as client:
            held_pool.until = time.monotonic() + HELD
            results = await client.generate_many(
                [f"q{i + 10}" for i in range(CALLS)], max_tokens=16, return_exceptions=True
            )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} calls failed, the first: {errors[0]!r}"
    arrivals = server.request_starts(model)
    assert len(arrivals) == CALLS
    most = most_in_any_window(arrivals, 1.0)
    assert most <= MOST_PER_SECOND, f"{most} requests reached the server within 1 s"


@pytest.mark.usefixtures("provider_keys")
async def test_anthropic_sends_leave_litellms_own_handler_at_the_declared_rate(
    respx_mock: respx.MockRouter, held_pool: _HeldPool
) -> None:
    """A route LiteLLM sends through its own HTTP handler, not the openai SDK: the send
    times where respx answers (after every hook) keep the bucket's bound."""
    tag = f"paced-{uuid.uuid4().hex[:8]}"
    sends: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if tag in request.content.decode():
            sends.append(time.monotonic())
        return httpx.Response(200, json=ANTHROPIC_RESPONSE)

    respx_mock.post(ANTHROPIC_URL).mock(side_effect=answer)
    await _stalled_batch_sends_stay_spaced("anthropic:claude-sonnet-4-5", tag, sends, held_pool)


async def _stalled_batch_sends_stay_spaced(
    name: str, tag: str, sends: list[float], held_pool: _HeldPool
) -> None:
    """`CALLS` calls of `name` (prompts carrying `tag`) at `RPM`, the thread pool held for
    `HELD` s once they are admitted: every call answered, and `sends` (their send times, as
    respx records them) never more than `MOST_PER_SECOND` in any second."""
    async with get_client(name) as client:
        await client.generate("warm up")  # LiteLLM's first-call start-up, outside the test
    with anyio.fail_after(120):
        async with get_client(name, limits={"rpm": RPM}) as client:
            held_pool.until = time.monotonic() + HELD
            results = await client.generate_many(
                [f"{tag} q{i}" for i in range(CALLS)], return_exceptions=True
            )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} calls failed, the first: {errors[0]!r}"
    assert len(sends) == CALLS
    most = most_in_any_window(sends, 1.0)
    # where respx answers, a little after the hook: the margin of the server's count
    assert most <= MOST_PER_SECOND, f"{most} requests were sent within 1 s"


class _Sent(Exception):
    """Raised by the probe's request hook: the request reached the handler given."""


#: Fake credentials the routes of cloud platforms need before they send (signing or a
#: token are local: nothing leaves the machine), as kwargs and environment variables.
_CLOUD_KWARGS: dict[str, dict[str, str]] = {
    "watsonx": {"project_id": "p", "token": "t"},
    "watsonx_text": {"project_id": "p", "token": "t"},
    "sagemaker_chat": {"aws_region_name": "us-east-1"},
    "sagemaker_nova": {"aws_region_name": "us-east-1"},
}
_AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fake"}


@pytest.mark.parametrize("provider", sorted(HANDLER_ROUTES))
async def test_each_handler_route_sends_through_the_handler_it_is_given(
    provider: str, litellm: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM (as installed) sends each of `HANDLER_ROUTES` through `acompletion(client=)`;
    a route that stopped doing so would be paced at the limiter only."""
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    if provider.startswith("sagemaker"):
        for var, value in _AWS_ENV.items():
            monkeypatch.setenv(var, value)
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(str(request.url))
        raise _Sent

    handler = AsyncHTTPHandler(event_hooks={"request": [hook]})
    with anyio.fail_after(30), pytest.raises(Exception):  # noqa: B017 (LiteLLM's wrapping of it)
        await litellm.acompletion(
            model=f"{provider}/m-1",
            messages=[{"role": "user", "content": "hi"}],
            api_base="http://127.0.0.1:9/v1",  # the discard port: nothing goes out
            api_key="k",
            num_retries=0,
            max_retries=0,
            timeout=5,
            client=handler,
            **_CLOUD_KWARGS.get(provider, {}),
        )
    await handler.close()
    assert sent, f"LiteLLM did not send {provider}/... through the AsyncHTTPHandler given"


_GEMINI_STREAM_URL = GEMINI_URL.replace(":generateContent", ":streamGenerateContent?alt=sse")


@pytest.mark.usefixtures("provider_keys")
@pytest.mark.parametrize(
    ("name", "url", "answer", "text"),
    [
        ("anthropic:claude-sonnet-4-5", ANTHROPIC_URL, ANTHROPIC_RESPONSE, "Paris."),
        ("gemini:gemini-2.5-flash", GEMINI_URL, GEMINI_RESPONSE, "Paris."),
        ("anthropic:claude-sonnet-4-5", ANTHROPIC_URL, _anthropic_sse(), None),
        ("gemini:gemini-2.5-flash", _GEMINI_STREAM_URL, _gemini_sse(), None),
    ],
)
async def test_calls_and_streams_of_handler_routes_go_out_through_the_send_hook(
    respx_mock: respx.MockRouter, name: str, url: str, answer: Any, text: str | None
) -> None:
    """With a `tpm` declared, a call and a stream of LiteLLM's own handler's routes pass
    the paced handler's request hook, and their answers read as without it."""
    if isinstance(answer, bytes):
        reply = httpx.Response(200, content=answer, headers={"content-type": "text/event-stream"})
    else:
        reply = httpx.Response(200, json=answer)
    respx_mock.post(url).mock(return_value=reply)
    hooks = paced_handler(name.replace(":", "/"), {}).client.event_hooks["request"]
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    hooks.append(record)
    try:
        async with get_client(name, limits={"tpm": 1_000_000}) as client:
            if text is not None:
                assert (await client.generate("Capital of France?")).text == text
            else:
                stream = client.stream("Capital of France?", max_tokens=32)
                assert "".join([delta async for delta in stream]) == "The capital is Paris."
    finally:
        hooks.remove(record)
    assert seen == [url]


def test_one_liners_on_a_handler_route_with_limits_leave_nothing_behind(
    server: FakeOpenAIServer,
) -> None:
    """The paced handler's connections go with each event loop, as LiteLLM's pool does."""
    code = textwrap.dedent(
        f"""
        import asyncio, gc, os
        from model_registry import get_client

        async def one_liner(i):
            client = get_client("hosted_vllm:loops", api_base={server.base_url!r},
                                api_key={SERVER_KEY!r}, limits={{"rpm": 60000}})
            return await client.generate(f"run {{i}}")

        for i in range(8):
            assert asyncio.run(one_liner(i)).text == f"echo: run {{i}}"
            gc.collect()
            print(len(os.listdir("/proc/self/fd")), flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    fds = [int(line) for line in result.stdout.split()]
    assert len(fds) == 8
    assert max(fds[2:]) == fds[2], fds  # flat once warmed up: nothing left per event loop


@pytest.mark.usefixtures("provider_keys")
async def test_unreachable_rates_leave_the_call_to_litellms_own_client(
    respx_mock: respx.MockRouter,
) -> None:
    """No send to pace: the call goes as without limits, through LiteLLM's own handler."""
    respx_mock.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, json=ANTHROPIC_RESPONSE))
    hooks = paced_handler("anthropic/claude-sonnet-4-5", {}).client.event_hooks["request"]
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    hooks.append(record)
    try:
        limits = {"rpm": 1e9, "tpm": 1e12}
        async with get_client("anthropic:claude-sonnet-4-5", limits=limits) as client:
            assert (await client.generate("Capital of France?")).text == "Paris."
    finally:
        hooks.remove(record)
    assert seen == []


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("provider", sorted(CACHED_ROUTES))
async def test_each_cached_route_sends_through_the_pacing_hook(
    provider: str, stream: bool, litellm: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM (as installed) ignores `client=` on `CACHED_ROUTES` and sends through the
    handlers it caches: each POST goes out from an httpx client carrying our hook."""
    assert hook_litellm_clients(litellm)
    posts: list[bool] = []
    send = httpx.AsyncClient.send

    async def sent(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        if request.method != "POST":
            return await send(self, request, **kwargs)
        posts.append(pace_cached_send in self.event_hooks["request"])
        raise _Sent

    monkeypatch.setattr(httpx.AsyncClient, "send", sent)
    extra = {"account_id": "a"} if provider == "cloudflare" else {}
    with anyio.fail_after(30), pytest.raises(Exception):  # noqa: B017 (LiteLLM's wrapping of it)
        answer = await litellm.acompletion(
            model=f"{provider}/m-1",
            messages=[{"role": "user", "content": "hi"}],
            api_base="http://127.0.0.1:9/v1",  # the discard port: nothing goes out
            api_key="k",
            num_retries=0,
            max_retries=0,
            timeout=5,
            stream=stream,
            **extra,
        )
        if stream:
            [chunk async for chunk in answer]  # some send on the first read
    assert posts == [True], f"{provider}/... sent {posts} (True: with the hook)"


_REPLICATE_URL = "https://api.replicate.com/v1/models/meta/llama-3-8b/predictions"
_REPLICATE_GET = "https://api.replicate.com/v1/predictions/p1"


@pytest.mark.usefixtures("provider_keys")
async def test_replicates_polls_take_no_send_token(
    respx_mock: respx.MockRouter, litellm: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replicate call POSTs once, then polls with GETs: at rpm 6 (a send every 10 s)
    a poll paced like a send would wait 10 s; the POST alone is paced."""
    monkeypatch.setenv("REPLICATE_API_KEY", "r8-test")
    monkeypatch.setattr(litellm, "DEFAULT_REPLICATE_POLLING_DELAY_SECONDS", 0)
    created = {"id": "p1", "status": "starting", "urls": {"get": _REPLICATE_GET}}
    respx_mock.post(_REPLICATE_URL).mock(return_value=httpx.Response(201, json=created))
    polls = iter(["processing", "succeeded"])
    respx_mock.get(_REPLICATE_GET).mock(
        side_effect=lambda request: httpx.Response(
            200, json={**created, "status": next(polls), "output": ["Paris."]}
        )
    )
    started = time.monotonic()
    with anyio.fail_after(60):
        async with get_client("replicate:meta/llama-3-8b", limits={"rpm": 6}) as client:
            assert (await client.generate("Capital of France?")).text == "Paris."
    assert respx_mock.calls.call_count == 3  # the POST and two polls (2 s apart: LiteLLM's)
    assert time.monotonic() - started < 9  # ~2 s; a paced poll: 10 s more each


@pytest.mark.usefixtures("provider_keys")
async def test_replicate_sends_leave_litellms_cached_handler_at_the_declared_rate(
    respx_mock: respx.MockRouter,
    litellm: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    held_pool: _HeldPool,
) -> None:
    """A route that ignores `client=` (LiteLLM's cached handler): the POSTs' send times
    where respx answers keep the bucket's bound, as on the other routes."""
    monkeypatch.setenv("REPLICATE_API_KEY", "r8-test")
    monkeypatch.setattr(litellm, "DEFAULT_REPLICATE_POLLING_DELAY_SECONDS", 0)
    tag = f"paced-{uuid.uuid4().hex[:8]}"
    sends: list[float] = []
    created = {"id": "p1", "status": "starting", "urls": {"get": _REPLICATE_GET}}

    def create(request: httpx.Request) -> httpx.Response:
        if tag in request.content.decode():
            sends.append(time.monotonic())
        return httpx.Response(201, json=created)

    respx_mock.post(_REPLICATE_URL).mock(side_effect=create)
    done = {**created, "status": "succeeded", "output": ["Paris."]}
    respx_mock.get(_REPLICATE_GET).mock(return_value=httpx.Response(200, json=done))
    await _stalled_batch_sends_stay_spaced("replicate:meta/llama-3-8b", tag, sends, held_pool)


def test_a_litellm_without_the_cache_read_here_leaves_those_routes_to_the_limiter() -> None:
    """A LiteLLM whose client cache is not as read here: no hook, and no error."""
    assert not hook_litellm_clients(SimpleNamespace())
    assert not hook_litellm_clients(SimpleNamespace(in_memory_llm_clients_cache=object()))
