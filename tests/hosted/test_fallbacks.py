"""Fallbacks (issue 20) on the loopback server: a primary out of capacity hands the call to
the next name, errors a fallback cannot fix are raised at once, and when every name fails
the last error names them all, in order."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anyio
import pytest

from model_registry import (
    BadRequestError,
    Generation,
    RateLimitError,
    ResultStore,
    ServiceUnavailableError,
    get_client,
)
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY


@pytest.fixture
def chain(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Aliases primary -> second -> third at the loopback server: alias name -> model id."""
    tag = uuid.uuid4().hex[:8]
    models = {name: f"{name}-{tag}" for name in ("primary", "second", "third")}
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    text = (
        f'[providers."loop{tag}"]\nlitellm_prefix = "openai"\n'
        f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n'
    )
    fallbacks = {"primary": '["second"]', "second": '["third"]', "third": "[]"}
    for name, model in models.items():
        text += (
            f'[aliases."{name}"]\nprovider = "loop{tag}"\nmodel_id = "{model}"\n'
            f"fallbacks = {fallbacks[name]}\n"
            f'[aliases."{name}".defaults]\nnum_retries = 0\nmax_retries = 0\n\n'
        )
    path = tmp_path / "aliases.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    return models


def requests(server: FakeOpenAIServer, model: str) -> int:
    return server.stats(model).requests


async def test_a_primary_answering_503_hands_the_call_to_the_next_name(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["primary"], status=503)
    async with get_client("primary") as client:
        generation = await client.generate("hello")
        streamed = client.stream("hello again")
        pieces = [piece async for piece in streamed]
    assert (generation.text, generation.name, generation.model) == (
        "echo: hello",
        "second",
        chain["second"],
    )
    assert generation.provider.startswith("loop")
    assert "".join(pieces) == "echo: hello again"
    assert isinstance(streamed.result, Generation) and streamed.result.name == "second"
    assert requests(server, chain["primary"]) == 2
    assert requests(server, chain["second"]) == 2
    assert requests(server, chain["third"]) == 0


async def test_a_primary_answering_400_raises_at_once_without_a_fallback(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["primary"], status=400, message="bad request here")
    async with get_client("primary") as client:
        with pytest.raises(BadRequestError, match="bad request here"):
            await client.generate("hello")
    assert requests(server, chain["second"]) == 0


async def test_when_every_name_fails_the_last_error_names_every_name_tried_in_order(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["primary"], status=503)
    server.configure(chain["second"], status=429)
    server.configure(chain["third"], status=503, message="third is down")
    async with get_client("primary") as client:
        with pytest.raises(ServiceUnavailableError, match="third is down") as caught:
            await client.generate("hello")
    assert caught.value.__notes__ == [
        "every name failed; tried in order: 'primary' (ServiceUnavailableError), "
        "'second' (RateLimitError), 'third' (ServiceUnavailableError)"
    ]
    assert caught.value.model == chain["third"]


async def test_each_prompt_of_a_batch_falls_back_on_its_own_and_the_store_records_who_answered(
    server: FakeOpenAIServer, chain: dict[str, str], tmp_path: Path
) -> None:
    server.configure(chain["primary"], status=503, times=3)
    db = tmp_path / "run.sqlite"
    prompts = [f"q{i}" for i in range(10)]
    async with get_client("primary") as client:
        results = await client.generate_many(prompts, concurrency=1, results_db=db)
        again = await client.generate_many(prompts, concurrency=1, results_db=db)
    assert [r.name for r in results] == ["second"] * 3 + ["primary"] * 7
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    # the store key is the primary's request: the rerun finds every prompt, whoever answered
    assert all(r.from_store for r in again)
    assert [r.name for r in again] == [r.name for r in results]
    assert requests(server, chain["primary"]) + requests(server, chain["second"]) == 13
    with ResultStore(db) as store:
        assert store.summary().results == 10


async def test_fallbacks_given_in_code_replace_the_aliases_and_take_the_call_kwargs(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["primary"], status=429)
    other = f"code-{uuid.uuid4().hex[:8]}"
    fallback = f"openai:{other}"
    async with get_client(
        "primary", fallbacks=[fallback], api_base=server.base_url, api_key=SERVER_KEY
    ) as client:
        generation = await client.generate("hi", temperature=0.25)
    assert (generation.name, generation.model) == (fallback, other)
    assert server.stats(other).bodies[-1]["temperature"] == 0.25
    assert requests(server, chain["second"]) == 0


async def test_a_fallback_client_starts_only_when_needed(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    async with get_client("primary") as client:
        # the chain goes on through each fallback's own fallbacks
        assert client.fallbacks == ("second", "third")  # type: ignore[attr-defined]
        await client.generate("hello")
        assert client._clients[1:] == [None, None]  # type: ignore[attr-defined]
        server.configure(chain["primary"], status=503)
        await client.generate("hello")
        assert client._clients[1] is not None  # type: ignore[attr-defined]
        assert client._clients[2] is None  # type: ignore[attr-defined]
    assert client.closed


async def test_a_rate_limited_primary_without_fallbacks_raises_its_own_error(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["third"], status=429)
    async with get_client("third") as client:
        with pytest.raises(RateLimitError) as caught:
            await client.generate("hello")
    assert not getattr(caught.value, "__notes__", None)


async def test_each_name_gets_a_fresh_timeout(
    server: FakeOpenAIServer, chain: dict[str, str]
) -> None:
    server.configure(chain["primary"], delay=5.0)
    server.configure(chain["second"], delay=0.6)
    async with get_client("primary", timeout=1.0) as client:
        generation = await client.generate("slow primary")
    # the primary used its whole second; the second name had a second of its own
    assert generation.name == "second"


async def test_a_primary_cooling_down_is_tried_last_so_the_run_moves_on_at_once(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Retry-After pauses the primary's provider; until it ends, calls go straight to the
    fallback (another provider) instead of each waiting the pause out; then back."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    text = ""
    for name in ("first", "other"):
        text += (
            f'[providers."{name}{tag}"]\nlitellm_prefix = "openai"\n'
            f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n'
            f'[aliases."{name}-{tag}"]\nprovider = "{name}{tag}"\nmodel_id = "{name}-{tag}"\n'
            + (f'fallbacks = ["other-{tag}"]\n' if name == "first" else "")
            + f'[aliases."{name}-{tag}".defaults]\nnum_retries = 0\n\n'
        )
    (tmp_path / "aliases.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(tmp_path / "aliases.toml"))
    server.configure(f"first-{tag}", status=429, headers={"Retry-After": "3"}, times=1)
    async with get_client(f"first-{tag}") as client:
        assert (await client.generate("one")).name == f"other-{tag}"
        started = time.monotonic()
        assert (await client.generate("two")).name == f"other-{tag}"
        assert time.monotonic() - started < 1.0  # not the 3 s pause
        assert requests(server, f"first-{tag}") == 1
        assert client.cooldown_remaining() == 0.0  # some name of the chain is ready
        await anyio.sleep(3.1)
        assert (await client.generate("three")).name == f"first-{tag}"
