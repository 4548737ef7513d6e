"""The typo guard knows embedding model ids from LiteLLM's list: listed ones resolve without
a warning, a misspelt one warns suggesting the listed id, and strict mode refuses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from model_registry import UnknownModelError, resolve
from model_registry._model_list import model_list
from model_registry.resolve import STRICT_ENV_VAR


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(STRICT_ENV_VAR, raising=False)
    yield


@pytest.mark.parametrize(
    "name",
    [
        "openai:text-embedding-3-small",
        "openai/text-embedding-3-large",
        "gemini:gemini-embedding-001",
        "cohere:embed-english-v3.0",
        "mistral:mistral-embed",
    ],
)
def test_listed_embedding_ids_resolve_without_a_warning(name: str) -> None:
    assert resolve(name).warnings == ()
    assert resolve(name, strict=True).warnings == ()


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("openai:text-embeding-3-small", "openai:text-embedding-3-small"),
        ("openai/text-embedding-3-smal", "openai/text-embedding-3-small"),
        ("cohere:embed-englsh-v3.0", "cohere:embed-english-v3.0"),
        ("mistral:mistral-embd", "mistral:mistral-embed"),
        ("gemini:gemini-embeding-001", "gemini:gemini-embedding-001"),
    ],
)
def test_a_misspelt_embedding_id_warns_suggesting_the_listed_id(name: str, meant: str) -> None:
    resolution = resolve(name)
    assert len(resolution.warnings) == 1
    assert resolution.warnings[0].startswith(repr(name))
    assert f"is not in LiteLLM's model list; did you mean {meant!r}" in resolution.warnings[0]
    with pytest.raises(UnknownModelError) as caught:
        resolve(name, strict=True)
    assert meant in caught.value.suggestions
    assert "strict mode refuses ids LiteLLM does not list" in str(caught.value)


def test_an_embedding_id_under_another_provider_suggests_that_provider_s_embedding_ids() -> None:
    # LiteLLM lists text-embedding-004 under vertex_ai only
    warning = resolve("gemini:text-embedding-004").warnings[0]
    assert "did you mean 'gemini:gemini-embedding-" in warning


def test_image_and_audio_ids_are_still_never_suggested() -> None:
    models = model_list()
    assert models is not None
    assert models.is_listed("openai", "gpt-image-2") and models.is_listed(
        "openai", "gpt-4o-mini-tts"
    )
    assert "gpt-image-2" not in models.closest("openai", "gpt-imag-2", 5)
    assert "gpt-4o-mini-tts" not in models.closest("openai", "gpt-4o-mini-ts", 5)


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("text-embedding-3-small", "openai"),
        ("text-embedding-3-large", "openai"),
        ("text-embedding-ada-002", "openai"),
        ("embed-english-v3.0", "cohere"),
        ("text-embedding-004", "vertex_ai"),
    ],
)
def test_a_bare_embedding_id_resolves_to_the_provider_litellm_routes_it_to(
    name: str, provider: str
) -> None:
    # text-embedding-3-small is listed under openai and github_copilot too: LiteLLM's list
    # keys it bare under openai, LiteLLM's own route for the bare name
    resolution = resolve(name, strict=True)
    assert (resolution.provider, resolution.model_id) == (provider, name)
    assert resolution.route == f"{provider}/{name}"
    assert resolution.source == f"LiteLLM's model list: {name} -> {provider}"
    assert resolution.warnings == ()


def test_a_bare_id_listed_under_several_providers_none_keyed_bare_is_still_refused() -> None:
    with pytest.raises(UnknownModelError, match="under several providers"):
        resolve("qwen-max")
