"""Keys: missing ones fail early and say what to set; present ones never show up anywhere."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_registry import AuthenticationError, MissingCredentialsError, get_client, resolve
from tests.fixtures.openai_server import FakeOpenAIServer

SENTINEL_ENV = "sk-SENTINEL-env-6f1c2a9b"
SENTINEL_KWARG = "sk-SENTINEL-kwarg-0d7e4b13"


@pytest.mark.parametrize(
    ("name", "env_var"),
    [
        ("openai:gpt-4.1", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
        ("deepseek-chat", "DEEPSEEK_API_KEY"),
    ],
)
@pytest.mark.usefixtures("no_provider_keys")
def test_missing_key_raises_from_get_client_naming_the_variable(name: str, env_var: str) -> None:
    provider = resolve(name).provider
    with pytest.raises(MissingCredentialsError) as info:
        get_client(name)
    assert str(info.value) == (
        f"no API key for provider '{provider}': set {env_var} or pass api_key=..."
    )
    assert (info.value.provider, info.value.env_var) == (provider, env_var)


@pytest.mark.usefixtures("no_provider_keys")
def test_an_api_key_kwarg_or_alias_default_counts_as_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_client("openai:gpt-4.1", api_key="sk-x").provider == "openai"
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases."keyed"]\nprovider = "anthropic"\nmodel_id = "claude-sonnet-4-5"\n'
        '[aliases."keyed".defaults]\napi_key = "sk-from-alias"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    assert get_client("keyed").provider == "anthropic"


@pytest.mark.usefixtures("no_provider_keys")
def test_declared_provider_with_a_key_variable_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[providers.corp]\napi_base = "http://127.0.0.1:9/v1"\napi_key_env = "CORP_KEY"\n'
        '[providers.open]\napi_base = "http://127.0.0.1:9/v1"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    monkeypatch.delenv("CORP_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="set CORP_KEY"):
        get_client("corp:m")
    assert get_client("open:m").provider == "open"  # a keyless OpenAI-compatible server


@pytest.mark.usefixtures("no_provider_keys")
async def test_a_builtin_provider_at_your_own_api_base_needs_no_key(
    server: FakeOpenAIServer,
) -> None:
    with pytest.raises(MissingCredentialsError):
        get_client("openai:own")  # no key, no api_base: OpenAI's API needs the key
    async with get_client("openai:own", api_base=server.base_url) as client:
        with pytest.raises(AuthenticationError):  # this server wants a key: the call gets 401
            await client.generate("hi")
    assert server.stats("own").headers[-1]["authorization"] == "Bearer no-key"


async def test_sentinel_key_never_appears_in_reprs_logs_or_errors(
    litellm: ModuleType,  # imported first, so its loggers are among those set to DEBUG
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_ENV)
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in logging.root.manager.loggerDict),
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    server.configure(
        "sentinel", status=401, message=f"Incorrect API key provided: {SENTINEL_KWARG}"
    )
    seen: list[str] = []
    try:
        for kwargs in ({}, {"api_key": SENTINEL_KWARG}):
            client = get_client("openai:sentinel", api_base=server.base_url, **kwargs)
            seen += [repr(client), str(client), repr(client.resolution), str(client.resolution)]
            await client.start()
            with pytest.raises(AuthenticationError) as info:
                await client.generate("hi", num_retries=0)
            seen += [str(info.value), repr(info.value), info.value.message]
            stream = client.stream("hi", num_retries=0)
            with pytest.raises(AuthenticationError) as info:
                async for _ in stream:
                    pass
            seen += [str(info.value), repr(info.value)]
            await client.aclose()
            seen.append(repr(client))
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)
    out, err = capfd.readouterr()
    seen += [caplog.text, out, err]
    assert {"LiteLLM", "openai._base_client"} <= {r.name for r in caplog.records}
    for text in seen:
        assert SENTINEL_ENV not in text
        assert SENTINEL_KWARG not in text
    sent = [h["authorization"] for h in server.stats("sentinel").headers]
    # OPENAI_API_KEY goes to OpenAI only: this server gets it only when passed as api_key
    assert sent == ["Bearer no-key"] * 2 + [f"Bearer {SENTINEL_KWARG}"] * 2


async def _authorization_sent(client: Any, model: str, server: FakeOpenAIServer) -> list[str]:
    """The Authorization headers the server got for a generate and a stream of `client`."""
    for call in (client.generate("hi", num_retries=0), _drain(client.stream("hi"))):
        with contextlib.suppress(AuthenticationError):
            await call
    await client.aclose()
    return [h["authorization"] for h in server.stats(model).headers]


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_the_openai_key_goes_to_another_api_base_only_when_passed_as_api_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_ENV)
    at_server = get_client("openai:elsewhere", api_base=server.base_url)
    assert await _authorization_sent(at_server, "elsewhere", server) == ["Bearer no-key"] * 2

    # an api_base given per call does not take the key there either
    held = get_client("openai:per-call")
    for call in (
        held.generate("hi", api_base=server.base_url, num_retries=0),
        _drain(held.stream("hi", api_base=server.base_url)),
    ):
        with contextlib.suppress(AuthenticationError):
            await call
    await held.aclose()
    assert [h["authorization"] for h in server.stats("per-call").headers] == ["Bearer no-key"] * 2

    given = get_client("openai:given", api_base=server.base_url, api_key=SENTINEL_ENV)
    assert await _authorization_sent(given, "given", server) == [f"Bearer {SENTINEL_ENV}"] * 2

    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases."mine"]\nprovider = "openai"\nmodel_id = "from-alias"\n'
        f'[aliases."mine".defaults]\napi_base = "{server.base_url}"\n'
        '[aliases."mine-keyed"]\nprovider = "openai"\nmodel_id = "from-alias-keyed"\n'
        f'[aliases."mine-keyed".defaults]\napi_base = "{server.base_url}"\n'
        f'api_key = "{SENTINEL_KWARG}"\n'
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    from_alias = await _authorization_sent(get_client("mine"), "from-alias", server)
    assert from_alias == ["Bearer no-key"] * 2
    keyed = await _authorization_sent(get_client("mine-keyed"), "from-alias-keyed", server)
    assert keyed == [f"Bearer {SENTINEL_KWARG}"] * 2


# --- LiteLLM's own providers: their variables checked at start ------------------------


async def test_a_litellm_provider_without_its_key_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    client = get_client("groq/llama-3.3-70b-versatile")  # resolving needs no key
    with pytest.raises(MissingCredentialsError) as info:
        await client
    assert str(info.value) == (
        "no credentials for provider 'groq': set GROQ_API_KEY (or pass api_key=...)"
    )
    assert (info.value.env_var, info.value.env_vars) == ("GROQ_API_KEY", ("GROQ_API_KEY",))
    await client.aclose()


async def test_a_litellm_provider_with_its_key_or_an_api_key_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-not-real")
    async with get_client("groq/llama-3.3-70b-versatile") as client:
        assert client.resolution.provider == "groq"
    monkeypatch.delenv("GROQ_API_KEY")
    async with get_client("groq/llama-3.3-70b-versatile", api_key="gsk-kwarg") as client:
        assert client.resolution.provider == "groq"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ollama/llama3", {}),
        ("ollama_chat/llama3", {}),
        ("hosted_vllm/my-model", {"api_base": "http://127.0.0.1:9/v1"}),
    ],
)
async def test_keyless_litellm_providers_start_without_credentials(
    name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OLLAMA_API_BASE", "HOSTED_VLLM_API_BASE", "HOSTED_VLLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    async with get_client(name, **kwargs) as client:
        assert not client.closed


def test_without_litellm_the_error_says_how_to_install_it() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['litellm'] = None\n"
        "from model_registry.clients._litellm_import import import_litellm\n"
        "try:\n    import_litellm()\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == (
        "BackendNotInstalledError hosted models need LiteLLM, which is not installed: LiteLLM "
        "comes with model-registry: 'pip install model-registry-llm' (in a checkout: 'uv sync', "
        "with --inexact to keep a vLLM installed by pip)"
    )
