"""Events (`model_registry.on`) of hosted calls on the loopback server: every step of a call
in order, handlers that raise or sleep, no credential in any event, batches and stored
answers."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import model_registry
from model_registry import Generation, get_client, off, on
from model_registry.events import EVENT_NAMES, CallEnd, Event, LimiterWait
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    for name in EVENT_NAMES:
        off(name)


def listen() -> list[Event]:
    """Every event from now on, in order."""
    seen: list[Event] = []
    for name in EVENT_NAMES:
        on(name, seen.append)
    return seen


@pytest.fixture
def chain(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """primary (rpm 30, one retry) -> second, each on a provider of its own at the loopback
    server: alias name -> model id."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    models = {"primary": f"primary-{tag}", "second": f"second-{tag}"}
    text = ""
    fallbacks = {"primary": '["second"]', "second": "[]"}
    for name, model in models.items():
        text += (
            f'[providers."{name}{tag}"]\nlitellm_prefix = "openai"\n'
            f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n'
            f'[aliases."{name}"]\nprovider = "{name}{tag}"\nmodel_id = "{model}"\n'
            f"fallbacks = {fallbacks[name]}\n"
            f'[aliases."{name}".defaults]\nnum_retries = {1 if name == "primary" else 0}\n\n'
        )
    text += '[limits."primary"]\nrpm = 30\n'
    path = tmp_path / "aliases.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    return models


#: A retry's own wait for the limits shorter than this is the machine's load, not a limit
#: (its Retry-After pause already outlasted the rpm interval of 2 s).
_LOAD_S = 0.5


def without_send_waits(seen: list[Event]) -> list[Any]:
    """`seen` less the `limiter_wait`s at an attempt's send (`limits.take_send`): how long
    the sends bucket holds a request depends on how long the machine took between the
    call's admission and its send, so a loaded machine may show one. Likewise a short one
    as a retry takes its limits again (waits of 1 ms or more are reported: a CI run under
    load showed one there, the bucket's token due before the retry's 2 s pause ended)."""
    kept: list[Event] = []
    for event in seen:
        if isinstance(event, LimiterWait) and kept and kept[-1].kind == "attempt":
            assert event.limit == "rpm"  # the chain's one declared limit
            continue
        if isinstance(event, LimiterWait) and kept and kept[-1].kind == "retry":
            assert event.limit == "rpm" and event.seconds < _LOAD_S, event
            continue
        kept.append(event)
    return kept


#: The events of a call on `chain`'s primary with its rpm bucket empty and a 429 with
#: Retry-After from it: a wait, two attempts, the fallback's attempt (`without_send_waits`).
LIMITED_RETRIED_THEN_FALLBACK = [
    "call_start",
    "limiter_wait",
    "attempt",
    "cooldown",
    "retry",
    "attempt",
    "cooldown",
    "fallback",
    "attempt",
    "call_end",
]


async def test_a_call_rate_limited_then_retried_after_a_429_then_answered_by_a_fallback(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    async with get_client("primary") as client:
        await client.generate("warm up")
        # the rpm bucket is empty now: each call waits ~2 s for a token, a margin that holds
        # when a loaded machine is slow between this call and the next
        await client.generate("warm up again")
        server.configure(chain["primary"], status=429, headers={"retry-after": "2"})
        seen = listen()
        generation = await client.generate("hello")
    assert generation.text == "echo: hello" and generation.name == "second"
    seen = without_send_waits(seen)
    assert [e.kind for e in seen] == LIMITED_RETRIED_THEN_FALLBACK
    assert len({e.call_id for e in seen}) == 1
    start, wait, first, cooldown, retry, second, _, fallback, third, end = seen
    assert (start.name, start.route) == ("primary", f"openai/{chain['primary']}")
    assert start.provider.startswith("primary")
    assert (wait.limit, wait.name) == ("rpm", "primary") and 0.001 <= wait.seconds < 5
    assert [(a.name, a.number) for a in (first, second, third)] == [
        ("primary", 1),
        ("primary", 2),
        ("second", 1),
    ]
    assert first.started <= second.started <= third.started
    assert cooldown.provider == start.provider and cooldown.retry_after == 2.0
    assert 0.5 < cooldown.seconds <= 2.0 and abs(cooldown.until - time.time() - 2) < 5
    assert (retry.attempt, retry.error, retry.status_code) == (1, "RateLimitError", 429)
    assert 2.0 <= retry.wait_s <= 2.5 and retry.retry_after == 2.0
    assert (fallback.from_name, fallback.to_name, fallback.reason) == (
        "primary",
        "second",
        "RateLimitError",
    )
    assert isinstance(end, CallEnd)
    assert (end.name, end.error, end.from_store, end.attempts) == ("second", None, False, 3)
    assert end.generation is generation and end.latency_s >= wait.seconds + retry.wait_s
    assert third.provider.startswith("second") and end.route == f"openai/{chain['second']}"
    assert json.loads(json.dumps(end.to_dict()))["generation"]["text"] == "echo: hello"


async def test_a_call_goes_to_the_fallback_first_while_the_primary_cools_down(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    # a Retry-After over the 60 s a retry waits: no retry, the fallback answers at once
    server.configure(chain["primary"], status=429, headers={"retry-after": "100"})
    async with get_client("primary") as client:
        await client.generate("first")
        seen = listen()
        generation = await client.generate("second")
    assert generation.name == "second"
    assert [e.kind for e in seen] == ["call_start", "fallback", "attempt", "call_end"]
    fallback = seen[1]
    assert (fallback.from_name, fallback.to_name, fallback.reason) == (  # type: ignore[attr-defined]
        "primary",
        "second",
        "cooldown",
    )


async def test_a_handler_that_raises_changes_nothing_and_is_logged_once(
    server: FakeOpenAIServer, chain: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("handler bug")

    on("call_start", broken)
    on("call_end", broken)
    ends = listen()
    with caplog.at_level(logging.ERROR, logger="model_registry"):
        async with get_client("second") as client:
            first = await client.generate("one")
            second = await client.generate("two")
    assert (first.text, second.text) == ("echo: one", "echo: two")
    logged = [r for r in caplog.records if "event handler" in r.getMessage()]
    assert len(logged) == 1 and "broken" in logged[0].getMessage()
    assert [e.kind for e in ends].count("call_end") == 2  # the other handlers still ran


async def test_a_coroutine_handler_that_raises_changes_nothing_and_is_logged_once(
    server: FakeOpenAIServer, chain: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    all_ran = anyio.Event()

    async def broken(event: Any) -> None:
        ran.append(event.kind)
        if len(ran) == 4:
            all_ran.set()
        raise RuntimeError("async handler bug")

    on("call_start", broken)
    on("call_end", broken)
    with caplog.at_level(logging.ERROR, logger="model_registry"):
        async with get_client("second") as client:
            first = await client.generate("one")
            second = await client.generate("two")
        with anyio.fail_after(10):
            await all_ran.wait()  # the handler runs after the calls, on the loop
    assert (first.text, second.text) == ("echo: one", "echo: two")
    logged = [r for r in caplog.records if "event handler" in r.getMessage()]
    assert len(logged) == 1 and "broken" in logged[0].getMessage()
    assert ran == ["call_start", "call_end", "call_start", "call_end"]


async def test_a_coroutine_handler_that_sleeps_does_not_delay_the_call(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    handled: list[str] = []
    both = anyio.Event()

    async def slow(event: Any) -> None:
        await anyio.sleep(3)
        handled.append(event.kind)
        if len(handled) == 2:
            both.set()

    on("call_start", slow)
    on("call_end", slow)
    async with get_client("second") as client:
        started = time.perf_counter()
        generation = await client.generate("quick")
        took = time.perf_counter() - started
    assert generation.text == "echo: quick" and took < 2.5  # not 2 x 3 s of handlers
    with anyio.fail_after(20):
        await both.wait()
    assert handled == ["call_start", "call_end"]


async def test_coroutine_handlers_that_fall_behind_are_dropped_and_counted(
    server: FakeOpenAIServer, chain: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_registry import _events

    monkeypatch.setattr(_events, "MAX_QUEUED", 2)
    before = model_registry.events.dropped()

    async def stuck(event: Any) -> None:
        await anyio.sleep(30)

    on("call_start", stuck)
    async with get_client("second") as client:
        await client.generate_many(["a", "b", "c", "d", "e"], concurrency=1)
    assert model_registry.events.dropped() - before >= 2


async def test_no_event_holds_a_key_given_by_env_alias_file_or_kwarg(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_key, file_key, kwarg_key = (f"sk-{where}-{uuid.uuid4().hex}" for where in "efk")
    monkeypatch.setenv("SECRET_ENV_KEY", env_key)
    model = f"keys-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "aliases.toml"
    path.write_text(
        f'[providers.keyed]\nlitellm_prefix = "openai"\napi_base = "{server.base_url}"\n'
        'api_key_env = "SECRET_ENV_KEY"\n\n'
        f'[aliases.by-env]\nprovider = "keyed"\nmodel_id = "{model}"\n'
        "[aliases.by-env.defaults]\nnum_retries = 0\n\n"
        f'[aliases.by-file]\nprovider = "keyed"\nmodel_id = "{model}"\n'
        f'[aliases.by-file.defaults]\nnum_retries = 0\napi_key = "{file_key}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    seen = listen()
    clients = [
        get_client("by-env"),
        get_client("by-file"),
        get_client("by-env", api_key=kwarg_key),
    ]
    for client in clients:  # the server wants its own key: each call fails with a 401
        async with client:
            with pytest.raises(model_registry.AuthenticationError):
                await client.generate("hi")
    async with get_client("by-file", api_key=SERVER_KEY) as working:
        await working.generate("hi")
    ends = [e for e in seen if isinstance(e, CallEnd)]
    assert [e.error for e in ends] == ["AuthenticationError"] * 3 + [None]
    text = json.dumps([e.to_dict() for e in seen], default=repr)
    for key in (env_key, file_key, kwarg_key, SERVER_KEY):
        assert key not in text


async def test_a_batch_has_its_events_and_a_rerun_reports_the_stored_answers(
    server: FakeOpenAIServer, chain: dict[str, str], tmp_path: Path
) -> None:
    seen = listen()
    db = tmp_path / "run.sqlite"
    async with get_client("second") as client:
        await client.generate_many(["a", "b", "c"], results_db=db)
        first = list(seen)
        seen.clear()
        again = await client.generate_many(["a", "b", "c"], results_db=db)
    kinds = [e.kind for e in first]
    assert kinds[0] == "batch_start" and kinds[-1] == "batch_end"
    assert sorted(kinds[1:-1]) == ["attempt"] * 3 + ["call_end"] * 3 + ["call_start"] * 3
    batch_id = first[0].call_id
    assert {e.batch_id for e in first if e.kind == "call_start"} == {batch_id}  # type: ignore[attr-defined]
    end = first[-1]
    assert (end.prompts, end.succeeded, end.failed, end.from_store) == (3, 3, 0, 0)  # type: ignore[attr-defined]
    assert [e.kind for e in seen] == ["batch_start", *["call_end"] * 3, "batch_end"]
    stored = [e for e in seen if isinstance(e, CallEnd)]
    assert all(e.from_store and e.name == "second" for e in stored)
    assert {e.generation.text for e in stored if e.generation} == {"echo: a", "echo: b", "echo: c"}
    assert all(isinstance(g, Generation) and g.from_store for g in again)
    assert seen[-1].from_store == 3  # type: ignore[attr-defined]


def test_an_unknown_event_name_is_refused_with_the_names() -> None:
    with pytest.raises(ValueError, match=r"on\('call_ended', \.\.\.\): unknown event \(did you"):
        on("call_ended", print)
    with pytest.raises(TypeError, match="must be callable"):
        on("call_end", "print")  # type: ignore[arg-type]
