"""Startup stays light (no heavy imports) and credentials never reach any output."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import HEAVY_MODULES, InvokeCli, RunCli, heavy_modules
from tests.fixtures.openai_server import FakeOpenAIServer


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("list",),
        ("list", "--json"),
        ("--list-models",),
        ("resolve", "Qwen/Qwen3-4B-Instruct-2507", "--set", "temperature=0.2"),
        ("resolve", "my-eval-model", "--json"),
        ("resolve", "no-such-model"),
        ("resolve", "claude-sonet"),
        ("resolve", "claude-sonet", "--strict"),
        ("run", "--help"),
        ("validate",),
        ("prompt", "--help"),
        ("--version",),
    ],
    ids=lambda args: " ".join(args),
)
def test_commands_import_none_of_litellm_vllm_torch_transformers(
    run_cli: RunCli, args: tuple[str, ...]
) -> None:
    result = run_cli(*args, probe_imports=True)
    assert result.code in (0, 1), result.stderr
    assert heavy_modules(result) == []


def test_hosted_prompt_imports_litellm_only(
    run_cli: RunCli, openai_server: FakeOpenAIServer, alias_file: Callable[..., Path]
) -> None:
    alias_file(
        f"""
        [aliases."loopback"]
        provider = "openai"
        model_id = "cli-imports"
        defaults = {{ api_base = "{openai_server.base_url}", api_key = "sk-test" }}
        """
    )
    result = run_cli("prompt", "loopback", "hi", probe_imports=True)
    assert result.code == 0, result.stderr
    assert heavy_modules(result) == ["litellm"]
    assert set(HEAVY_MODULES) - {"litellm"} == {"vllm", "torch", "transformers"}


@pytest.mark.parametrize("args", [("list",), ("--help",), ("resolve", "my-eval-model")])
def test_commands_that_call_no_model_load_no_event_loop(
    cli_dir: Path, args: tuple[str, ...]
) -> None:
    # asyncio (and ssl with it) loads with `prompt` and `run`, which need it
    code = (
        "import json, sys\n"
        f"sys.argv = ['model-registry', *{args!r}]\n"
        "from model_registry_cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print(json.dumps(sorted({'asyncio', 'ssl'} & set(sys.modules))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cli_dir, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_same_cli(run_cli: RunCli, cli_dir: Path) -> None:
    module = subprocess.run(
        [sys.executable, "-m", "model_registry", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=cli_dir,
        check=True,
    )
    assert module.stdout == run_cli("list", "--json").stdout


def test_version_is_the_installed_package_metadata(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("--version")
    installed = importlib.metadata.version("model-registry-llm")
    assert (result.code, result.stdout) == (0, f"model-registry {installed}\n")


@pytest.mark.parametrize("command", [("list",), ("resolve", "gpt-4o")])
def test_debug_is_accepted_after_the_command_too(
    invoke_cli: InvokeCli, command: tuple[str, ...]
) -> None:
    assert invoke_cli(*command, "--debug").code == 0
    assert invoke_cli("--debug", *command).code == 0


def test_debug_after_the_command_shows_the_traceback(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "no-such-model", "--debug")
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "UnknownModelError" in result.stderr
    assert "Traceback" not in invoke_cli("resolve", "no-such-model").stderr


def test_no_command_prints_help(invoke_cli: InvokeCli) -> None:
    result = invoke_cli()
    assert result.code == 0
    for command in ("list", "resolve", "prompt", "validate", "--install-completion"):
        assert command in result.stdout


def test_unknown_command_is_a_usage_error(invoke_cli: InvokeCli) -> None:
    assert invoke_cli("lsit").code == 2


SENTINELS = ("sk-SENTINEL-env-7f3a", "sk-SENTINEL-alias-91bc", "sk-SENTINEL-set-c0de")


def test_api_keys_never_appear_in_any_output(
    invoke_cli: InvokeCli,
    run_cli: RunCli,
    openai_server: FakeOpenAIServer,
    alias_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_key, alias_key, set_key = SENTINELS
    alias_file(
        f"""
        [aliases."loopback"]
        provider = "openai"
        model_id = "cli-secrets"

        [aliases."loopback".defaults]
        api_base = "{openai_server.base_url}"
        api_key = "{alias_key}"
        hf_token = "{alias_key}"
        """
    )
    env = {"OPENAI_API_KEY": env_key, "ANTHROPIC_API_KEY": env_key}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runs = [
        ("list",),
        ("list", "--json"),
        ("--list-models",),
        ("resolve", "loopback"),
        ("resolve", "loopback", "--json"),
        ("resolve", "loopback", "--set", f"api_key={set_key}", "--json"),
        ("resolve", "claude-haiku", "--set", f"api_key={set_key}", "--set", f"x_secret={set_key}"),
        ("resolve", "no-such-model", "--set", f"api_key={set_key}"),
        ("validate",),
        ("--debug", "resolve", "loopback", "--set", f"api_key={set_key}"),
        ("prompt", "loopback", "hello", "--set", f"api_key={set_key}"),
        ("prompt", "loopback", "hello", "--json"),
        ("prompt", "my-eval-model", "hello", "--set", f"api_base={openai_server.base_url}"),
    ]
    for args in runs:  # in-process (fast); the console script below
        result = invoke_cli(*args)
        for sentinel in SENTINELS:
            assert sentinel not in result.stdout + result.stderr, (args, result)
    listed = run_cli("list", env=env)
    assert not any(sentinel in listed.stdout + listed.stderr for sentinel in SENTINELS)
    resolved = run_cli("resolve", "loopback", "--json", env=env).json()
    assert resolved["params"]["api_key"] == "***"  # type: ignore[index]
    assert resolved["params"]["hf_token"] == "***"  # type: ignore[index]


def test_a_key_that_a_401_echoes_never_prints_even_with_debug(
    invoke_cli: InvokeCli,
    openai_server: FakeOpenAIServer,
    alias_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_key, alias_key, set_key = SENTINELS
    monkeypatch.setenv("FLEET_API_KEY", env_key)
    alias_file(
        f"""
        [providers.fleet]
        api_base = "{openai_server.base_url}"
        api_key_env = "FLEET_API_KEY"

        [aliases."key-from-env"]
        provider = "fleet"
        model_id = "cli-401-env"

        [aliases."key-in-alias"]
        provider = "openai"
        model_id = "cli-401-alias"
        defaults = {{ api_base = "{openai_server.base_url}", api_key = "{alias_key}" }}

        [aliases."key-from-set"]
        provider = "openai"
        model_id = "cli-401-set"
        defaults = {{ api_base = "{openai_server.base_url}" }}
        """
    )
    cases = [
        ("key-from-env", "cli-401-env", env_key, ()),
        ("key-in-alias", "cli-401-alias", alias_key, ()),
        ("key-from-set", "cli-401-set", set_key, ("--set", f"api_key={set_key}")),
    ]
    for alias, model, key, extra in cases:
        openai_server.configure(
            model,
            status=401,
            message=f"Incorrect API key provided: {key}. Find your key at https://example.test",
            error_type="invalid_request_error",
            error_code="invalid_api_key",
        )
        for debug in ((), ("--debug",)):
            args = (*debug, "prompt", alias, "hello", "--set", "num_retries=0", *extra)
            result = invoke_cli(*args)
            assert openai_server.stats(model).headers[-1]["authorization"] == f"Bearer {key}"
            for sentinel in SENTINELS:
                assert sentinel not in result.stdout + result.stderr, (args, result.stderr)
            assert result.code == 1, result.stderr
            assert "error: " in result.stderr
            assert "Incorrect API key provided" in result.stderr
            if debug:
                assert "Traceback" in result.stderr
                assert "AuthenticationError" in result.stderr


def test_list_and_resolve_hide_headers_url_passwords_and_nested_keys(
    run_cli: RunCli, alias_file: Callable[..., Path]
) -> None:
    sentinel = "SENTINEL-nested-5e11"
    alias_file(
        f"""
        [aliases."guarded"]
        provider = "openai"
        model_id = "gpt-4.1"

        [aliases."guarded".defaults]
        api_base = "https://user:{sentinel}@llm.example.test/v1"
        extra_headers = {{ Authorization = "Bearer {sentinel}", x-api-key = "{sentinel}" }}
        extra_body = {{ api_key = "{sentinel}", options = {{ password = "{sentinel}" }} }}
        """
    )
    for args in (
        ("list",),
        ("list", "--full"),
        ("list", "--json"),
        ("resolve", "guarded"),
        ("resolve", "guarded", "--json"),
        ("resolve", "guarded", "--set", f"extra_headers={{Authorization = 'Bearer {sentinel}'}}"),
    ):
        result = run_cli(*args)
        assert result.code == 0, result.stderr
        assert sentinel not in result.stdout + result.stderr, (args, result.stdout)
    params = run_cli("resolve", "guarded", "--json").json()["params"]  # type: ignore[index]
    assert params["api_base"].endswith("@llm.example.test/v1")
    assert "llm.example.test" in params["api_base"]
