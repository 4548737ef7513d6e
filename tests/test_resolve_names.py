"""Names that look like a slip: a provider in another case or misspelt, a hosted id under an
organisation's name, `vllm/`, bare ids of other providers, fine-tunes, and the typo guard's
hints. Organisations that publish weights are never taken for a provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model_registry import UnknownModelError, load_registry, resolve
from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry._model_list import model_list
from model_registry._name_rules import _near_miss
from model_registry._weight_orgs import WEIGHT_ORGS
from model_registry.providers import BUILTIN_PROVIDERS
from model_registry.resolve import STRICT_ENV_VAR, alias_warnings

PACKAGED = Path(__file__).parent.parent / "config" / "model_aliases.toml"


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(STRICT_ENV_VAR, raising=False)
    yield


# --- case -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fixed"),
    [
        ("GROQ/llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile"),
        ("OpenAI/gpt-4o", "openai/gpt-4o"),
        ("Anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
        ("Gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("OpenRouter/anthropic/claude-3.5-sonnet", "openrouter/anthropic/claude-3.5-sonnet"),
        ("Together_AI/meta-llama/Llama-3.3-70B", "together_ai/meta-llama/Llama-3.3-70B"),
    ],
)
def test_a_provider_in_another_case_is_refused_in_both_forms(name: str, fixed: str) -> None:
    head = name.partition("/")[0]
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert str(caught.value).splitlines()[0] == (
        f"unknown model {name!r}: {head!r} is not a known provider (ours or LiteLLM's); did "
        f"you mean {fixed!r}? (for local weights of a Hugging Face organisation {head!r}, "
        f"write 'local:{name}')"
    )
    assert caught.value.suggestions == (fixed,)
    colon = name.replace("/", ":", 1)
    with pytest.raises(UnknownModelError) as caught:
        resolve(colon)
    assert caught.value.suggestions == (fixed.replace("/", ":", 1),)
    assert resolve(f"local:{name}").kind == "local"


# --- near misses of a provider ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("gropq/llama-3.3-70b-versatile", "groq"),
        ("antropic/claude-sonnet-4-5", "anthropic"),
        ("olama/llama3.1:8b", "ollama"),
        ("togetherai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together_ai"),
        ("x-ai/grok-4.3", "xai"),
        ("open-router/anthropic/claude-3.5-sonnet", "openrouter"),
        ("open_ai/gpt-4o", "openai"),
        ("Deep-Seek/deepseek-chat", "deepseek"),
        ("perplexty/sonar", "perplexity"),
        ("mistrall/mistral-large-latest", "mistral"),
        ("fireworksai/accounts/fireworks/models/x", "fireworks_ai"),
    ],
)
def test_a_near_miss_of_a_provider_warns_naming_it_strict_refuses_and_local_silences(
    name: str, provider: str
) -> None:
    head, _, tail = name.partition("/")
    resolution = resolve(name)
    assert (resolution.kind, resolution.model_id) == ("local", name)
    assert resolution.warnings == (
        f"{name!r} resolves to local weights, but {head!r} looks like the provider "
        f"{provider!r}: for it write '{provider}/{tail}'; for local weights write "
        f"'local:{name}'",
    )
    with pytest.raises(UnknownModelError) as caught:
        resolve(name, strict=True)
    assert f"write 'local:{name}' for local weights, or strict=False" in str(caught.value)
    assert caught.value.suggestions == (f"{provider}/{tail}", f"local:{name}")
    assert resolve(f"local:{name}", strict=True).warnings == ()
    assert resolve(name, api_base="http://127.0.0.1:9/v1").warnings  # not the typo guard's


@pytest.mark.parametrize(
    "name",
    [
        "Qwen/Qwen3-4B-Instruct-2507",
        "microsoft/Phi-4-mini-instruct",
        "bigscience/bloom",  # one edit from nothing of four letters or more
        "org/model",
        "my-lab/my-model",
        "./models/my-finetune",
        "../weights/x",
        "/srv/models/llama",
        "local/Qwen/Qwen3-4B",  # our local provider's name, as before
        "lokal/Qwen/Qwen3-4B",  # near "local", which is no route
    ],
)
def test_other_organisations_and_paths_resolve_to_local_without_a_warning(name: str) -> None:
    resolution = resolve(name, strict=True)
    assert (resolution.kind, resolution.warnings) == ("local", ())


def test_the_allow_list_holds_50_organisations_none_a_provider_in_another_case() -> None:
    assert len(WEIGHT_ORGS) >= 50
    assert {"mistralai", "meta-llama", "Qwen", "google", "microsoft", "deepseek-ai"} <= WEIGHT_ORGS
    assert {"allenai", "fireworks-ai", "Groq"} <= WEIGHT_ORGS


@pytest.mark.parametrize("org", sorted(WEIGHT_ORGS - LITELLM_PROVIDERS - set(BUILTIN_PROVIDERS)))
def test_no_organisation_that_publishes_weights_warns_or_is_refused(org: str) -> None:
    # the committed provider list is the installed LiteLLM's (tests/test_litellm_data.py)
    resolution = resolve(f"{org}/Some-Model-7B-Instruct", strict=True)
    assert (resolution.kind, resolution.warnings) == ("local", ())


def test_without_the_allow_list_some_organisations_would_read_as_providers() -> None:
    providers = tuple(sorted(LITELLM_PROVIDERS))
    assert _near_miss("meta-llama", providers) == "meta_llama"
    assert _near_miss("fireworks-ai", providers) == "fireworks_ai"
    assert resolve("meta-llama/Llama-3.1-8B-Instruct", strict=True).warnings == ()
    assert resolve("Groq/Llama-3-Groq-8B-Tool-Use", strict=True).kind == "local"


def test_an_organisation_named_exactly_as_a_provider_stays_hosted() -> None:
    resolution = resolve("openai/gpt-oss-20b")
    assert (resolution.kind, resolution.route) == ("hosted", "openai/gpt-oss-20b")
    assert "write 'local:openai/gpt-oss-20b'" in resolution.warnings[0]


def test_an_embedding_provider_named_like_a_weights_organisation_says_how_to_go_local() -> None:
    # snowflake is a LiteLLM embedding provider; Snowflake publishes weights on the Hub
    resolution = resolve("snowflake/snowflake-arctic-embed-m")
    assert (resolution.kind, resolution.route) == ("hosted", "snowflake/snowflake-arctic-embed-m")
    assert "write 'local:snowflake/snowflake-arctic-embed-m'" in resolution.warnings[0]
    assert resolve("Snowflake/snowflake-arctic-embed-m", strict=True).kind == "local"


# --- hosted ids under an organisation's name --------------------------------------------


@pytest.mark.parametrize(
    ("name", "fixed"),
    [
        ("google/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("anthropic-ai/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
        ("openai-community/gpt-4o", "openai/gpt-4o"),
        ("xai-org/grok-4.3", "xai/grok-4.3"),
    ],
)
def test_a_hosted_id_under_an_organisation_warns_suggesting_the_hosted_spelling(
    name: str, fixed: str
) -> None:
    tail = name.partition("/")[2]
    resolution = resolve(name)
    assert resolution.kind == "local"
    hosted = fixed.partition("/")[0]
    assert resolution.warnings == (
        f"{name!r} resolves to local weights, but {tail!r} is a hosted model that LiteLLM "
        f"lists under {hosted}: for it write {fixed!r}; for local weights write 'local:{name}'",
    )
    with pytest.raises(UnknownModelError):
        resolve(name, strict=True)
    assert resolve(f"local:{name}", strict=True).warnings == ()


@pytest.mark.parametrize(
    "name",
    [
        "google/gemma-3-27b-it",  # LiteLLM lists it under gemini: open weights all the same
        "mistralai/Mistral-7B-Instruct-v0.3",
        "meta-llama/Llama-3.1-8B-Instruct",
        "unsloth/gpt-oss-20b",
    ],
)
def test_open_weight_repos_that_a_host_also_lists_do_not_warn(name: str) -> None:
    assert resolve(name, strict=True).warnings == ()


# --- vllm/ ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["vllm/Qwen/Qwen3-4B-Instruct-2507", "vllm:Qwen/Qwen3-4B-Instruct-2507"]
)
def test_vllm_names_our_local_engine(name: str) -> None:
    resolution = resolve(name, strict=True)
    assert (resolution.kind, resolution.model_id) == ("local", "Qwen/Qwen3-4B-Instruct-2507")
    assert resolution.warnings == ()


# --- bare ids of other providers --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("mistral-large-latest", "mistral"),
        ("codestral-latest", "mistral"),
        ("magistral-medium-latest", "mistral"),
        ("ministral-8b-latest", "mistral"),
        ("grok-4.3", "xai"),
        ("command-a-03-2025", "cohere"),
        ("Grok-4.3", "xai"),
    ],
)
def test_bare_ids_of_first_party_families_go_to_their_provider(name: str, provider: str) -> None:
    resolution = resolve(name)
    assert (resolution.provider, resolution.route) == (provider, f"{provider}/{name}")
    assert resolution.source.startswith("heuristic: ")


def test_a_bare_id_that_litellm_lists_under_one_provider_goes_there() -> None:
    models = model_list()
    assert models is not None and "perplexity" in models.providers_of("sonar")
    resolution = resolve("sonar", strict=True)
    assert (resolution.provider, resolution.route) == ("perplexity", "perplexity/sonar")
    assert resolution.source == "LiteLLM's model list: sonar -> perplexity"


def test_a_bare_id_listed_under_several_providers_is_refused_naming_them() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("qwen-max")
    assert str(caught.value).splitlines()[0] == (
        "unknown model 'qwen-max': LiteLLM's model list has 'qwen-max' under several "
        "providers (dashscope, qwen_ai_platform, qwencloud); name one, as in "
        "'dashscope:qwen-max'"
    )
    assert caught.value.suggestions == (
        "dashscope:qwen-max",
        "qwen_ai_platform:qwen-max",
        "qwencloud:qwen-max",
    )


def test_of_several_providers_the_one_litellm_keys_the_bare_id_under_wins() -> None:
    # jamba-1.5 is listed as ai21's "jamba-1.5" and vertex_ai's "vertex_ai/jamba-1.5":
    # LiteLLM itself sends the bare name to ai21
    models = model_list()
    assert models is not None and models.providers_of("jamba-1.5") >= {"ai21", "vertex_ai"}
    resolution = resolve("jamba-1.5", strict=True)
    assert (resolution.provider, resolution.route) == ("ai21", "ai21/jamba-1.5")
    assert resolution.source == "LiteLLM's model list: jamba-1.5 -> ai21"


def test_a_bare_id_nobody_lists_is_still_unknown() -> None:
    with pytest.raises(UnknownModelError, match="no alias, provider or naming rule"):
        resolve("kimi-k2-no-such-model")


# --- fine-tunes -------------------------------------------------------------------------

FINE_TUNE = "ft:gpt-4o-mini-2024-07-18:my-org::abc123"


@pytest.mark.parametrize("name", [f"openai:{FINE_TUNE}", f"openai/{FINE_TUNE}", FINE_TUNE])
def test_a_fine_tune_id_resolves_to_openai_without_a_warning(name: str) -> None:
    resolution = resolve(name, strict=True)
    assert (resolution.provider, resolution.route) == ("openai", f"openai/{FINE_TUNE}")
    assert resolution.warnings == ()


def test_a_fine_tune_of_no_openai_model_is_unknown() -> None:
    with pytest.raises(UnknownModelError, match="'ft:' names a fine-tune"):
        resolve("ft:llama-3:org::id")


# --- the typo guard's hints -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["anthropic/claude-sonet", "groq/no-such-model", "xai/grok-x", "gemini/gemini-9-flash"],
)
def test_no_local_hint_for_providers_that_publish_no_weights(name: str) -> None:
    (warning,) = resolve(name).warnings
    assert "local:" not in warning and "Hugging Face" not in warning


@pytest.mark.parametrize("name", ["openai/gpt-oss-20b", "mistral/mistral-large-latst"])
def test_the_local_hint_for_providers_named_like_a_weight_publisher(name: str) -> None:
    (warning,) = resolve(name).warnings
    assert f"for the Hugging Face model write 'local:{name}'" in warning


def test_a_suggestion_never_names_an_alias_pointing_to_the_id_warned_about(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases(
        """
        [aliases."claude-3-5-haiku"]
        provider = "anthropic"
        model_id = "claude-3-5-haiku-latest"
        """
    )
    (warning,) = resolve("claude-3-5-haiku-latest").warnings
    assert "claude-3-5-haiku'" not in warning.replace("'claude-3-5-haiku-latest'", "")
    (alias_warning,) = alias_warnings()
    assert alias_warning.startswith(
        "alias 'claude-3-5-haiku': 'anthropic:claude-3-5-haiku-latest' is not in LiteLLM's "
        "model list; did you mean 'anthropic:claude-haiku-4-5'"
    )
    assert "alias 'claude-3-5-haiku'" not in alias_warning.partition(":")[2]


# --- packaged aliases -------------------------------------------------------------------


def test_every_packaged_hosted_alias_names_an_id_in_litellm_s_list() -> None:
    models = model_list()
    assert models is not None
    registry = load_registry(PACKAGED, layered=False)
    hosted = [a for a in registry.aliases.values() if a.route is not None]
    assert len(hosted) >= 5
    for alias in hosted:
        spec = registry.providers[alias.provider]
        assert models.is_listed(spec.route_prefix, alias.model_id), alias
    assert alias_warnings(registry) == []


def test_alias_warnings_name_an_alias_whose_id_the_list_does_not_know(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases('[aliases."old-haiku"]\nprovider = "anthropic"\nmodel_id = "claude-3-5-haik"\n')
    found = alias_warnings()
    assert len(found) == 1 and found[0].startswith(
        "alias 'old-haiku': 'anthropic:claude-3-5-haik' is not in LiteLLM's model list"
    )
    # a warning of list and validate, never a refusal; resolving the alias reads no model list
    assert resolve("old-haiku", strict=True).warnings == ()


def test_alias_warnings_name_a_hosted_alias_with_a_local_only_default(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases(
        '[aliases."vision"]\nprovider = "openai"\nmodel_id = "gpt-4o-mini"\n'
        "defaults = { allow_image_downloads = true, temperature = 0.2 }\n"
    )
    found = alias_warnings()
    assert len(found) == 1
    assert found[0].startswith("'allow_image_downloads' in the defaults of alias 'vision' (")
    assert "applies to local models only" in found[0]


def test_an_alias_with_its_own_api_base_is_not_checked_against_litellm_s_list(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases(
        '[aliases."on-my-server"]\nprovider = "openai"\nmodel_id = "my-served-model"\n'
        '[aliases."on-my-server".defaults]\napi_base = "http://127.0.0.1:9/v1"\n'
    )
    assert alias_warnings() == []
