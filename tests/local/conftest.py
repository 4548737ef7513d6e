"""Fixtures for the local-engine tests: the tiny model and one vLLM engine for the session.

Without vLLM these tests skip, unless MODEL_REGISTRY_REQUIRE_VLLM=1 (as in CI), which
turns the missing vLLM into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.processes import stop_process
from tests.fixtures.tiny_model import tiny_model_dir

__all__ = ["ENGINE_KWARGS", "SERVED_NAME", "tiny_model_dir"]

REQUIRE_ENV = "MODEL_REGISTRY_REQUIRE_VLLM"

#: Engine args of the shared engine: a small KV cache (the default memory fraction
#: fails on CPU) and no torch.compile (start-up time dominates these tests).
ENGINE_KWARGS: dict[str, Any] = {"kv_cache_memory_bytes": 64 * 1024 * 1024, "enforce_eager": True}


def _vllm_installed() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(autouse=True, scope="session")
def _require_vllm() -> None:
    """Skip without vLLM, or fail when MODEL_REGISTRY_REQUIRE_VLLM=1."""
    if _vllm_installed():
        return
    from model_registry.clients._vllm_params import INSTALL_HINT

    message = f"vllm is not installed ({INSTALL_HINT})"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {message}", pytrace=False)
    pytest.skip(f"{message}; skipping the local-engine tests")


@pytest.fixture(autouse=True, scope="session")
def _offline_engine_env(_require_vllm: None) -> Iterator[None]:
    """No network for the engines: the tiny model is local, usage stats stay off."""
    wanted = {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_name(tiny_model_dir: Path) -> str:
    """The explicit name of the tiny model: "local:<dir>"."""
    return f"local:{tiny_model_dir}"


@pytest.fixture(scope="session")
async def tiny(tiny_name: str) -> AsyncIterator[Any]:
    """A started client on the session's shared engine (greedy by default)."""
    from model_registry import get_client

    client = await get_client(tiny_name, temperature=0.0, **ENGINE_KWARGS)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    """The tiny model's tokenizer, as transformers loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


# --- a vLLM OpenAI-compatible server (started on first use; booting it beside the shared
# engine was slower on 2 cores, 334 s against 252 s for the suite) -------------------------

SERVED_NAME = "tiny"
_server: tuple[subprocess.Popen[bytes], str, Path] | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch_server(model_dir: Path, log_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    global _server
    if _server is None:
        port = _free_port()
        log = log_dir / "vllm-server.log"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", SERVED_NAME,
            "--host", "127.0.0.1", "--port", str(port),
            "--kv-cache-memory-bytes", str(64 * 1024 * 1024), "--enforce-eager",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _server = (process, f"http://127.0.0.1:{port}", log)
    return _server


@pytest.fixture(scope="session")
def _server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-server")


@pytest.fixture(scope="session", autouse=True)
def _stop_server(_require_vllm: None) -> Iterator[None]:
    """Stop the server at the end of the session, if a test started it."""
    yield
    if _server is not None:
        stop_process(_server[0], timeout=30)


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, _server_dir: Path) -> str:
    """`python -m vllm.entrypoints.openai.api_server` on the tiny model; its /v1 base URL."""
    process, base, log = _launch_server(tiny_model_dir, _server_dir)
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"the vLLM server exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return f"{base}/v1"
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the vLLM server did not start in 300 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
