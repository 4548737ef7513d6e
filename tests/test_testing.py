"""`model_registry.testing`, used as a user's test suite uses it: a pipeline runs offline,
with no keys, against the fake OpenAI server, which fails on cue; a tiny local model."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from model_registry import AuthenticationError, ServiceUnavailableError, get_client
from model_registry.testing import (
    FakeOpenAIServer,
    build_tiny_model,
    fake_openai_server,
    openai_server_fixture,
)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider key in the environment: the fake server needs none."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(var, raising=False)


async def test_a_pipeline_runs_offline_against_the_fake_server(no_keys: None) -> None:
    async with fake_openai_server() as server:
        assert server.url.endswith("/v1")
        g = await get_client("openai:any", api_base=server.url).generate("hi")
        assert g.text == "echo: hi"
        stats = server.stats("any")
        assert stats.requests == 1
        assert stats.bodies[-1]["messages"] == [{"role": "user", "content": "hi"}]


async def test_fault_rules_fail_calls_with_the_typed_error(no_keys: None) -> None:
    async with fake_openai_server() as server:
        client = get_client("openai:any", api_base=server.url)
        server.configure("any", status=401, message="no such key")
        with pytest.raises(AuthenticationError, match="no such key") as caught:
            await client.generate("hi")
        assert caught.value.status_code == 401
        # a prompt's own rule: this prompt fails with a 503 every time, retries included
        with pytest.raises(ServiceUnavailableError):
            await get_client("openai:other", api_base=server.url).generate("hi !status=503")
        assert server.stats("other").requests >= 2  # the call was retried, then gave up


async def test_the_server_stops_with_its_block(no_keys: None) -> None:
    async with fake_openai_server() as server:
        pid = server.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):  # stopped and reaped (a zombie still has its pid)
        os.kill(pid, 0)


#: Makes torch and transformers unimportable, as on a machine without vLLM.
NO_TORCH = (
    "import sys, importlib.abc\n"
    "class NoTorch(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'transformers'): raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


def test_build_tiny_model_without_torch_says_what_to_install(tmp_path: Path) -> None:
    code = NO_TORCH + (
        "from model_registry import BackendNotInstalledError\n"
        "from model_registry.testing import build_tiny_model\n"
        "try:\n"
        f"    build_tiny_model({str(tmp_path / 'tiny')!r})\n"
        "except BackendNotInstalledError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'vllm>=0.32,<0.33'" in out.stdout
    assert "missing: torch, transformers" in out.stdout
    assert not (tmp_path / "tiny").exists()  # nothing half-built left behind


def _transformers_installed() -> bool:
    try:
        return importlib.util.find_spec("transformers") is not None
    except (ImportError, ValueError):
        return False


@pytest.mark.local  # only vLLM brings torch and transformers
@pytest.mark.skipif(not _transformers_installed(), reason="transformers comes with vLLM")
def test_build_tiny_model_writes_a_model_a_tokenizer_and_a_chat_template(tmp_path: Path) -> None:
    out = build_tiny_model(tmp_path / "tiny")
    assert out == tmp_path / "tiny"
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in out.iterdir()
    }
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"]) == ("llama", 2)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in chat
    assert build_tiny_model(out) == out  # built once: a second call returns it as is


async def test_a_request_in_flight_across_a_reset_still_leaves_the_counts(no_keys: None) -> None:
    async with fake_openai_server() as server:
        client = get_client("openai:any", api_base=server.url)
        call = asyncio.create_task(client.generate("slow !delay=1"))
        while not server.stats().in_flight:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.01)
        server.reset()
        await call
        assert (await server.await_idle()).in_flight == 0
        await client.aclose()


# -- an enforced rate limit: real requests, as any client sends them ------------------------

enforcing_server = openai_server_fixture(scope="module")


def _post(client: httpx.Client, server: FakeOpenAIServer, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return client.post(f"{server.url}/chat/completions", json=body)


def test_rpm_600_refuses_the_16th_request_in_a_second_until_its_retry_after(
    enforcing_server: FakeOpenAIServer,
) -> None:
    server, model = enforcing_server, f"strict-{uuid.uuid4().hex[:8]}"
    server.configure(model, rpm=600)  # at most 15 (1.5x 600/60) in any second
    with httpx.Client() as client:
        answers = [_post(client, server, model) for _ in range(16)]
        starts = server.request_starts(model)
        assert starts[-1] - starts[0] < 1.0  # all in one second (else the count is another)
        assert [a.status_code for a in answers] == [200] * 15 + [429]
        refused = answers[-1]
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
        assert "Rate limit reached for" in error["message"]
        # when the first of the 15 leaves the trailing second, rounded up
        assert refused.headers["Retry-After"] == "1"
        millis = int(refused.headers["retry-after-ms"])
        assert abs(millis - (starts[0] + 1.0 - starts[-1]) * 1000) <= 5
        time.sleep(millis / 1000)
        assert _post(client, server, model).status_code == 200  # admitted once it is due
    stats = server.stats(model)
    assert (stats.requests, stats.rejected) == (17, 1)  # the refused request was not admitted


def test_rpm_counts_the_trailing_60_seconds_and_a_new_rule_starts_afresh(
    enforcing_server: FakeOpenAIServer,
) -> None:
    server, model = enforcing_server, f"minute-{uuid.uuid4().hex[:8]}"
    server.configure(model, rpm=2)  # 2 a minute, 1 a second
    with httpx.Client() as client:
        assert _post(client, server, model).status_code == 200
        too_soon = _post(client, server, model)
        assert (too_soon.status_code, too_soon.headers["Retry-After"]) == (429, "1")
        time.sleep(1.05)
        assert _post(client, server, model).status_code == 200
        time.sleep(1.05)
        over = _post(client, server, model)  # a third in the minute
        first = server.request_starts(model)[0]
        assert over.status_code == 429
        expected = first + 60.0 - server.request_starts(model)[-1]
        assert int(over.headers["Retry-After"]) == math.ceil(expected)
        assert abs(int(over.headers["retry-after-ms"]) - expected * 1000) <= 5
        assert int(over.headers["Retry-After"]) <= 58  # the first is over 2 s old
        server.configure(model, rpm=2)
        assert _post(client, server, model).status_code == 200
    assert server.stats(model).rejected == 2
    assert server.stats().rejected >= 2  # the overall counts have them too


def test_rpm_below_one_is_refused_where_it_is_set(enforcing_server: FakeOpenAIServer) -> None:
    with pytest.raises(ValueError, match=r"rpm must be a finite number >= 1, got 0\.5"):
        enforcing_server.configure("any", rpm=0.5)
