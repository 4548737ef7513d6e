"""Every failure to start a local engine is one of ours, says why, and holds no secret."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from model_registry import get_client
from model_registry.clients._vllm_params import DEFAULT_STRUCTURED_OUTPUTS
from model_registry.errors import EngineStartError, InvalidParameterError, ModelRegistryError
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

SECRET = "hf_sentinel_0123456789abcdef"


def _all_text(error: BaseException) -> str:
    """The error as a traceback prints it, its chain included."""
    return "".join(traceback.format_exception(error))


async def test_a_hub_id_that_cannot_be_found_offline_is_an_engine_start_error() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set for the session by conftest
    client = get_client("local:nosuchorg/nosuchmodel", hf_token=SECRET, **ENGINE_KWARGS)
    with pytest.raises(EngineStartError) as info:
        await client.generate("hi")
    message = str(info.value)
    assert isinstance(info.value, ModelRegistryError) and isinstance(info.value, RuntimeError)
    assert message.startswith(
        "the local engine for 'nosuchorg/nosuchmodel' could not start: LocalEntryNotFoundError: "
    )
    assert (
        "'nosuchorg/nosuchmodel' was looked up in the local Hugging Face cache only "
        "(HF_HUB_OFFLINE is set): check the id for typos" in message
    )
    assert SECRET not in _all_text(info.value)
    assert client.engine is None


async def test_an_engine_arg_value_vllm_rejects_is_an_invalid_parameter_error(
    tiny_model_dir: Path,
) -> None:
    client = get_client(f"local:{tiny_model_dir}", dtype="float99", **ENGINE_KWARGS)
    with pytest.raises(InvalidParameterError) as info:
        await client.generate("hi")
    engine_args = {
        "dtype": "float99",
        **ENGINE_KWARGS,
        "structured_outputs_config": dict(DEFAULT_STRUCTURED_OUTPUTS),
    }
    assert str(info.value).startswith(
        f"vLLM rejected the engine args {engine_args!r} for '{tiny_model_dir}': ValidationError: "
    )


_NO_GUARD_SCRIPT = """\
import asyncio
from model_registry import get_client
try:
    asyncio.run(get_client({name!r}, **{kwargs!r}).generate("hi", max_tokens=2))
except Exception as exc:
    print(__name__, type(exc).__name__, exc, flush=True)
    raise
"""


def test_a_script_without_a_main_guard_is_told_to_add_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(_NO_GUARD_SCRIPT.format(name=f"local:{tiny_model_dir}", kwargs=ENGINE_KWARGS))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    lines = {line.split(" ", 1)[0]: line for line in result.stdout.splitlines()}
    assert result.returncode == 1, result.stderr[-3000:]
    add_the_guard = (
        "vLLM starts its engine in a new process that re-runs your script (multiprocessing "
        "'spawn'), so the code that starts the engine must sit under "
        '`if __name__ == "__main__":`'
    )
    # the script itself: vLLM's engine process died; ours names the line to guard
    parent = lines["__main__"]
    assert parent.startswith(
        f"__main__ EngineStartError the local engine for '{tiny_model_dir}' could not start: "
    ), result.stdout
    assert add_the_guard in parent and f"({script}:4 is outside it)" in parent
    # vLLM's process re-running the script stops at once, with the same fix
    child = lines["__mp_main__"]
    assert "the script started it while being re-run in a new process" in child
    assert add_the_guard in child
