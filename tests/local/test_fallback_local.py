"""Fallbacks across backends (issue 20): a hosted alias falls back to a local one and a
local alias to a hosted one, declared in one alias file. The local alias runs on the
session's shared engine (same model, same engine args), so no engine starts here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import get_client
from model_registry.testing import FakeOpenAIServer, openai_server_fixture
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

KEY = "sk-fallback-test-key"

openai_server = openai_server_fixture(api_key=KEY)

#: A local answer long enough that `timeout = 0.3` cuts it: the local primary's failure.
LONG = "max_tokens = 100000\nignore_eos = true"


@pytest.fixture
def server(openai_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    openai_server.reset()
    yield openai_server


@pytest.fixture
def aliases(
    tiny: Any,  # the shared engine, started: the local aliases below use it
    tiny_model_dir: Path,
    server: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = "\n".join(f"{k} = {str(v).lower()}" for k, v in ENGINE_KWARGS.items())
    path = tmp_path / "aliases.toml"
    path.write_text(
        f"""
[providers."loop"]
litellm_prefix = "openai"
api_base = "{server.base_url}"
api_key_env = "FALLBACK_TEST_KEY"

[aliases."hosted-down"]
provider = "loop"
model_id = "down"
fallbacks = ["tiny-local"]
[aliases."hosted-down".defaults]
num_retries = 0
max_retries = 0

[aliases."hosted-up"]
provider = "loop"
model_id = "up"

[aliases."tiny-local"]
provider = "local"
model_id = "{tiny_model_dir}"
[aliases."tiny-local".defaults]
temperature = 0.0
max_tokens = 4
{engine}

[aliases."tiny-slow"]
provider = "local"
model_id = "{tiny_model_dir}"
fallbacks = ["hosted-up"]
[aliases."tiny-slow".defaults]
temperature = 0.0
timeout = 0.3
{LONG}
{engine}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    monkeypatch.setenv("FALLBACK_TEST_KEY", KEY)


@pytest.mark.usefixtures("aliases")
async def test_a_hosted_alias_that_is_down_falls_back_to_a_local_one(
    server: FakeOpenAIServer, tiny: Any
) -> None:
    server.configure("down", status=503)
    async with get_client("hosted-down") as client:
        answer = await client.generate("Hello")
    assert (answer.name, answer.provider) == ("tiny-local", "local")
    assert answer.usage.completion_tokens == 4  # the local alias's own max_tokens
    assert answer.text == (await tiny.generate("Hello", max_tokens=4)).text
    assert len(server.request_starts("down")) == 1


@pytest.mark.usefixtures("aliases")
async def test_a_local_alias_that_times_out_falls_back_to_a_hosted_one(
    server: FakeOpenAIServer,
) -> None:
    async with get_client("tiny-slow") as client:
        answer = await client.generate("Hello")
    assert (answer.name, answer.provider, answer.text) == ("hosted-up", "loop", "echo: Hello")
    # the hosted name got its own defaults, not the local alias's
    assert "ignore_eos" not in server.stats("up").bodies[-1]
