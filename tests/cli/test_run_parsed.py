"""`model-registry run` with a response_format: each output line carries `parsed`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import InvokeCli, LoopbackAlias
from tests.fixtures.openai_server import FakeOpenAIServer

SCHEMA = '{type = "object", properties = {city = {type = "string"}}, required = ["city"]}'


def test_run_output_lines_carry_parsed_with_a_response_format(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    openai_server.configure(loopback_alias("cli-run-parsed"), reply='{"city": "Paris"}')
    prompts = ["where?", "!status=400 no"]
    (cli_dir / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))

    result = invoke_cli(
        "run", "loopback", "prompts.jsonl", "--out", "results.jsonl",
        "--set", f"response_format={SCHEMA}",
    )  # fmt: skip

    assert result.code == 1, result.stderr
    lines = [json.loads(line) for line in (cli_dir / "results.jsonl").read_text().splitlines()]
    assert [line["parsed"] for line in lines] == [{"city": "Paris"}, None]
    assert lines[1]["error"]["status_code"] == 400


def test_run_output_lines_have_no_parsed_without_a_response_format(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-run-unparsed")
    (cli_dir / "prompts.jsonl").write_text('"hello"\n')

    result = invoke_cli("run", "loopback", "prompts.jsonl", "--out", "results.jsonl")

    assert result.code == 0, result.stderr
    line = json.loads((cli_dir / "results.jsonl").read_text())
    assert "parsed" not in line
