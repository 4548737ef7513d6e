"""How the CLI ends: a library error or a bad input file is one message and exit 1 (no
traceback), a usage error exits 2, Ctrl-C exits 130; `--debug` adds our error's traceback,
never the backend exceptions behind it."""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import InvokeCli, RunCli, no_traceback
from tests.fixtures.openai_server import FakeOpenAIServer

CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _assert_library_error(result_code: int, stderr: str, stdout: str) -> None:
    assert result_code == 1, stderr
    assert stdout == ""
    assert stderr.startswith("error: "), stderr
    assert "unexpected" not in stderr, stderr
    assert "Traceback" not in stderr


def test_no_server_listening_is_a_connection_error_not_a_crash(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path]
) -> None:
    alias_file(
        f"""
        [aliases."nowhere"]
        provider = "openai"
        model_id = "gpt-4.1"
        defaults = {{ api_base = "http://127.0.0.1:{_closed_port()}/v1", api_key = "sk-test" }}
        """
    )
    args = ("prompt", "nowhere", "hi", "--set", "num_retries=0")
    result = invoke_cli(*args)
    _assert_library_error(result.code, result.stderr, result.stdout)
    assert "HTTP 500" not in result.stderr  # no response came: no status to report
    debug = invoke_cli("--debug", *args)
    assert debug.code == 1
    assert "Traceback" in debug.stderr
    assert "APIConnectionError" in debug.stderr
    assert not any(line in debug.stderr for line in CHAINED), debug.stderr


def test_a_local_model_that_cannot_start_is_a_library_error(run_cli: RunCli) -> None:
    # With vLLM: EngineStartError (the id is in no cache, HF_HUB_OFFLINE is set);
    # without it: BackendNotInstalledError. Either is one message and exit 1.
    result = run_cli("prompt", "local:no-such-org/no-such-model", "hi", timeout=300)
    _assert_library_error(
        result.code, result.stderr[result.stderr.find("error: ") :], result.stdout
    )
    if importlib.util.find_spec("vllm") is not None:
        assert "no-such-org/no-such-model" in result.stderr
    else:
        assert "vllm" in result.stderr.lower()  # the install hint


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_an_alias_file_that_is_no_file_is_one_error(
    run_cli: RunCli, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"aliases-{kind}.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    for args in (("list",), ("resolve", "my-eval-model"), ("validate", str(path))):
        result = run_cli(*args, env={"MODEL_REGISTRY_ALIASES": str(path)}, timeout=60)
        assert result.code == 1, (args, result.stderr)
        assert str(path) in result.stdout + result.stderr
        assert no_traceback(result)
        assert "unexpected" not in result.stderr


def test_the_notes_of_a_library_error_are_printed_under_it(
    invoke_cli: InvokeCli, alias_file: Callable[..., Path], openai_server: FakeOpenAIServer
) -> None:
    """Why the call was not retried (a Retry-After over 60 s) is on the error, as a note:
    the CLI prints it, or a user sees a 429 and cannot tell the retries were skipped. (A
    key of its own: the hour-long cooldown is its provider's, in this process.)"""
    tag = uuid.uuid4().hex[:8]
    alias_file(
        f"""
        [aliases."quota"]
        provider = "openai"
        model_id = "quota-{tag}"
        defaults = {{ api_base = "{openai_server.base_url}", api_key = "sk-quota-{tag}" }}
        """
    )
    openai_server.configure(f"quota-{tag}", status=429, headers={"Retry-After": "3600"})
    result = invoke_cli("prompt", "quota", "hi")
    _assert_library_error(result.code, result.stderr, result.stdout)
    first, note = result.stderr.splitlines()[-2:]
    assert first.startswith("error: openai model") and "(HTTP 429)" in first
    assert note == "  not retried: the server asked to wait 3600 s, over the 60 s a retry waits"
    assert f"sk-quota-{tag}" not in result.stderr
