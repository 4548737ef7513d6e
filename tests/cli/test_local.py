"""The CLI on local models: `resolve --split` and `prompt` against the tiny vLLM model."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from tests.cli.conftest import InvokeCli, RunCli, heavy_modules
from tests.fixtures.tiny_model import tiny_model_dir

__all__ = ["tiny_model_dir"]

pytestmark = pytest.mark.local

if (
    importlib.util.find_spec("vllm") is None
    and os.environ.get("MODEL_REGISTRY_REQUIRE_VLLM") != "1"
):
    pytest.skip("vLLM is not installed (see README: Local models)", allow_module_level=True)

#: Enough KV cache for the tiny model on CPU (the default memory fraction fails here).
KV_CACHE = "kv_cache_memory_bytes=67108864"


def test_resolve_split_shows_engine_args_and_sampling_params(invoke_cli: InvokeCli) -> None:
    result = invoke_cli(
        "resolve",
        "Nanbeige/Nanbeige4.1-3B",
        "--split",
        "--set",
        "temperature=0.3",
        "--set",
        "seed=1",
        "--json",
    )
    assert result.code == 0, result.stderr
    assert result.json()["split"] == {  # type: ignore[index]
        "engine": {"tokenizer_mode": "hf"},
        "sampling": {"stop_token_ids": [166101], "temperature": 0.3, "seed": 1},
        "options": {},
    }


def test_resolve_split_names_an_unknown_kwarg(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("resolve", "local:some/model", "--split", "--set", "tempreture=0.3")
    assert result.code == 1
    assert result.stderr.startswith(
        "error: unknown parameter 'tempreture' (did you mean 'temperature'?)"
    )


def test_prompt_a_local_model_imports_vllm_not_litellm(
    run_cli: RunCli, tiny_model_dir: Path
) -> None:
    result = run_cli(
        "prompt",
        f"local:{tiny_model_dir}",
        "hello",
        "--no-stream",
        "--set",
        "max_tokens=8",
        "--set",
        KV_CACHE,
        probe_imports=True,
        timeout=300,
    )
    assert result.code == 0, result.stderr
    footer = re.search(
        r"^local:\S+ \| finish: (length|stop) \| tokens: \d+ prompt \+ (\d+) completion = \d+ "
        r"\| latency: \d+\.\d\d s$",
        result.stderr,
        re.MULTILINE,
    )
    assert footer is not None, result.stderr
    assert int(footer.group(2)) <= 8
    loaded = heavy_modules(result)
    assert "vllm" in loaded
    assert "litellm" not in loaded


def test_run_a_local_model_writes_every_answer_and_a_rerun_takes_them_from_the_store(
    run_cli: RunCli, tiny_model_dir: Path, cli_dir: Path
) -> None:
    (cli_dir / "prompts.jsonl").write_text('"hello"\n{"id": "b", "prompt": "world"}\n')
    args = ("run", f"local:{tiny_model_dir}", "prompts.jsonl", "--out", "results.jsonl")
    sets = ("--set", "max_tokens=4", "--set", "temperature=0", "--set", KV_CACHE)

    result = run_cli(*args, *sets, timeout=300)

    assert result.code == 0, result.stderr
    assert "2 prompts in" in result.stderr
    assert "2 calls made, 0 from the store, 0 failed" in result.stderr
    written = (cli_dir / "results.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in written.splitlines()]
    assert [line["id"] for line in lines] == [0, "b"]
    for line in lines:
        assert line["error"] is None
        assert line["finish_reason"] in ("length", "stop")
        assert 1 <= line["usage"]["completion_tokens"] <= 4
        assert line["cost"] is None  # a local model has no price

    again = run_cli(*args, *sets, timeout=300)

    assert again.code == 0, again.stderr
    assert "0 calls made, 2 from the store, 0 failed" in again.stderr
    assert (cli_dir / "results.jsonl").read_text(encoding="utf-8") == written
