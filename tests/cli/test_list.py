"""`model-registry list` and `--list-models`: every alias and provider, for people and scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import list_available_models, list_providers
from tests.cli.conftest import InvokeCli, RunCli, lines, no_traceback

LONG_NAME = "some-organisation-with-a-long-name/a-really-long-model-name-v2-instruct"

USER_ALIASES = f"""
    [aliases."team-model"]
    provider = "anthropic"
    model_id = "claude-3-5-haiku-latest"
    description = "The team's default model for drafting distractors in many languages"

    [aliases."team-model".defaults]
    temperature = 0.2
    max_tokens = 512

    [aliases."{LONG_NAME}"]
    provider = "local"
    model_id = "{LONG_NAME}"
    description = "A local model whose name is longer than a narrow terminal"

    [aliases."{LONG_NAME}".defaults]
    dtype = "bfloat16"
    max_model_len = 4096
"""


def _plain(data: object) -> object:
    """The JSON form of `data` (tuples become lists, as in the CLI's output)."""
    return json.loads(json.dumps(data))


def test_list_json_is_list_available_models_and_list_providers(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(USER_ALIASES)
    result = run_cli("list", "--json")
    assert result.code == 0, result.stderr
    assert result.json() == {
        "aliases": _plain([alias.to_dict() for alias in list_available_models()]),
        "providers": _plain([spec.to_dict() for spec in list_providers()]),
    }


def test_list_json_names_the_file_each_alias_came_from(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file(USER_ALIASES)
    aliases = {a["name"]: a for a in run_cli("list", "--json").json()["aliases"]}  # type: ignore[index]
    assert aliases["team-model"]["source"] == str(path)
    assert aliases["team-model"]["defaults"] == {"temperature": 0.2, "max_tokens": 512}
    assert aliases["my-eval-model"]["source"].endswith("model_aliases.toml")


def test_list_models_flag_prints_the_same_as_list(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(USER_ALIASES)
    flag = run_cli("--list-models")
    command = run_cli("list")
    assert flag.code == command.code == 0, flag.stderr + command.stderr
    assert flag.stdout == command.stdout
    assert "team-model" in flag.stdout


def test_list_models_flag_with_a_command_is_a_usage_error(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("--list-models", "list")
    assert result.code == 2
    assert "--list-models" in result.stderr


def test_list_table_shows_every_alias_with_its_details(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file(USER_ALIASES)
    result = invoke_cli("list")
    assert result.code == 0, result.stderr
    out = result.stdout
    for alias in list_available_models():
        assert alias.name in out
        assert alias.model_id in out
        if alias.route is not None:
            assert alias.route in out
    team = next(line for line in lines(out) if "team-model" in line)
    for cell in ("anthropic", "claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest"):
        assert cell in team
    assert "temperature=0.2" in out
    assert "max_tokens=512" in out
    rows = _table_rows(out)
    assert rows["team-model"][-1] == str(path)  # the source column, folded but whole
    assert rows["my-eval-model"][-1].endswith("config/model_aliases.toml")
    assert "The team's default" in out


def _table_rows(out: str) -> dict[str, list[str]]:
    """The rows of the first boxed table, keyed by the first cell; multi-line cells joined."""
    rows: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines(out):
        if line.startswith("└"):
            break
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[0]:
            current = rows.setdefault(cells[0], cells)
        elif current is not None:
            for i, cell in enumerate(cells):
                current[i] += cell
    return rows


def test_providers_table_shows_key_env_var_and_whether_it_is_set(
    invoke_cli: InvokeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-real-key")
    result = invoke_cli("list")
    assert result.code == 0, result.stderr
    rows = {line.split()[1]: line for line in lines(result.stdout) if line.startswith("│")}
    assert "ANTHROPIC_API_KEY" in rows["anthropic"]
    assert " yes " in rows["anthropic"]
    assert "OPENAI_API_KEY" in rows["openai"]
    assert " no " in rows["openai"]
    assert "sk-ant-not-a-real-key" not in result.stdout


def test_names_are_never_cut_or_wrapped_in_a_narrow_terminal(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(USER_ALIASES)
    result = run_cli("list", env={"COLUMNS": "60"})
    assert result.code == 0, result.stderr
    out_lines = lines(result.stdout)
    assert "…" not in result.stdout
    for alias in list_available_models():
        for name in (alias.name, alias.model_id, alias.route):
            if name is not None:
                assert any(name in line for line in out_lines), f"{name!r} was cut or wrapped"


def test_list_provider_filter_keeps_that_providers_aliases(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(USER_ALIASES)
    result = invoke_cli("list", "--provider", "anthropic", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    expected = [a.name for a in list_available_models() if a.provider == "anthropic"]
    assert [a["name"] for a in data["aliases"]] == expected
    assert "team-model" in expected
    assert [p["name"] for p in data["providers"]] == ["anthropic"]


def test_list_unknown_provider_filter_names_the_known_ones(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("list", "--provider", "antropic")
    assert result.code == 1
    assert result.stderr == (
        "error: unknown provider 'antropic' for --provider; known providers: "
        "anthropic, deepseek, gemini, local, openai\n"
    )


def test_list_with_a_broken_alias_file_is_one_error_without_traceback(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file(
        """
        [aliases."x"]
        provider = "openai"
        temprature = 0.2
        """
    )
    result = run_cli("list")
    assert result.code == 1
    assert no_traceback(result)
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path}: alias 'x': unknown key 'temprature'; allowed keys: provider, "
        'model_id, defaults, description (call kwargs go under [aliases."x".defaults])\n'
    )
