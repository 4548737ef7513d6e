"""Every LiteLLM provider by name, the one prefix default, the typo guard and the case rule.

Everything here is answered from data committed with us or shipped inside LiteLLM's
package (its provider list, its model list): LiteLLM itself is never imported for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model_registry import (
    AliasConfigError,
    ProviderSpec,
    UnknownModelError,
    load_registry,
    register_provider,
    resolve,
    validate_files,
)
from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry.resolve import STRICT_ENV_VAR


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(STRICT_ENV_VAR, raising=False)
    yield


# (provider, model id): each is written both as "provider:model_id" and "provider/model_id"
LITELLM_NAMES = [
    ("groq", "llama3-70b-8192"),
    ("ollama", "llama3.1:8b"),  # ":" inside the id passes unchanged
    ("azure", "my-deployment"),
    ("mistral", "mistral-large-latest"),
    ("hosted_vllm", "my-model"),
    ("openrouter", "anthropic/claude-3.5-sonnet"),  # two slashes
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("xai", "grok-4.3"),
    ("fireworks_ai", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
    ("cerebras", "llama3.1-8b"),
    ("deepinfra", "meta-llama/Meta-Llama-3.1-8B-Instruct"),
    ("vertex_ai", "gemini-2.5-pro"),
    ("huggingface", "meta-llama/Llama-3.1-8B-Instruct"),
    ("perplexity", "sonar"),
    ("voyage", "voyage-3"),  # embedding-only providers route as written too
    ("jina_ai", "jina-embeddings-v3"),
]


@pytest.mark.parametrize(("provider", "model_id"), LITELLM_NAMES)
@pytest.mark.parametrize("separator", [":", "/"])
def test_any_litellm_provider_resolves_by_name_in_both_forms_to_its_route_as_written(
    provider: str, model_id: str, separator: str
) -> None:
    resolution = resolve(f"{provider}{separator}{model_id}")
    assert (resolution.provider, resolution.kind, resolution.model_id) == (
        provider,
        "hosted",
        model_id,
    )
    assert resolution.route == f"{provider}/{model_id}"
    assert resolution.source == (
        "explicit provider:model" if separator == ":" else f"LiteLLM route: {provider}/..."
    )
    # LiteLLM reads the provider's own variables: no api_key_env of ours
    assert (resolution.spec.litellm_prefix, resolution.spec.api_key_env) == (provider, None)


@pytest.mark.parametrize("provider", sorted(LITELLM_PROVIDERS - {"vllm"}))
def test_no_name_whose_first_segment_is_a_litellm_provider_resolves_to_local(
    provider: str,
) -> None:
    resolution = resolve(f"{provider}/some-org/some-model")
    assert (resolution.kind, resolution.route) == ("hosted", f"{provider}/some-org/some-model")


@pytest.mark.parametrize(
    ("name", "provider", "route"),
    [
        # provider: applies only when the text before the first ":" has no "/"
        ("ollama/llama3.1:8b", "ollama", "ollama/llama3.1:8b"),
        ("ollama:llama3.1:8b", "ollama", "ollama/llama3.1:8b"),
        ("meta-llama/Llama-3.1-8B:v2", "local", None),
        # a Hugging Face org named like a provider needs local:
        ("openai/gpt-oss-20b", "openai", "openai/gpt-oss-20b"),
        ("local:openai/gpt-oss-20b", "local", None),
        ("mistral/Mistral-7B-Instruct-v0.3", "mistral", "mistral/Mistral-7B-Instruct-v0.3"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "local", None),
        # other names with "/" and paths stay local
        ("./weights/tiny", "local", None),
        ("~/weights/tiny", "local", None),
        ("/weights/tiny", "local", None),
    ],
)
def test_where_a_name_with_slash_or_colon_goes(name: str, provider: str, route: str | None) -> None:
    resolution = resolve(name)
    assert (resolution.provider, resolution.route) == (provider, route)


def test_a_litellm_provider_alone_asks_for_a_model_id() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("groq")
    assert str(caught.value).splitlines()[0] == (
        "unknown model 'groq': provider 'groq' has no default model; name one, as in "
        "'groq:<model id>'"
    )


def test_our_providers_win_over_litellm_s_of_the_same_name() -> None:
    register_provider(ProviderSpec(name="groq", api_base="http://10.0.0.1:9/v1"))
    resolution = resolve("groq/llama3-70b-8192")
    assert resolution.route == "groq/llama3-70b-8192"
    assert dict(resolution.params) == {"api_base": "http://10.0.0.1:9/v1"}


def test_an_alias_may_name_any_litellm_provider(user_aliases: Callable[[str], Path]) -> None:
    user_aliases('[aliases."fast-groq"]\nprovider = "groq"\nmodel_id = "llama3-70b-8192"\n')
    resolution = resolve("fast-groq")
    assert (resolution.provider, resolution.route) == ("groq", "groq/llama3-70b-8192")


# --- one default prefix for [providers] tables and register_provider -------------------


@pytest.mark.parametrize(
    ("name", "fields", "route"),
    [
        ("groq", {}, "groq/m"),  # a LiteLLM provider: its own name
        ("groq", {"api_base": "http://10.0.0.1:9/v1"}, "groq/m"),
        ("fleet", {"api_base": "http://10.0.0.1:9/v1"}, "openai/m"),  # OpenAI-compatible
        ("fleet", {"litellm_prefix": "hosted_vllm"}, "hosted_vllm/m"),
        ("voyage", {}, "voyage/m"),  # an embedding-only LiteLLM provider: its own name
        ("fleet", {"litellm_prefix": "voyage"}, "voyage/m"),
    ],
)
def test_a_providers_table_and_register_provider_default_the_prefix_alike(
    write_toml: Callable[..., Path], name: str, fields: dict[str, str], route: str
) -> None:
    table = "".join(f'{key} = "{value}"\n' for key, value in fields.items())
    alias = f'[aliases."a"]\nprovider = "{name}"\nmodel_id = "m"\n'
    path = write_toml(f'[providers."{name}"]\n{table}{alias}')
    assert load_registry(path, layered=False).aliases["a"].route == route
    register_provider(ProviderSpec(name=name, **fields))  # type: ignore[arg-type]
    assert resolve(f"{name}:m").route == route


def test_a_bare_table_for_a_provider_litellm_does_not_know_is_an_error(
    write_toml: Callable[..., Path],
) -> None:
    path = write_toml('[providers."fleet"]\napi_key_env = "FLEET_KEY"\n')
    with pytest.raises(AliasConfigError) as caught:
        load_registry(path, layered=False)
    assert str(caught.value) == (
        f"{path}: provider 'fleet': 'fleet' is not a LiteLLM provider, so its routes need a "
        "prefix: set litellm_prefix (the LiteLLM provider, e.g. 'hosted_vllm'), or api_base "
        "(an OpenAI-compatible endpoint, reached as 'openai/<model id>')"
    )
    assert (caught.value.alias, caught.value.key) == ("fleet", "litellm_prefix")
    with pytest.raises(ValueError, match=r"^provider 'fleet': 'fleet' is not a LiteLLM provider"):
        ProviderSpec(name="fleet", api_key_env="FLEET_KEY")


def test_a_litellm_prefix_that_is_no_litellm_provider_is_caught_by_validate(
    write_toml: Callable[..., Path],
) -> None:
    path = write_toml(
        '[providers."fleet"]\nlitellm_prefix = "hosted-vllm"\napi_base = "http://h/v1"\n'
        '[aliases."f"]\nprovider = "fleet"\nmodel_id = "m"\n'
    )
    assert validate_files(path) == [
        f"{path}: provider 'fleet': litellm_prefix 'hosted-vllm' is not a LiteLLM provider "
        "(did you mean 'hosted_vllm'?); use one of LiteLLM's providers, such as 'openai' (any "
        "OpenAI-compatible server) or 'hosted_vllm'"
    ]
    with pytest.raises(ValueError, match=r"did you mean 'hosted_vllm'\?"):
        ProviderSpec(name="fleet", litellm_prefix="hosted-vllm")


# --- the typo guard --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        (
            "claude-sonet",
            "'claude-sonet' is not in LiteLLM's model list; did you mean 'claude-sonnet-4-5', "
            "'claude-sonnet-5' or alias 'claude-sonnet'?",
        ),
        (
            "gpt4o",
            "'gpt4o' is not in LiteLLM's model list; did you mean 'gpt-4o' or 'gpt-4'?",
        ),
        (
            "anthropic:claude-sonet",
            "'anthropic:claude-sonet' is not in LiteLLM's model list; did you mean "
            "'anthropic:claude-sonnet-4-5', 'anthropic:claude-sonnet-5' or alias "
            "'claude-sonnet'?",
        ),
        (
            "mistral/mistral-large-latst",
            "'mistral/mistral-large-latst' resolves to the hosted provider mistral; for the "
            "Hugging Face model write 'local:mistral/mistral-large-latst'. The id is not in "
            "LiteLLM's model list; did you mean 'mistral/mistral-large-latest' or "
            "'mistral/pixtral-large-latest'?",
        ),
        (
            "openai/gpt-oss-20b",
            "'openai/gpt-oss-20b' resolves to the hosted provider openai; for the Hugging Face "
            "model write 'local:openai/gpt-oss-20b'. The id is not in LiteLLM's model list of "
            "openai models; check the model id",
        ),
    ],
)
def test_an_unlisted_id_resolves_with_a_warning_naming_the_closest_ids_and_aliases(
    name: str, warning: str
) -> None:
    resolution = resolve(name)
    assert resolution.warnings == (warning,)
    assert resolution.to_dict()["warnings"] == [warning]
    assert resolve(name).warnings == (warning,)  # the same when remembered


@pytest.mark.parametrize(
    "name",
    [
        "gpt-4o",  # listed, by heuristic
        "claude-sonnet-4-5",
        "openai:gpt-4.1-mini",
        "mistral/mistral-large-latest",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "claude-haiku",  # a packaged alias, its id listed
        "local:some/model",  # local names are not checked
        "hosted_vllm/my-model",  # LiteLLM lists no models for these
        "openrouter/anthropic/claude-3.5-sonnet",
        "azure/my-deployment",  # deployment and pulled-model names are the user's own
        "ollama/my-finetune",
    ],
)
def test_listed_ids_and_names_the_list_cannot_know_carry_no_warning(name: str) -> None:
    assert resolve(name).warnings == ()
    assert resolve(name, strict=True).warnings == ()


def test_an_api_base_of_the_user_s_turns_the_check_off() -> None:
    assert resolve("gpt4o", api_base="http://10.0.0.1:9/v1").warnings == ()
    register_provider(ProviderSpec(name="fleet", api_base="http://10.0.0.1:9/v1"))
    assert resolve("fleet:gpt4o", strict=True).warnings == ()


def test_strict_refuses_an_unlisted_id_with_the_suggestions() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("claude-sonet", strict=True)
    assert str(caught.value).splitlines()[0] == (
        "unknown model 'claude-sonet': 'claude-sonet' is not in LiteLLM's model list; did you "
        "mean 'claude-sonnet-4-5', 'claude-sonnet-5' or alias 'claude-sonnet'? (strict mode "
        "refuses ids LiteLLM does not list: use a listed id or an alias, or strict=False)"
    )
    assert caught.value.suggestions == ("claude-sonnet-4-5", "claude-sonnet-5", "claude-sonnet")


def test_model_registry_strict_sets_the_default_and_strict_false_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(STRICT_ENV_VAR, "1")
    with pytest.raises(UnknownModelError, match="strict mode"):
        resolve("gpt4o")
    resolution = resolve("gpt4o", strict=False, temperature=0)
    assert len(resolution.warnings) == 1
    assert dict(resolution.params) == {"temperature": 0}  # strict is ours, never a param


def test_suggestions_follow_the_alias_files_in_force(user_aliases: Callable[[str], Path]) -> None:
    assert "alias 'claude-sonet-fast'" not in resolve("claude-sonet").warnings[0]
    user_aliases('[aliases."claude-sonet-fast"]\nprovider = "anthropic"\n')
    assert "aliases 'claude-sonnet', 'claude-sonet-fast'" in resolve("claude-sonet").warnings[0]


# --- aliases are never lost to case ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("qwen/qwen3-4b-instruct-2507", "Qwen/Qwen3-4B-Instruct-2507"),
        ("QWEN/QWEN3-4B-INSTRUCT-2507", "Qwen/Qwen3-4B-Instruct-2507"),
        ("My-Eval-Model", "my-eval-model"),
    ],
)
def test_a_name_that_matches_an_alias_only_ignoring_case_is_an_error(name: str, alias: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert str(caught.value).splitlines()[0] == (
        f"unknown model {name!r}: it matches alias {alias!r} only when case is ignored; "
        f"write {alias!r} (as another name it would lose the alias's settings)"
    )
    assert caught.value.suggestions == (alias,)
    assert resolve(f"local:{name}").model_id == name  # written out, it is the user's choice


# --- without LiteLLM -------------------------------------------------------------------


def test_resolution_imports_no_litellm(tmp_path: Path) -> None:
    names = [f"{p}{s}{m}" for p, m in LITELLM_NAMES for s in ":/"]
    names += ["claude-sonet", "gpt4o", "openai/gpt-oss-20b", "my-reasoning-model"]
    code = (
        "import json, sys\n"
        "import model_registry as mr\n"
        "out = {n: mr.resolve(n).to_dict()['warnings'] for n in json.loads(sys.argv[1])}\n"
        "try:\n"
        "    mr.resolve('claude-sonet', strict=True)\n"
        "except mr.UnknownModelError:\n"
        "    out['strict'] = 'raised'\n"
        "mr.load_registry(sys.argv[2])\n"
        "print(json.dumps(['litellm' in sys.modules, out]))\n"
    )
    table = tmp_path / "t.toml"
    table.write_text('[providers."groq"]\n[aliases."g"]\nprovider = "groq"\nmodel_id = "x"\n')
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(names), str(table)],
        capture_output=True,
        text=True,
        check=True,
    )
    imported, out = json.loads(result.stdout)
    assert out["strict"] == "raised"
    assert out["claude-sonet"]  # the guard answered
    assert imported is False
