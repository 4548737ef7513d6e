"""`model-registry embed` against the loopback server: vectors per text, the footer, --json."""

from __future__ import annotations

import re

from tests.cli.conftest import InvokeCli, LoopbackAlias, RunCli, heavy_modules, no_traceback
from tests.fixtures.openai_server import FakeOpenAIServer

LINE = re.compile(r"^\d+: \[(-?\d\.\d{4}, ){4}\.\.\.\] \(8 dimensions\)$")


def test_embed_prints_a_line_per_text_then_a_footer(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias
) -> None:
    loopback_alias("cli-embed")
    result = invoke_cli("embed", "loopback", "the first text", "second")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0", "1"]
    assert all(LINE.match(line) for line in lines), lines
    assert result.stderr.strip() == "openai:cli-embed | 2 vectors | tokens: 4 | cost: ?"


def test_embed_json_holds_the_whole_vectors_in_input_order(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    loopback_alias("text-embedding-3-cli")
    result = invoke_cli("embed", "loopback", "a", "b b", "a", "--set", "dimensions=3", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert isinstance(data, dict)
    vectors = data["vectors"]
    assert [len(v) for v in vectors] == [3, 3, 3]
    assert vectors[0] == vectors[2] != vectors[1]
    assert data["usage"]["prompt_tokens"] == 4
    assert (data["model"], data["provider"], data["name"]) == (
        "text-embedding-3-cli",
        "openai",
        "loopback",
    )
    assert openai_server.stats("text-embedding-3-cli").bodies[-1]["input"] == ["a", "b b", "a"]


def test_embed_error_is_one_message_and_exit_1(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer
) -> None:
    loopback_alias("cli-embed-fail")
    openai_server.configure("cli-embed-fail", status=400, message="input too long")
    result = run_cli("embed", "loopback", "x", probe_imports=True)
    assert result.code == 1
    assert "input too long" in result.stderr
    assert no_traceback(result)
    assert heavy_modules(result) == ["litellm"]


def test_embed_without_text_is_a_usage_error(invoke_cli: InvokeCli) -> None:
    result = invoke_cli("embed", "gpt-4.1")
    assert result.code == 2
