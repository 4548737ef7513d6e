"""No exception the hosted client raises carries a key: not in its message, its chain, its
traceback text or a logged traceback, wherever the key came from."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from model_registry import (
    AuthenticationError,
    InvalidParameterError,
    ModelRegistryError,
    get_client,
)
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


# --- a kwarg that cannot be sent as JSON: its key and type, never its value -----------------

SECRET = "sk-SENTINEL-param-7f3c9e"
UNSENDABLE = [
    pytest.param(
        {"extra_headers": {"Authorization": f"Bearer {SECRET}", "X-When": date(2024, 1, 1)}},
        "extra_headers['X-When'] is of type date",
        id="header-date",
    ),
    pytest.param({"api_key": SECRET.encode()}, "api_key is of type bytes", id="key-bytes"),
    pytest.param(
        {"extra_body": {"api_key": SECRET, "tags": {1, 2}}},
        "extra_body['tags'] is of type set",
        id="body-set",
    ),
]
SENDABLE = (
    ", which cannot be sent as JSON: pass strings, numbers, true/false, lists and dicts (a "
    "date as its ISO string, e.g. '1979-05-27')"
)


@pytest.mark.parametrize(("kwargs", "what"), UNSENDABLE)
def test_an_unsendable_kwarg_of_get_client_is_named_by_key_and_type_only(
    kwargs: dict[str, Any], what: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        get_client("openai:gpt-4.1", **kwargs)
    assert str(info.value) == f"{what} in get_client('openai:gpt-4.1'){SENDABLE}"
    assert SECRET not in _everything_about(info.value, caplog)


@pytest.mark.parametrize(("kwargs", "what"), UNSENDABLE)
async def test_an_unsendable_kwarg_of_a_call_is_named_by_key_and_type_only_and_so_stored(
    server: FakeOpenAIServer,
    kwargs: dict[str, Any],
    what: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = f"{what} in a call to 'openai:gpt-4.1'{SENDABLE}"
    db = tmp_path / "run.sqlite"
    async with get_client("openai:gpt-4.1", api_base=server.base_url, api_key=SERVER_KEY) as c:
        with pytest.raises(InvalidParameterError) as info:
            await c.generate("hi", **kwargs)
        results = await c.generate_many(["hi"], results_db=db, return_exceptions=True, **kwargs)
    assert str(info.value) == expected
    assert SECRET not in _everything_about(info.value, caplog)
    assert [str(r) for r in results] == [expected]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT error_message FROM results").fetchall()
    assert stored == [(expected,)]
    assert SECRET.encode() not in db.read_bytes()
