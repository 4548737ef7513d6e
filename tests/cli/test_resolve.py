"""`model-registry resolve`: the Resolution of a name and the rule that produced it."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from model_registry import UnknownModelError, limits_in_force, resolve
from model_registry.cli import parse_sets
from tests.cli.conftest import InvokeCli, RunCli, no_traceback

RULES = [
    # name, provider, model_id, route, source
    (
        "my-eval-model",
        "openai",
        "gpt-4.1",
        "openai/gpt-4.1",
        "exact alias from {packaged}",
    ),
    (
        "openai:gpt-4.1-mini",
        "openai",
        "gpt-4.1-mini",
        "openai/gpt-4.1-mini",
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
        "anthropic",
        "anthropic",
        "claude-sonnet-4-5",
        "anthropic/claude-sonnet-4-5",
        "provider shortcut: anthropic -> claude-sonnet-4-5",
    ),
    (
        "gemini/gemini-2.0-flash",
        "gemini",
        "gemini-2.0-flash",
        "gemini/gemini-2.0-flash",
        "LiteLLM route: gemini/...",
    ),
    (
        "claude-3-opus",
        "anthropic",
        "claude-3-opus",
        "anthropic/claude-3-opus",
        "heuristic: claude* -> anthropic",
    ),
    ("GPT-4o", "openai", "GPT-4o", "openai/GPT-4o", "heuristic: gpt* -> openai"),
    ("deepseek-ai/DeepSeek-R1", "local", "deepseek-ai/DeepSeek-R1", None, "name with '/' -> local"),
    ("./models/my-finetune", "local", "./models/my-finetune", None, "name with '/' -> local"),
]


@pytest.mark.parametrize(("name", "provider", "model_id", "route", "source"), RULES)
def test_resolve_json_is_the_resolution_and_its_rule(
    invoke_cli: InvokeCli,
    name: str,
    provider: str,
    model_id: str,
    route: str | None,
    source: str,
) -> None:
    resolution = resolve(name)
    expected = {**resolution.to_dict(), "limits": limits_in_force(resolution), "fallbacks": []}
    source = source.format(packaged=expected["source"].removeprefix("exact alias from "))
    result = invoke_cli("resolve", name, "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data == expected
    assert (data["provider"], data["model_id"], data["route"], data["source"]) == (  # type: ignore[index]
        provider,
        model_id,
        route,
        source,
    )


@pytest.mark.parametrize(("name", "provider", "model_id", "route", "source"), RULES[:4:3])
def test_resolve_table_shows_the_rule_through_the_console_script(
    run_cli: RunCli, name: str, provider: str, model_id: str, route: str | None, source: str
) -> None:
    result = run_cli("resolve", name)
    assert result.code == 0, result.stderr
    resolution = resolve(name)
    assert _field(result.stdout, "name") == name
    assert (
        _field(result.stdout, "rule")
        == resolution.source
        == source.format(packaged=resolution.source.removeprefix("exact alias from "))
    )
    assert _field(result.stdout, "provider") == f"{provider} ({resolution.kind})"
    assert _field(result.stdout, "model id") == model_id
    assert _field(result.stdout, "route") == (route or "- (local: vLLM, no LiteLLM route)")


POLICY = """
    [aliases."fast"]
    provider = "openai"
    model_id = "gpt-4.1-mini"
    fallbacks = ["steady", "local-backup"]

    [aliases."steady"]
    provider = "anthropic"
    model_id = "claude-3-5-haiku-latest"
    fallbacks = ["gemini-flash", "local-backup"]

    [aliases."gemini-flash"]
    provider = "gemini"
    model_id = "gemini-2.0-flash"

    [aliases."local-backup"]
    provider = "local"
    model_id = "Qwen/Qwen3-0.6B"

    [limits."openai"]
    rpm = 600

    [limits."fast"]
    concurrency = 8
    tpm = 100000
"""


def test_resolve_shows_the_limits_in_force_and_the_fallbacks_in_order(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(POLICY)
    result = invoke_cli("resolve", "fast")
    assert result.code == 0, result.stderr
    assert _field(result.stdout, "limits") == "openai: rpm=600; fast: tpm=100000 concurrency=8"
    # each fallback followed by its own, every name once (what get_client tries)
    assert _field(result.stdout, "fallbacks") == "steady, gemini-flash, local-backup"
    data = invoke_cli("resolve", "fast", "--json").json()
    assert data["limits"] == {"openai": {"rpm": 600}, "fast": {"tpm": 100000, "concurrency": 8}}  # type: ignore[index]
    assert data["fallbacks"] == ["steady", "gemini-flash", "local-backup"]  # type: ignore[index]


def test_resolve_without_declared_limits_or_fallbacks_says_none(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(POLICY)
    result = invoke_cli("resolve", "gemini-flash")
    assert (_field(result.stdout, "limits"), _field(result.stdout, "fallbacks")) == (
        "(none)",
        "(none)",
    )
    assert invoke_cli("resolve", "openai:gpt-4.1", "--json").json()["limits"] == {
        "openai": {"rpm": 600}
    }  # type: ignore[index]


def _field(out: str, label: str) -> str:
    """The value printed after `label` in resolve's two-column table."""
    for line in out.splitlines():
        if line.startswith(label + "  "):
            return line.removeprefix(label).strip()
    raise AssertionError(f"no {label!r} row in:\n{out}")


def test_resolve_an_alias_from_the_user_file_names_that_file(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file(
        """
        [aliases."team-model"]
        provider = "openai"
        model_id = "gpt-4.1-mini"

        [aliases."team-model".defaults]
        temperature = 0.7
        """
    )
    result = invoke_cli("resolve", "team-model", "--set", "temperature=0.2", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["source"] == f"exact alias from {path}"  # type: ignore[index]
    assert data["alias"] == "team-model"  # type: ignore[index]
    assert data["params"] == {"temperature": 0.2}  # type: ignore[index]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["temperature=0.2"], {"temperature": 0.2}),
        (["max_tokens=256"], {"max_tokens": 256}),
        (["stop_token_ids=[1,2]"], {"stop_token_ids": [1, 2]}),
        (["stop=['a', \"b\"]"], {"stop": ["a", "b"]}),
        (["trust_remote_code=true"], {"trust_remote_code": True}),
        (["tokenizer_mode=hf"], {"tokenizer_mode": "hf"}),
        (['tokenizer_mode="slow"'], {"tokenizer_mode": "slow"}),
        (["api_base=http://127.0.0.1:8000/v1"], {"api_base": "http://127.0.0.1:8000/v1"}),
        (["x=1", "x=2"], {"x": 2}),
        (["seed=-1"], {"seed": -1}),
        (["name=a=b"], {"name": "a=b"}),
        (["empty="], {"empty": ""}),
        (["extra_body={a = 1}"], {"extra_body": {"a": 1}}),
    ],
)
def test_set_values_parse_as_toml_and_bare_words_as_strings(
    items: list[str], expected: dict[str, Any]
) -> None:
    assert parse_sets(items) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("temperature", "'temperature' is not KEY=VALUE (e.g. --set temperature=0.2)"),
        ("=0.2", "'=0.2' is not KEY=VALUE (e.g. --set temperature=0.2)"),
        ("stop=[1,", "stop=[1,: not a valid TOML value"),
        ("bad key=1", "'bad key' is not a valid keyword name"),
    ],
)
def test_bad_set_items_are_usage_errors(item: str, message: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_sets([item])
    assert message in str(info.value)


def test_set_reaches_the_resolution_through_the_console_script(run_cli: RunCli) -> None:
    result = run_cli(
        "resolve",
        "Qwen/Qwen3-4B-Instruct-2507",
        "--set",
        "temperature=0.2",
        "--set",
        "stop_token_ids=[1,2]",
        "--set",
        "dtype=float32",
        "--json",
    )
    assert result.code == 0, result.stderr
    assert result.json()["params"] == {  # type: ignore[index]
        "dtype": "float32",
        "max_model_len": 32768,
        "trust_remote_code": True,
        "temperature": 0.2,
        "stop_token_ids": [1, 2],
    }


def test_bad_set_exits_2_with_usage_error(run_cli: RunCli) -> None:
    result = run_cli("resolve", "openai", "--set", "temperature")
    assert result.code == 2
    assert "'temperature' is not KEY=VALUE" in result.stderr
    assert no_traceback(result)


def test_unknown_model_prints_the_librarys_message_and_exits_1(run_cli: RunCli) -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve("my-eval-modle")
    result = run_cli("resolve", "my-eval-modle")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: {info.value}\n"
    assert "did you mean: 'my-eval-model'" in result.stderr
    assert no_traceback(result)


def test_unknown_model_with_debug_shows_the_traceback(run_cli: RunCli) -> None:
    result = run_cli("--debug", "resolve", "my-eval-modle")
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "UnknownModelError" in result.stderr


def test_split_on_a_hosted_model_says_it_is_for_local_models(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "my-eval-model", "--split")
    assert result.code == 1
    assert result.stderr == (
        "error: --split is for local models; 'my-eval-model' resolves to the hosted provider "
        "'openai', whose kwargs all go to LiteLLM\n"
    )


def test_split_without_vllm_is_one_library_error_with_the_install_hint(
    invoke_cli: InvokeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the split is the local client's own; without vLLM that client cannot be made
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if vLLM were not installed
    result = invoke_cli("resolve", "local:some/model", "--split")
    assert result.code == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert "vllm" in result.stderr.lower()  # what to install
    assert no_traceback(result)


@pytest.mark.parametrize(
    "item",
    [
        "temperature=nan",
        "temperature=inf",
        "temperature=-inf",
        "top_p=+nan",
        "logit_bias={a = inf}",
    ],
)
def test_set_rejects_numbers_that_are_not_finite(item: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_sets([item])
    assert str(info.value).startswith(f"{item}: not a finite number")


def test_set_nan_is_a_usage_error_naming_the_key_and_no_json(run_cli: RunCli) -> None:
    result = run_cli("resolve", "my-eval-model", "--set", "temperature=nan", "--json")
    assert result.code == 2, result.stderr
    assert "temperature=nan: not a finite number" in result.stderr
    assert result.stdout == ""
    assert no_traceback(result)


def test_set_quoted_nan_is_the_text(run_cli: RunCli) -> None:
    result = run_cli("resolve", "my-eval-model", "--set", "stop='nan'", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["params"] == {"stop": "nan"}  # type: ignore[index]


@pytest.mark.parametrize("name", ["gpt-4\x1b]0;pwned\x07", "gpt-4\x1b[31m", "claude\x9b2J"])
def test_a_name_with_terminal_escapes_prints_escaped(run_cli: RunCli, name: str) -> None:
    escaped = name.encode("unicode_escape").decode("ascii")
    for args in (("resolve", name), ("resolve", name, "--set", "temperature=0.2")):
        result = run_cli(*args)
        assert result.code in (0, 1), result.stderr  # resolved, or refused as a stray name
        shown = result.stdout + result.stderr
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", shown), shown
        assert escaped in shown, shown
        assert no_traceback(result)


# --- the typo guard ---------------------------------------------------------------------


def test_resolve_prints_the_typo_guard_warning_on_stderr(invoke_cli: InvokeCli) -> None:
    warnings = resolve("claude-sonet").warnings
    assert warnings  # the library's own warning, shown as it is
    result = invoke_cli("resolve", "claude-sonet")
    assert result.code == 0
    assert result.stderr == "".join(f"warning: {w}\n" for w in warnings)
    assert "did you mean 'claude-sonnet-4-5'" in result.stderr
    assert "alias 'claude-sonnet'" in result.stderr
    assert "anthropic/claude-sonet" in result.stdout  # the resolution still prints


def test_resolve_json_carries_the_warnings(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "gpt4o", "--json")
    assert result.code == 0
    data = result.json()
    assert isinstance(data, dict)
    assert data["warnings"] == list(resolve("gpt4o").warnings)
    assert "did you mean 'gpt-4o'" in data["warnings"][0]


def test_a_listed_model_resolves_without_a_warning(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "gpt-4o", "--json")
    assert result.code == 0
    assert result.stderr == ""
    data = result.json()
    assert isinstance(data, dict) and data["warnings"] == []


def test_resolve_strict_refuses_an_unlisted_id_with_the_suggestions(run_cli: RunCli) -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve("claude-sonet", strict=True)
    result = run_cli("resolve", "claude-sonet", "--strict")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: {info.value}\n"
    assert "did you mean 'claude-sonnet-4-5'" in result.stderr
    assert no_traceback(result)


def test_resolve_strict_lets_a_listed_id_through(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "claude-sonnet-4-5", "--strict")
    assert result.code == 0
    assert result.stderr == ""


def test_resolve_warns_about_misspelt_settings_and_strict_refuses_them(
    invoke_cli: InvokeCli,
) -> None:
    result = invoke_cli("resolve", "gpt-4o", "--set", "max_tokns=5", "--set", "temprature=0.2")
    assert result.code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "warning: kwarg 'max_tokns' is not a known parameter; did you mean 'max_tokens'?"
    )
    assert "did you mean 'temperature'?" in lines[1]
    refused = invoke_cli("resolve", "gpt-4o", "--set", "max_tokns=5", "--strict")
    assert refused.code == 1
    assert "Strict mode refuses a kwarg that looks misspelt" in refused.stderr
    assert "sent as written" not in refused.stderr


def test_resolve_warns_about_a_misspelt_provider(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "gropq/llama-3.3-70b-versatile")
    assert result.code == 0
    assert "looks like the provider 'groq'" in result.stderr
    assert invoke_cli("resolve", "GROQ/llama-3.3-70b-versatile").code == 1
