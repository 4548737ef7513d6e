"""`model-registry validate`: every problem of the alias files, each naming file, alias and key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from model_registry import validate_files
from tests.cli.conftest import InvokeCli, RunCli, no_traceback

BROKEN = """
    [aliases."fast"]
    provider = "openai"
    temprature = 0.2

    [aliases."loc"]
    provider = "local"

    [aliases."ok"]
    provider = "openai"
    defaults = 3

    [aliases."typo-provider"]
    provider = "antropic"
    model_id = "claude-3-5-haiku-latest"
"""

FLEET = """
    [providers."fleet"]
    api_base = "http://127.0.0.1:9000/v1"
    api_key_env = "FLEET_API_KEY"

    [aliases."fleet-model"]
    provider = "fleet"
    model_id = "qwen"
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_validate_reports_every_problem_of_every_file(run_cli: RunCli, tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.toml", BROKEN)
    not_toml = _write(tmp_path / "not_toml.toml", '[aliases."x"\nprovider = "openai"\n')
    missing = tmp_path / "missing.toml"
    result = run_cli("validate", str(broken), str(not_toml), str(missing))
    assert result.code == 1
    assert no_traceback(result)
    assert result.stdout.splitlines() == [
        f"{broken}: alias 'fast': unknown key 'temprature'; allowed keys: provider, model_id, "
        'defaults, description, fallbacks (call kwargs go under [aliases."fast".defaults])',
        f"{broken}: alias 'loc': provider 'local' has no default model; "
        'add model_id = "<Hugging Face repo id or path>"',
        f"{broken}: alias 'ok': key 'defaults' must be a table of call kwargs, got an integer; "
        'write it as [aliases."ok".defaults]',
        f"{broken}: alias 'typo-provider': unknown provider 'antropic' (did you mean "
        "'anthropic'?); known providers: anthropic, deepseek, gemini, local, openai "
        "(or declare it in a [providers] table)",
        f"{not_toml}: invalid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 13)",
        f"{missing}: alias file not found; check the path",
    ]
    assert result.stderr == "\n6 problems found\n"


def test_validate_clean_files_says_ok_with_counts(invoke_cli: InvokeCli, tmp_path: Path) -> None:
    fleet = _write(tmp_path / "fleet.toml", FLEET)
    result = invoke_cli("validate", str(fleet))
    assert result.code == 0
    # the file is checked on top of the packaged aliases, and counted with them
    assert result.stdout.startswith("ok: 11 aliases in 2 files (")
    assert result.stdout.endswith(f"model_aliases.toml, {fleet})\n")


def test_validate_layers_files_in_order_so_a_later_one_may_use_earlier_providers(
    invoke_cli: InvokeCli, tmp_path: Path
) -> None:
    fleet = _write(tmp_path / "fleet.toml", FLEET)
    user = _write(
        tmp_path / "user.toml",
        """
        [aliases."fleet-big"]
        provider = "fleet"
        model_id = "qwen-72b"
        """,
    )
    result = invoke_cli("validate", str(fleet), str(user))
    assert result.code == 0
    assert result.stdout.startswith("ok: 12 aliases in 3 files (")
    assert result.stdout.endswith(f"model_aliases.toml, {fleet}, {user})\n")
    reversed_order = invoke_cli("validate", str(user), str(fleet))
    assert reversed_order.code == 1
    assert "alias 'fleet-big': unknown provider 'fleet'" in reversed_order.stdout


def test_validate_without_paths_checks_the_layered_set(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    clean = run_cli("validate")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert clean.stdout.startswith("ok: 10 aliases in 1 file (")
    assert clean.stdout.rstrip().endswith("config/model_aliases.toml)")

    user = alias_file(FLEET)
    layered = run_cli("validate")
    assert layered.code == 0, layered.stdout + layered.stderr
    assert layered.stdout.startswith("ok: 11 aliases in 2 files (")
    assert layered.stdout.rstrip().endswith(f"model_aliases.toml, {user})")


def test_validate_without_paths_reports_a_broken_env_file(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    path = alias_file('[aliases."x"]\nprovider = "openai"\nmodel = "gpt-4.1"\n')
    result = invoke_cli("validate")
    assert result.code == 1
    assert result.stdout == (
        f"{path}: alias 'x': unknown key 'model' (did you mean 'model_id'?); allowed keys: "
        'provider, model_id, defaults, description, fallbacks (call kwargs go under [aliases."x".defaults])\n'
    )


def test_validate_a_directory_is_a_problem_not_a_crash(
    invoke_cli: InvokeCli, tmp_path: Path
) -> None:
    result = invoke_cli("validate", str(tmp_path))
    assert result.code == 1
    assert result.stdout.startswith(f"{tmp_path}: ")  # one problem, naming the path
    assert result.stdout.count("\n") == 1
    assert "directory" in result.stdout.lower()


FOUR_PROBLEMS = """
    [aliases."a"]
    provider = "openai"
    temprature = 0.2

    [aliases."b"]
    provider = "openai"
    fallbacks = ["no-such-model-xyz"]

    [aliases."c"]
    provider = "openai"
    fallbacks = ["d"]

    [aliases."d"]
    provider = "openai"
    fallbacks = ["c"]

    [limits."b"]
    rpm = -1
"""


def test_validate_reports_every_problem_in_one_pass_cycles_included(
    invoke_cli: InvokeCli, tmp_path: Path
) -> None:
    path = _write(tmp_path / "four.toml", FOUR_PROBLEMS)
    result = invoke_cli("validate", str(path))
    assert result.code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"{path}: ")]
    assert len(lines) == 4, result.stdout
    assert lines[0].startswith(f"{path}: alias 'a': unknown key 'temprature'")
    assert lines[1].startswith(f"{path}: limits 'b': ")
    assert lines[2].startswith(f"{path}: alias 'b': fallback 'no-such-model-xyz' does not resolve")
    assert lines[3] == (
        f"{path}: alias 'c': fallbacks go round in a cycle: c -> d -> c; remove one of these "
        "fallbacks"
    )
    assert result.stderr == "\n4 problems found\n"


def test_a_broken_alias_named_as_a_fallback_is_one_problem_not_two(
    invoke_cli: InvokeCli, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "one.toml",
        """
        [aliases."a"]
        provider = "openai"
        fallbacks = ["b"]

        [aliases."b"]
        provider = "opnai"

        [limits."b"]
        rpm = 5
        """,
    )
    result = invoke_cli("validate", str(path))
    assert result.code == 1
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith(f"{path}: alias 'b': unknown provider 'opnai'")


def test_validate_checks_a_file_on_top_of_the_packaged_aliases(
    invoke_cli: InvokeCli, tmp_path: Path
) -> None:
    # as MODEL_REGISTRY_ALIASES would load it: limits and fallbacks may name packaged aliases
    path = _write(
        tmp_path / "mine.toml",
        """
        [limits."claude-sonnet"]
        rpm = 50

        [aliases."mine"]
        provider = "openai"
        fallbacks = ["claude-sonnet"]
        """,
    )
    result = invoke_cli("validate", str(path))
    assert result.code == 0, result.stdout
    assert result.stdout.startswith("ok: 11 aliases in 2 files (")
    assert result.stdout.rstrip().endswith(f"model_aliases.toml, {path})")
    assert validate_files(path) == []


def test_validate_and_list_full_warn_about_an_alias_whose_id_litellm_does_not_list(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    alias_file('[aliases."old-haiku"]\nprovider = "anthropic"\nmodel_id = "claude-3-5-haik"\n')
    checked = run_cli("validate")
    assert checked.code == 0, checked.stderr  # a warning, never a failure
    assert "warning: alias 'old-haiku': 'anthropic:claude-3-5-haik' is not in" in checked.stderr
    full = run_cli("list", "--full")
    assert full.code == 0 and "warning: alias 'old-haiku'" in full.stderr
    assert "old-haiku" not in run_cli("list").stderr  # the default list reads no model list
