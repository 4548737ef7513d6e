"""No exception the hosted client raises carries a key: not in its message, its chain, its
traceback text or a logged traceback, wherever the key came from."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from model_registry import AuthenticationError, ModelRegistryError, get_client
from model_registry.clients.base import BaseClient
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

ENV_KEY = "sk-SENTINEL-openai-env-5a1e"


def _everything_about(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """Every text a user could see of `exc`: str, repr, attributes, the whole chain
    (cause and context), the formatted traceback, and a logged traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        texts += [str(current), repr(current), repr(vars(current))]
        texts += [str(note) for note in getattr(current, "__notes__", ())]
        current = current.__cause__ or current.__context__
    with caplog.at_level(logging.ERROR, logger="secrets-test"):
        try:
            raise exc
        except ModelRegistryError:
            logging.getLogger("secrets-test").exception("the call failed")
    texts.append(caplog.text)
    return "\n".join(texts)


async def _failures(client: BaseClient) -> list[BaseException]:
    """The errors of one generate and one stream, each answered with a 401."""
    failures: list[BaseException] = []
    with pytest.raises(AuthenticationError) as info:
        await client.generate("hi", num_retries=0)
    failures.append(info.value)
    with pytest.raises(AuthenticationError) as info:
        async for _ in client.stream("hi", num_retries=0):
            pass
    failures.append(info.value)
    await client.aclose()
    return failures


def _echoing_401(server: FakeOpenAIServer, model: str) -> None:
    server.configure(model, status=401, message=f"Incorrect API key provided: {SERVER_KEY}.")


def _from_kwarg(server: FakeOpenAIServer, **_: Any) -> BaseClient:
    _echoing_401(server, "kwarg-key")
    return get_client("openai:kwarg-key", api_base=server.base_url, api_key=SERVER_KEY)


def _from_declared_provider_env(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> BaseClient:
    _echoing_401(server, "declared-key")
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        f'[providers.corp]\napi_base = "{server.base_url}"\napi_key_env = "CORP_KEY"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    monkeypatch.setenv("CORP_KEY", SERVER_KEY)
    return get_client("corp:declared-key")


def _from_alias_file(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> BaseClient:
    _echoing_401(server, "alias-key")
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases."keyed"]\nprovider = "openai"\nmodel_id = "alias-key"\n'
        f'[aliases."keyed".defaults]\napi_base = "{server.base_url}"\napi_key = "{SERVER_KEY}"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    return get_client("keyed")


@pytest.mark.parametrize(
    "make_client", [_from_kwarg, _from_declared_provider_env, _from_alias_file]
)
async def test_a_key_echoed_by_the_server_is_nowhere_in_the_error(
    server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    make_client: Callable[..., BaseClient],
) -> None:
    client = make_client(server, tmp_path=tmp_path, monkeypatch=monkeypatch)
    for exc in await _failures(client):
        text = _everything_about(exc, caplog)
        assert SERVER_KEY not in text
        assert "Incorrect API key provided: ***" in text
        assert exc.cause_type == "litellm.AuthenticationError"  # type: ignore[attr-defined]
        assert exc.__cause__ is None and exc.__suppress_context__


async def test_the_environment_key_echoed_by_the_provider_is_nowhere_in_the_error(
    respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    body = {
        "error": {
            "message": f"Incorrect API key provided: {ENV_KEY}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    route = respx_mock.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(401, json=body)
    )
    for exc in await _failures(get_client("openai:gpt-4.1")):
        text = _everything_about(exc, caplog)
        assert ENV_KEY not in text
        assert "Incorrect API key provided: ***" in text
    assert route.calls.last.request.headers["authorization"] == f"Bearer {ENV_KEY}"
