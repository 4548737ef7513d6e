"""Options only the local engine reads, given to a hosted name: refused before any request,
naming the option, the model and that it applies to local models only."""

from __future__ import annotations

from pathlib import Path

import pytest
import respx

from model_registry import InvalidParameterError, get_client
from model_registry._litellm_providers import LITELLM_PARAMS

pytestmark = pytest.mark.usefixtures("provider_keys")

GIVEN = {
    "allow_image_downloads": True,
    "tool_call_parser": "hermes",
    "reasoning_parser": "qwen3",
    "runner": "pooling",
    "model_revision": "v1",
    "raw": True,
    "max_model_len": 4096,
}


def _says_local_only(error: pytest.ExceptionInfo[InvalidParameterError], key: str) -> None:
    message = str(error.value)
    assert f"'{key}' in " in message and "'openai:gpt-4o-mini'" in message
    assert "applies to local models only" in message and "remove it" in message


@pytest.mark.parametrize(("key", "value"), GIVEN.items())
async def test_a_call_kwarg_is_refused_before_any_request(
    respx_mock: respx.MockRouter, key: str, value: object
) -> None:
    # no route: a request sent would fail as unmocked, not as InvalidParameterError
    async with get_client("openai:gpt-4o-mini") as client:
        with pytest.raises(InvalidParameterError) as caught:
            await client.generate("hi", **{key: value})
        with pytest.raises(InvalidParameterError):
            await client.stream("hi", **{key: value}).__anext__()
    assert not respx_mock.calls
    _says_local_only(caught, key)
    assert "a call to 'openai:gpt-4o-mini'" in str(caught.value)


@pytest.mark.parametrize("key", ["allow_image_downloads", "reasoning_parser", "runner"])
def test_get_client_refuses_one(key: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        get_client("openai:gpt-4o-mini", **{key: GIVEN[key]})
    _says_local_only(caught, key)
    assert "get_client('openai:gpt-4o-mini')" in str(caught.value)


async def test_an_embedding_call_refuses_one(respx_mock: respx.MockRouter) -> None:
    async with get_client("openai:text-embedding-3-small") as client:
        with pytest.raises(InvalidParameterError, match=r"'runner' in .*local models only"):
            await client.embed(["a text"], runner="pooling")
    assert not respx_mock.calls


def test_a_hosted_alias_with_one_in_its_defaults_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases.vision]\nprovider = "openai"\nmodel_id = "gpt-4o-mini"\n'
        "defaults = { allow_image_downloads = true }\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    with pytest.raises(InvalidParameterError, match="'allow_image_downloads' in get_client"):
        get_client("vision")


def test_the_table_names_no_parameter_litellm_or_our_hosted_client_takes() -> None:
    from model_registry._options import LOCAL_ONLY, OWN_KWARGS

    assert not LOCAL_ONLY.keys() & LITELLM_PARAMS
    assert not LOCAL_ONLY.keys() & OWN_KWARGS.keys()
