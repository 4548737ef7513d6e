"""`model-registry run`'s output lines carry the cached and reasoning tokens of each answer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import InvokeCli, LoopbackAlias


def test_run_output_lines_carry_cached_and_reasoning_tokens(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-run-usage")
    prompts = ["long !cached=6 !reasoning=2", "plain"]
    (cli_dir / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))

    result = invoke_cli("run", "loopback", "prompts.jsonl", "--out", "results.jsonl")

    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in (cli_dir / "results.jsonl").read_text().splitlines()]
    assert [line["usage"] for line in lines] == [
        {
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
            "cached_tokens": 6,
            "reasoning_tokens": 2,
        },
        {
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "cached_tokens": None,
            "reasoning_tokens": None,
        },
    ]
