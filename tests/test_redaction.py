"""One redaction rule: credentials print as `***` wherever params are shown, at any depth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model_registry import AliasConfigError, ProviderSpec, get_client, load_registry, resolve
from model_registry._redaction import is_secret_key, redact_text
from model_registry.types import redact, secret_values

SECRET = "sentinel-s3cr3t-value"


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "API_KEY",
        "openai_api_key",
        "apiKey",
        "apikey",
        "x-api-key",
        "api-key",
        "X-Goog-Api-Key",
        "key",
        "hf_token",
        "access_token",
        "accessToken",
        "client_secret",
        "aws_secret_access_key",
        "password",
        "db_password",
        "credentials",
        "vertex_credentials",
        "Authorization",
        "Proxy-Authorization",
        "basic_auth",
        "Cookie",
        # the rule is a suffix match: a harmless name that ends like a credential is hidden
        # too (a value hidden for nothing costs less than a key shown)
        "monkey",
    ],
)
def test_keys_named_like_a_credential_are_secret(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens",
        "max_completion_tokens",
        "stop_token_ids",
        "skip_special_tokens",
        "top_k",
        "top_logprobs",
        "tokenizer",
        "tokenizer_mode",
        "api_base",
        "api_key_env",
        "prompt_cache_key",
        "keywords",
        "temperature",
    ],
)
def test_ordinary_parameters_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


REDACTION_TABLE: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"api_key": SECRET, "temperature": 0.2}, {"api_key": "***", "temperature": 0.2}),
    ({"max_tokens": 256, "stop_token_ids": [1, 2]}, {"max_tokens": 256, "stop_token_ids": [1, 2]}),
    ({"api_key": None}, {"api_key": None}),
    (
        {
            "extra_headers": {
                "Authorization": f"Bearer {SECRET}",
                "x-api-key": SECRET,
                "X-Team": "a",
            }
        },
        {"extra_headers": {"Authorization": "***", "x-api-key": "***", "X-Team": "a"}},
    ),
    ({"headers": {"api-key": SECRET}}, {"headers": {"api-key": "***"}}),
    (
        {"api_base": f"https://user:{SECRET}@fleet.example/v1"},
        {"api_base": "https://***@fleet.example/v1"},
    ),
    (
        {"api_base": f"https://{SECRET}@github.example/x"},
        {"api_base": "https://***@github.example/x"},
    ),
    (
        {"api_base": f"https://user:pa/ss{SECRET}@host/v1"},
        {"api_base": "https://***@host/v1"},
    ),
    (
        {"api_base": f"https://host/v1?key={SECRET}&alt=sse"},
        {"api_base": "https://host/v1?key=***&alt=sse"},
    ),
    ({"vertex_credentials": {"private_key": SECRET}}, {"vertex_credentials": "***"}),
    ({"password": SECRET, "credentials": SECRET}, {"password": "***", "credentials": "***"}),
    (
        {"extra_body": {"api_key": SECRET, "n": [{"token": SECRET}, (f"x://u:{SECRET}@h",)]}},
        {"extra_body": {"api_key": "***", "n": [{"token": "***"}, ("x://***@h",)]}},
    ),
    ({"x_custom": f"Bearer sk-{SECRET}1"}, {"x_custom": "Bearer ***"}),
    ({"stop": ["Basic facts", "a@b", "key=value"]}, {"stop": ["Basic facts", "a@b", "key=value"]}),
]


@pytest.mark.parametrize(("params", "shown"), REDACTION_TABLE)
def test_redact_hides_every_credential_at_any_depth(
    params: dict[str, Any], shown: dict[str, Any]
) -> None:
    assert redact(params) == shown


def test_redact_copies_and_never_changes_its_input() -> None:
    params = {"extra_body": {"api_key": SECRET}, "api_base": f"https://u:{SECRET}@h"}
    redact(params)
    assert params == {"extra_body": {"api_key": SECRET}, "api_base": f"https://u:{SECRET}@h"}


def test_redact_survives_a_container_that_holds_itself() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert redact({"x": loop}) == {"x": [1, "[...]"]}


def test_secret_values_lists_what_redact_hides_for_scrubbing_text() -> None:
    params = {
        "api_key": "sk-top-level-1",
        "extra_headers": {"Authorization": "Bearer tok-in-header-2"},
        "extra_body": {"nested": {"password": "pw-nested-3"}},
        "api_base": "https://user:pw-in-url-4@host/v1?key=query-key-5",
        "vertex_credentials": '{"private_key": "-----BEGIN KEY 6-----"}',
        "temperature": 0.2,
        "model_hint": "not-a-secret",
    }
    found = secret_values(params)
    for secret in (
        "sk-top-level-1",
        "tok-in-header-2",
        "pw-nested-3",
        "pw-in-url-4",
        "query-key-5",
        "-----BEGIN KEY 6-----",
    ):
        assert secret in found
    assert "not-a-secret" not in found
    assert found == sorted(found, key=len, reverse=True)  # longest first: replace in order
    text = "echo: sk-top-level-1 / tok-in-header-2 / pw-in-url-4"
    for secret in found:
        text = text.replace(secret, "***")
    assert text == "echo: *** / *** / ***"


ALIAS_WITH_SECRETS = f"""
[providers."fleet"]
api_base = "https://fleet-user:{SECRET}@fleet.example/v1"

[aliases."x"]
provider = "openai"

[aliases."x".defaults]
api_base = "https://user:{SECRET}@proxy.example/v1"
password = "{SECRET}"
vertex_credentials = "{SECRET}"
extra_headers = {{ Authorization = "Bearer {SECRET}", x-api-key = "{SECRET}" }}
extra_body = {{ api_key = "{SECRET}", keep = 1 }}
max_tokens = 64

[aliases."f"]
provider = "fleet"
model_id = "m"
"""


def test_alias_resolution_and_provider_show_no_secret(write_toml: Callable[..., Path]) -> None:
    registry = load_registry(write_toml(ALIAS_WITH_SECRETS), layered=False)
    alias = registry.aliases["x"]
    spec = registry.providers["fleet"]
    shown = [repr(alias), str(alias), str(alias.to_dict()), repr(spec), str(spec.to_dict())]
    assert not [text for text in shown if SECRET in text]
    defaults = alias.to_dict()["defaults"]
    assert defaults["extra_headers"] == {"Authorization": "***", "x-api-key": "***"}
    assert defaults["extra_body"] == {"api_key": "***", "keep": 1}
    assert defaults["max_tokens"] == 64
    assert alias.defaults["password"] == SECRET  # the value itself still reaches the backend


def test_resolution_and_client_reprs_show_no_secret(
    user_aliases: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    user_aliases(ALIAS_WITH_SECRETS)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy")
    for name in ("x", "f"):
        resolution = resolve(name, extra_headers={"Cookie": SECRET})
        client = get_client(name, extra_body={"nested": {"token": SECRET}})
        shown = [repr(resolution), str(resolution.to_dict()), repr(client), str(client)]
        assert not [text for text in shown if SECRET in text], name
    assert resolve("x").params["extra_body"]["api_key"] == SECRET


def test_a_provider_spec_repr_hides_url_userinfo() -> None:
    spec = ProviderSpec(name="p", api_base=f"http://u:{SECRET}@h/v1", api_key_env="P_KEY")
    assert SECRET not in repr(spec) + str(spec.to_dict())
    assert "api_key_env='P_KEY'" in repr(spec)


def test_an_alias_file_error_does_not_echo_a_table_that_may_hold_a_credential(
    write_toml: Callable[..., Path],
) -> None:
    path = write_toml(
        f'[providers."p"]\napi_base = {{ url = "http://h", password = "{SECRET}" }}\n'
        f'[aliases."x"]\nprovider = "openai"\nmodel_id = ["{SECRET}"]\n'
    )
    with pytest.raises(AliasConfigError) as caught:
        load_registry(path, layered=False)
    assert SECRET not in str(caught.value)
    assert caught.value.problems == (
        f"{path}: provider 'p': key 'api_base' must be a string, got a table",
        f"{path}: alias 'x': key 'model_id' must be a string, got an array",
    )


def test_a_flag_named_like_a_key_is_shown_it_is_no_credential() -> None:
    assert redact({"litellm_reads_key": True, "api_key": "sk-1234567"}) == {
        "litellm_reads_key": True,
        "api_key": "***",
    }
    assert "litellm_reads_key=True" in repr(ProviderSpec(name="openai", litellm_reads_key=True))


def test_a_message_is_redacted_by_the_same_rule_as_values() -> None:
    text = "key sk-abc123456 at https://user:pw123456@host/x?key=q1w2e3r4 failed"
    assert redact_text(text, ["sk-abc123456"]) == ("key *** at https://***@host/x?key=*** failed")
    assert redact_text("Bearer abcdef123456") == "Bearer ***"
    assert redact_text("max_tokens=5 is fine") == "max_tokens=5 is fine"
