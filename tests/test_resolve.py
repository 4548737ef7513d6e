"""Resolution: every rule of the order, its precedence, kwargs, and the unknown-name error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import (
    InvalidParameterError,
    ProviderSpec,
    Resolution,
    UnknownModelError,
    get_client,
    register_provider,
    resolve,
)
from model_registry._litellm_providers import LITELLM_PROVIDERS

PACKAGED = "config/model_aliases.toml"


@pytest.mark.parametrize(
    ("name", "provider", "model_id", "route", "source"),
    [
        # 1. exact alias (the seed's examples)
        (
            "my-reasoning-model",
            "openai",
            "gpt-5.2-2025-12-11",
            "openai/gpt-5.2-2025-12-11",
            f"exact alias from {PACKAGED}",
        ),
        (
            "Qwen/Qwen3-4B-Instruct-2507",
            "local",
            "Qwen/Qwen3-4B-Instruct-2507",
            None,
            f"exact alias from {PACKAGED}",
        ),
        # 2. explicit provider:model
        ("openai:gpt-4.1", "openai", "gpt-4.1", "openai/gpt-4.1", "explicit provider:model"),
        (
            "local:Qwen/Qwen3-4B-Instruct-2507",
            "local",
            "Qwen/Qwen3-4B-Instruct-2507",
            None,
            "explicit provider:model",
        ),
        (
            "local:openai/gpt-oss-20b",
            "local",
            "openai/gpt-oss-20b",
            None,
            "explicit provider:model",
        ),
        (
            "anthropic:my-claude",
            "anthropic",
            "my-claude",
            "anthropic/my-claude",
            "explicit provider:model",
        ),
        (
            "groq:llama3-70b-8192",  # any LiteLLM provider
            "groq",
            "llama3-70b-8192",
            "groq/llama3-70b-8192",
            "explicit provider:model",
        ),
        (
            "ollama:llama3.1:8b",
            "ollama",
            "llama3.1:8b",
            "ollama/llama3.1:8b",
            "explicit provider:model",
        ),
        # 3. provider shortcut
        ("openai", "openai", "gpt-4.1", "openai/gpt-4.1", "provider shortcut: openai -> gpt-4.1"),
        (
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5",
            "anthropic/claude-sonnet-4-5",
            "provider shortcut: anthropic -> claude-sonnet-4-5",
        ),
        (
            "gemini",
            "gemini",
            "gemini-2.5-flash",
            "gemini/gemini-2.5-flash",
            "provider shortcut: gemini -> gemini-2.5-flash",
        ),
        (
            "deepseek",
            "deepseek",
            "deepseek-chat",
            "deepseek/deepseek-chat",
            "provider shortcut: deepseek -> deepseek-chat",
        ),
        # 4. LiteLLM route with a hosted provider prefix
        (
            "anthropic/claude-3-5-haiku-latest",
            "anthropic",
            "claude-3-5-haiku-latest",
            "anthropic/claude-3-5-haiku-latest",
            "LiteLLM route: anthropic/...",
        ),
        (
            "gemini/gemini-2.0-flash",
            "gemini",
            "gemini-2.0-flash",
            "gemini/gemini-2.0-flash",
            "LiteLLM route: gemini/...",
        ),
        (
            "groq/llama3-70b-8192",  # any LiteLLM provider, the route as written
            "groq",
            "llama3-70b-8192",
            "groq/llama3-70b-8192",
            "LiteLLM route: groq/...",
        ),
        (
            "openrouter/anthropic/claude-3.5-sonnet",
            "openrouter",
            "anthropic/claude-3.5-sonnet",
            "openrouter/anthropic/claude-3.5-sonnet",
            "LiteLLM route: openrouter/...",
        ),
        # 5. heuristics on names without "/", case-insensitive prefixes
        ("gpt-4o-mini", "openai", "gpt-4o-mini", "openai/gpt-4o-mini", "heuristic: gpt* -> openai"),
        ("GPT-4o", "openai", "GPT-4o", "openai/GPT-4o", "heuristic: gpt* -> openai"),
        ("o1-preview", "openai", "o1-preview", "openai/o1-preview", "heuristic: o1* -> openai"),
        ("o3-mini", "openai", "o3-mini", "openai/o3-mini", "heuristic: o3* -> openai"),
        ("o4-mini", "openai", "o4-mini", "openai/o4-mini", "heuristic: o4* -> openai"),
        (
            "chatgpt-4o-latest",
            "openai",
            "chatgpt-4o-latest",
            "openai/chatgpt-4o-latest",
            "heuristic: chatgpt* -> openai",
        ),
        (
            "claude-opus-4-1",
            "anthropic",
            "claude-opus-4-1",
            "anthropic/claude-opus-4-1",
            "heuristic: claude* -> anthropic",
        ),
        (
            "Gemini-2.5-pro",
            "gemini",
            "Gemini-2.5-pro",
            "gemini/Gemini-2.5-pro",
            "heuristic: gemini* -> gemini",
        ),
        (
            "deepseek-chat",
            "deepseek",
            "deepseek-chat",
            "deepseek/deepseek-chat",
            "heuristic: deepseek* -> deepseek",
        ),
        # 6. any other name with "/" is local (a HF repo id or a path)
        (
            "deepseek-ai/DeepSeek-R1",
            "local",
            "deepseek-ai/DeepSeek-R1",
            None,
            "name with '/' -> local",
        ),
        (
            "meta-llama/Llama-3.1-8B-Instruct",
            "local",
            "meta-llama/Llama-3.1-8B-Instruct",
            None,
            "name with '/' -> local",
        ),
        ("/models/my-finetune", "local", "/models/my-finetune", None, "name with '/' -> local"),
        ("./weights/tiny", "local", "./weights/tiny", None, "name with '/' -> local"),
        ("gpt-4/finetune", "local", "gpt-4/finetune", None, "name with '/' -> local"),
    ],
)
def test_each_rule_resolves_to_its_provider(
    name: str, provider: str, model_id: str, route: str | None, source: str
) -> None:
    resolution = resolve(name)
    assert (resolution.provider, resolution.model_id, resolution.route, resolution.source) == (
        provider,
        model_id,
        route,
        source,
    )
    assert resolution.name == name


@pytest.mark.parametrize(
    "name", ["my-gpt-finetune", "super-claude", "xgemini", "llama-3", "my-mistral-large", "", "/"]
)
def test_heuristics_match_prefixes_not_substrings(name: str) -> None:
    with pytest.raises(UnknownModelError):
        resolve(name)


def test_exact_alias_beats_every_other_rule(user_aliases: Callable[[str], Path]) -> None:
    path = user_aliases(
        """
        [aliases."gpt-4o"]
        provider = "anthropic"
        model_id = "claude-3-5-haiku-latest"

        [aliases."openai"]
        provider = "deepseek"

        [aliases."anthropic/claude-x"]
        provider = "gemini"
        model_id = "gemini-2.5-pro"

        [aliases."openai:gpt-4.1"]
        provider = "local"
        model_id = "some/dir"

        [aliases."groq/llama3-70b-8192"]
        provider = "local"
        model_id = "some/dir"
        """
    )
    assert resolve("groq/llama3-70b-8192").provider == "local"  # not the LiteLLM route
    assert resolve("gpt-4o").provider == "anthropic"  # not heuristic gpt* -> openai
    assert resolve("openai").provider == "deepseek"  # not the provider shortcut
    assert resolve("anthropic/claude-x").model_id == "gemini-2.5-pro"  # not the LiteLLM route
    assert resolve("openai:gpt-4.1").provider == "local"  # not provider:model
    assert resolve("gpt-4o").source == f"exact alias from {path}"


def test_explicit_provider_model_escapes_every_heuristic() -> None:
    # deepseek-ai/... would be local by rule 6; gpt-oss is a HF id under an "openai" org.
    assert resolve("deepseek:deepseek-reasoner").provider == "deepseek"
    assert resolve("local:openai/gpt-oss-20b").provider == "local"
    assert resolve("openai/gpt-oss-20b").provider == "openai"  # the LiteLLM route rule
    assert resolve("local:gpt-4o").provider == "local"


def test_explicit_kwargs_override_alias_defaults() -> None:
    resolution = resolve("my-reasoning-model", reasoning_effort="low", temperature=0.2)
    assert dict(resolution.params) == {"reasoning_effort": "low", "temperature": 0.2}


def test_alias_defaults_apply_when_no_kwargs() -> None:
    assert dict(resolve("my-reasoning-model").params) == {"reasoning_effort": "high"}


def test_a_none_kwarg_is_passed_as_given_not_dropped() -> None:
    resolution = resolve("my-reasoning-model", reasoning_effort=None)
    assert dict(resolution.params) == {"reasoning_effort": None}


def test_resolution_params_are_read_only() -> None:
    resolution = resolve("my-reasoning-model")
    assert resolution.params["reasoning_effort"] == "high"
    assert resolution.params.get("missing") is None
    with pytest.raises(TypeError):
        resolution.params["reasoning_effort"] = "low"  # type: ignore[index]
    with pytest.raises(AttributeError):
        resolution.provider = "anthropic"  # type: ignore[misc]


def test_kwargs_do_not_leak_into_the_alias_defaults() -> None:
    resolve("my-reasoning-model", reasoning_effort="low")
    assert dict(resolve("my-reasoning-model").params) == {"reasoning_effort": "high"}


def test_unknown_name_lists_suggestions_aliases_providers_and_the_hint(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases(
        """
        [aliases."my-eval-model-2"]
        provider = "openai"
        """
    )
    with pytest.raises(UnknownModelError) as caught:
        resolve("my-eval-modle")
    assert str(caught.value) == (
        "unknown model 'my-eval-modle': no alias, provider or naming rule matches it\n"
        "  did you mean: 'my-eval-model', 'my-eval-model-2', 'my-reasoning-model'?\n"
        "  known aliases (11): Nanbeige/Nanbeige4.1-3B, Qwen/Qwen3-4B-Instruct-2507, "
        "allenai/Olmo-3-7B-Instruct, claude-haiku, claude-sonnet, deepseek-reasoner, "
        "fast-openai, gemini-flash, my-eval-model, my-eval-model-2, my-reasoning-model\n"
        "  known providers: anthropic, deepseek, gemini, local, openai, and LiteLLM's "
        f"{len(LITELLM_PROVIDERS)} chat and embedding providers by name "
        "('groq:<model id>', 'ollama/...', 'voyage/...')\n"
        "  hint: name the provider explicitly, as in 'openai:gpt-4.1' or "
        "'local:Qwen/Qwen3-4B-Instruct-2507'"
    )
    assert caught.value.suggestions == ("my-eval-model", "my-eval-model-2", "my-reasoning-model")
    assert isinstance(caught.value, ValueError)  # the original registry's contract


def test_unknown_name_error_lists_first_20_aliases_and_a_count(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases("".join(f'[aliases."zz-{i:02d}"]\nprovider = "openai"\n' for i in range(30)))
    with pytest.raises(UnknownModelError) as caught:
        resolve("nothing-like-it")
    (line,) = [x for x in str(caught.value).splitlines() if x.startswith("  known aliases")]
    assert line.startswith("  known aliases (40): Nanbeige/Nanbeige4.1-3B, ")
    assert line.endswith("zz-09, ... (20 more: run 'model-registry list')")


@pytest.mark.parametrize(
    ("name", "prefix", "suggestion"),
    [
        ("olama:llama3", "olama", "ollama:llama3"),
        ("together:meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "together_ai:"),
        ("together:llama", "together", "together_ai:"),
        ("OpenAI:gpt-4o", "OpenAI", "openai:gpt-4o"),
        ("GROQ:llama-3.3-70b-versatile", "GROQ", "groq:llama-3.3-70b-versatile"),
        ("Local:Qwen/Qwen3-4B-Instruct-2507", "Local", "local:Qwen/Qwen3-4B-Instruct-2507"),
    ],
)
def test_an_unknown_provider_prefix_is_an_error_with_or_without_a_slash_after_it(
    name: str, prefix: str, suggestion: str
) -> None:
    # before the first ":" there is no "/", so it is a provider, and an unknown one
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    fixed = suggestion + name.partition(":")[2] if suggestion.endswith(":") else suggestion
    assert str(caught.value).splitlines()[0] == (
        f"unknown model {name!r}: {prefix!r} is not a known provider (ours or LiteLLM's); "
        f"did you mean {fixed!r}?"
    )
    assert caught.value.suggestions == (fixed,)


def test_an_unknown_prefix_with_nothing_close_falls_back_to_the_general_suggestions() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("zzqx:model")
    assert str(caught.value).splitlines()[0] == (
        "unknown model 'zzqx:model': 'zzqx' is not a known provider (ours or LiteLLM's)"
    )


def test_provider_without_default_model_asks_for_local_path() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve("local")
    assert str(caught.value).splitlines()[0] == (
        "unknown model 'local': provider 'local' has no default model; name one, as in "
        "'local:<Hugging Face repo id or path>' (e.g. 'local:Qwen/Qwen3-4B-Instruct-2507')"
    )


@pytest.mark.parametrize(
    ("name", "reason", "suggestions"),
    [
        (
            "openai:",
            "nothing after 'openai:'; write 'openai:<model id>', or 'openai' for its default "
            "model (gpt-4.1)",
            ("openai",),
        ),
        (
            "openai/",
            "nothing after 'openai/'; write 'openai:<model id>', or 'openai' for its default "
            "model (gpt-4.1)",
            ("openai",),
        ),
        ("local:", "nothing after 'local:'; write 'local:<model id>'", ()),
        ("local/", "nothing after 'local/'; write 'local:<model id>'", ()),
        (
            "anthropic//",
            "nothing after 'anthropic/'; write 'anthropic:<model id>', or "
            "'anthropic' for its default model (claude-sonnet-4-5)",
            ("anthropic",),
        ),
    ],
)
def test_empty_model_after_provider_prefix_is_an_error(
    name: str, reason: str, suggestions: tuple[str, ...]
) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert str(caught.value).splitlines()[0] == f"unknown model {name!r}: {reason}"
    assert caught.value.suggestions == suggestions


@pytest.mark.parametrize(
    ("name", "what", "cleaned"),
    [
        ("gpt-4o-mini ", "leading or trailing whitespace", "gpt-4o-mini"),
        (" my-eval-model", "leading or trailing whitespace", "my-eval-model"),
        ("gpt-4\n", "an unprintable character (U+000A)", "gpt-4"),
        ("gpt-4\r\n", "an unprintable character (U+000D)", "gpt-4"),
        ("gpt\t-4", "an unprintable character (U+0009)", "gpt-4"),
        ("claude\x1b[31m", "an unprintable character (U+001B)", "claude[31m"),
        ("gpt-4\u200b", "an unprintable character (U+200B)", "gpt-4"),
        ("gpt-4\u00a0", "an unprintable character (U+00A0)", "gpt-4"),
        ("openai: gpt-4", "whitespace next to the provider name", "openai:gpt-4"),
        ("openai :gpt-4", "whitespace next to the provider name", "openai:gpt-4"),
        ("anthropic/ claude-x", "whitespace next to the provider name", "anthropic/claude-x"),
        ("openai/ ", "leading or trailing whitespace", "openai"),
    ],
)
def test_stray_characters_in_a_name_are_an_error_suggesting_the_cleaned_name(
    name: str, what: str, cleaned: str
) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert str(caught.value).splitlines()[0] == (
        f"unknown model {name!r}: the name has {what}; did you mean {cleaned!r}?"
    )
    assert caught.value.suggestions == (cleaned,)


@pytest.mark.parametrize("name", ["\n", " ", "\x00\t"])
def test_a_name_of_nothing_but_stray_characters_suggests_nothing(name: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve(name)
    assert caught.value.suggestions == ()
    assert "check where the name came from" in str(caught.value)


def test_an_alias_whose_name_has_odd_characters_still_resolves_exactly(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases('[aliases."tab\\tname "]\nprovider = "openai"\n')
    assert resolve("tab\tname ").alias == "tab\tname "


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": float("nan")}, "kwarg 'temperature': nan is not a finite number"),
        ({"top_p": float("inf")}, "kwarg 'top_p': inf is not a finite number"),
        (
            {"extra_body": {"scale": [1.0, float("-inf")]}},
            "kwarg 'extra_body': -inf is not a finite number (at scale[1])",
        ),
    ],
)
def test_nan_and_inf_kwargs_are_rejected_at_resolution(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        resolve("openai:gpt-4.1", **kwargs)
    assert str(caught.value) == f"{message}; pass a finite number"


def test_registered_provider_takes_part_in_every_rule() -> None:
    register_provider(
        ProviderSpec(
            name="fleet",
            litellm_prefix="hosted_vllm",
            default_model="qwen3-4b",
            name_prefixes=("fleet-",),
            api_base="http://10.0.0.1:8000/v1",
        )
    )
    shortcut = resolve("fleet")
    assert (shortcut.route, dict(shortcut.params)) == (
        "hosted_vllm/qwen3-4b",
        {"api_base": "http://10.0.0.1:8000/v1"},
    )
    assert resolve("fleet:llama").route == "hosted_vllm/llama"
    assert resolve("fleet/llama").route == "hosted_vllm/llama"
    assert resolve("Fleet-llama").source == "heuristic: fleet-* -> fleet"
    assert dict(resolve("fleet", api_base="http://other/v1").params) == {
        "api_base": "http://other/v1"
    }


def test_providers_table_in_an_alias_file(user_aliases: Callable[[str], Path]) -> None:
    user_aliases(
        """
        [providers."vllm-fleet"]
        litellm_prefix = "hosted_vllm"
        api_base = "http://127.0.0.1:8000/v1"
        api_key_env = "FLEET_API_KEY"
        description = "our vLLM servers"

        [aliases."fleet-qwen"]
        provider = "vllm-fleet"
        model_id = "Qwen/Qwen3-4B-Instruct-2507"

        [aliases."fleet-qwen".defaults]
        temperature = 0.7
        """
    )
    resolution = resolve("fleet-qwen")
    assert resolution.route == "hosted_vllm/Qwen/Qwen3-4B-Instruct-2507"
    assert resolution.kind == "hosted"
    assert resolution.spec.api_key_env == "FLEET_API_KEY"
    assert dict(resolution.params) == {"api_base": "http://127.0.0.1:8000/v1", "temperature": 0.7}
    # the declared provider also works as provider:model
    assert resolve("vllm-fleet:other").route == "hosted_vllm/other"


def test_resolution_repr_and_dict_redact_credentials() -> None:
    secret = "sk-sentinel-0123456789"
    resolution = resolve("openai:gpt-4.1", api_key=secret, my_token=secret, temperature=0)
    for text in (repr(resolution), str(resolution), str(resolution.to_dict())):
        assert secret not in text
        assert "'api_key': '***'" in text
    assert resolution.params["api_key"] == secret  # the value still reaches the backend


def test_get_client_resolves_at_once_and_exposes_identity_before_any_await(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    client = get_client("my-reasoning-model", temperature=0.2)
    assert (client.name, client.provider, client.model_id) == (
        "my-reasoning-model",
        "openai",
        "gpt-5.2-2025-12-11",
    )
    assert isinstance(client.resolution, Resolution)
    assert dict(client.resolution.params) == {"reasoning_effort": "high", "temperature": 0.2}


def test_get_client_raises_unknown_model_before_any_await() -> None:
    with pytest.raises(UnknownModelError):
        get_client("no-such-model")
