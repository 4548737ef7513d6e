"""Fixtures of the hosted suite: one real OpenAI-compatible server per session, respx at the
providers' real URLs, and provider keys that are obviously fake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import respx

from model_registry.clients.litellm import LiteLLMClient, _litellm, close_litellm_pool
from tests.fixtures.openai_server import FakeOpenAIServer, openai_server_fixture

SERVER_KEY = "sk-test-server-key"

PROVIDER_KEYS = {
    "OPENAI_API_KEY": "sk-openai-test-key",
    "ANTHROPIC_API_KEY": "sk-ant-test-key",
    "GEMINI_API_KEY": "gemini-test-key",
    "DEEPSEEK_API_KEY": "sk-deepseek-test-key",
}

openai_server = openai_server_fixture(api_key=SERVER_KEY)


@pytest.fixture
def server(openai_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The session's server with no rules and zero counts."""
    openai_server.reset()
    yield openai_server


@pytest.fixture
def provider(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A provider of its own at the loopback server (a fresh limiter and cooldown), in an
    alias file that `declare` may extend."""
    name = f"own{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LOOPBACK_KEY", SERVER_KEY)
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(tmp_path / "aliases.toml"))
    declare(tmp_path, server, name)
    return name


def declare(tmp_path: Path, server: FakeOpenAIServer, provider: str, extra: str = "") -> None:
    """Write `provider`'s alias file (from the `provider` fixture), `extra` TOML after it."""
    (tmp_path / "aliases.toml").write_text(
        f'[providers."{provider}"]\nlitellm_prefix = "openai"\n'
        f'api_base = "{server.base_url}"\napi_key_env = "LOOPBACK_KEY"\n\n{extra}',
        encoding="utf-8",
    )


def model_name() -> str:
    """A model name of its own (the server keeps rules and counts per name)."""
    return f"m-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every built-in provider's key variable set to a fake value."""
    for var, value in PROVIDER_KEYS.items():
        monkeypatch.setenv(var, value)
    return PROVIDER_KEYS


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No built-in provider's key variable set."""
    for var in PROVIDER_KEYS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def litellm() -> ModuleType:
    """LiteLLM, imported the way the client imports it."""
    return _litellm()


@pytest.fixture
async def respx_mock(litellm: ModuleType) -> AsyncIterator[respx.MockRouter]:
    """respx at the real provider URLs; LiteLLM's aiohttp transport is off so httpx is used."""
    await close_litellm_pool()
    litellm.disable_aiohttp_transport = True
    try:
        with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
            yield router
    finally:
        litellm.disable_aiohttp_transport = False
        await close_litellm_pool()


@pytest.fixture(autouse=True)
async def _no_client_left_open() -> AsyncIterator[None]:
    """Clients a test left open (one-liners) are closed, so LiteLLM's pool starts empty."""
    yield
    still_open = list(LiteLLMClient._open_clients)
    for client in still_open:
        await client.aclose()
