"""`model-registry list` and `--list-models`: every alias and provider, for people and scripts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import limits_in_force, list_available_models, list_providers, resolve
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
        "aliases": _plain(
            [
                {**alias.to_dict(), "limits": limits_in_force(resolve(alias.name))}
                for alias in list_available_models()
            ]
        ),
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


def test_list_shows_one_line_per_alias_with_name_provider_and_route(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(USER_ALIASES)
    result = invoke_cli("list")
    assert result.code == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in lines(result.stdout) if line.strip()}
    assert rows["alias"] == ["alias", "provider", "route"]
    for alias in list_available_models():
        route = alias.route if alias.route is not None else alias.model_id
        assert rows[alias.name] == [alias.name, alias.provider, route]
    assert rows["team-model"] == ["team-model", "anthropic", "anthropic/claude-3-5-haiku-latest"]
    # the details are behind --full
    assert "temperature" not in result.stdout
    assert "The team's default" not in result.stdout


def test_list_full_shows_every_field_of_each_alias(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file(USER_ALIASES)
    result = invoke_cli("list", "--full")
    assert result.code == 0, result.stderr
    records = _records(result.stdout)
    assert records["team-model"] == {
        "provider": "anthropic",
        "model id": "claude-3-5-haiku-latest",
        "route": "anthropic/claude-3-5-haiku-latest",
        "defaults": "temperature=0.2 max_tokens=512",
        "description": "The team's default model for drafting distractors in many languages",
        "fallbacks": "(none)",
        "source": str(path),
        "limits": "(none)",
    }
    for alias in list_available_models():
        assert records[alias.name]["model id"] == alias.model_id
        assert records[alias.name]["source"] == alias.source
    assert records[LONG_NAME]["route"] == "-"
    assert records["provider anthropic"]["api key env"] == "ANTHROPIC_API_KEY"


LIMITED = """
    [aliases."fast"]
    provider = "openai"
    model_id = "gpt-4.1-mini"
    fallbacks = ["slow"]

    [aliases."slow"]
    provider = "anthropic"
    model_id = "claude-3-5-haiku-latest"

    [limits."openai"]
    rpm = 600
    tpm = 150000.5

    [limits."fast"]
    concurrency = 8
"""


def test_list_full_shows_the_limits_each_alias_runs_under(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(LIMITED)
    result = invoke_cli("list", "--full")
    assert result.code == 0, result.stderr
    records = _records(result.stdout)
    assert records["fast"]["limits"] == "openai: rpm=600 tpm=150000.5; fast: concurrency=8"
    assert records["fast"]["fallbacks"] == "slow"
    assert records["slow"]["limits"] == "(none)"
    assert records["my-eval-model"]["limits"] == "openai: rpm=600 tpm=150000.5"


def test_list_json_carries_the_limits_in_force_by_the_name_they_were_declared_for(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(LIMITED)
    aliases = {a["name"]: a for a in invoke_cli("list", "--json").json()["aliases"]}  # type: ignore[index]
    assert aliases["fast"]["limits"] == {
        "openai": {"rpm": 600, "tpm": 150000.5},
        "fast": {"concurrency": 8},
    }
    assert aliases["slow"]["limits"] == {}


def _records(out: str) -> dict[str, dict[str, str]]:
    """The blocks of `list --full`: a name line, then indented `label  value` lines (a value
    continued on the next lines, further indented, is joined with a space)."""
    records: dict[str, dict[str, str]] = {}
    fields: dict[str, str] = {}
    label = ""
    for line in lines(out):
        if line and not line.startswith(" "):
            fields = records.setdefault(line, {})
        elif line.startswith("  ") and not line.startswith("   "):
            label, _, value = line.strip().partition("  ")
            fields[label] = value.strip()
        elif line.strip():
            fields[label] += " " + line.strip()
    return records


def test_list_fits_an_80_column_terminal(run_cli: RunCli, alias_file: Callable[..., Path]) -> None:
    alias_file(USER_ALIASES)
    unbreakable = {
        name
        for alias in list_available_models()
        for name in (alias.name, alias.model_id, alias.route, alias.source)
        if name is not None
    }
    for args in (("list",), ("list", "--full")):
        result = run_cli(*args, env={"COLUMNS": "80"})
        assert result.code == 0, result.stderr
        for line in lines(result.stdout):
            # only a name (or a path) that cannot be broken may run past the edge, as the
            # last word of its line
            assert len(line) <= 80 or line.split()[-1] in unbreakable, (args, line)
    full = run_cli("list", "--full", env={"COLUMNS": "80"}).stdout
    assert "max_tokens=512" in full
    assert "model_aliases.toml" in full


def test_list_sources_are_absolute_in_json_and_as_given_in_full(
    run_cli: RunCli, cli_dir: Path
) -> None:
    (cli_dir / "mine.toml").write_text(
        '[aliases."mine"]\nprovider = "openai"\nmodel_id = "gpt-4.1"\n', encoding="utf-8"
    )
    data = run_cli("list", "--json", env={"MODEL_REGISTRY_ALIASES": "mine.toml"}).json()
    sources = {a["name"]: a["source"] for a in data["aliases"]}  # type: ignore[index]
    assert sources["mine"] == str(cli_dir / "mine.toml")
    assert all(Path(source).is_absolute() for source in sources.values())
    full = run_cli("list", "--full", env={"MODEL_REGISTRY_ALIASES": "mine.toml"})
    assert _records(full.stdout)["mine"]["source"].endswith("mine.toml")


ESCAPES = """
    [aliases."evil\\u001b]0;pwned\\u0007"]
    provider = "openai"
    model_id = "gpt-4.1\\u001b[31m"
    description = "red \\u001b[31mtext\\u001b[0m, a C1 CSI \\u009b2J and a bidi \\u202e override"
"""


def test_terminal_escapes_in_alias_files_print_escaped(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(ESCAPES)
    for args in (("list",), ("list", "--full"), ("resolve", "evil\x1b]0;pwned\x07")):
        result = run_cli(*args)
        assert result.code == 0, result.stderr
        shown = result.stdout + result.stderr
        assert not _CONTROL.search(shown), (args, shown)
        assert "evil\\x1b]0;pwned\\x07" in shown, (args, shown)
        assert "gpt-4.1\\x1b[31m" in shown, (args, shown)
    full = run_cli("list", "--full").stdout
    assert "red \\x1b[31mtext\\x1b[0m, a C1 CSI \\x9b2J and a bidi \\u202e override" in full


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


def test_list_json_keeps_escaped_names_valid_and_exact(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(ESCAPES)
    result = run_cli("list", "--json")
    assert result.code == 0, result.stderr
    assert not _CONTROL.search(result.stdout)
    (evil,) = [a for a in result.json()["aliases"] if a["name"].startswith("evil")]  # type: ignore[index]
    assert evil["name"] == "evil\x1b]0;pwned\x07"
    assert evil["description"].startswith("red \x1b[31mtext\x1b[0m, a C1 CSI \x9b2J")


def test_providers_show_key_env_var_and_whether_it_is_set(
    invoke_cli: InvokeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-real-key")
    result = invoke_cli("list")
    assert result.code == 0, result.stderr
    rows = {line.split()[0]: line for line in lines(result.stdout) if line.strip()}
    assert rows["provider"].split() == ["provider", "kind", "key", "default", "model"]
    assert rows["anthropic"].split()[:4] == ["anthropic", "hosted", "ANTHROPIC_API_KEY", "(set)"]
    assert rows["openai"].split()[:5] == ["openai", "hosted", "OPENAI_API_KEY", "(not", "set)"]
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
        'model_id, defaults, description, fallbacks (call kwargs go under [aliases."x".defaults])\n'
    )
