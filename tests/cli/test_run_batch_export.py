"""`model-registry run --batch-api` records its inputs and the input file's ids in the store,
as a plain run does: `results --export` after it gives that run, in input order with its ids,
not an earlier run's rows (the fake server answers both)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.cli.conftest import InvokeCli, LoopbackAlias
from tests.cli.test_run import RUN, read_results, write_prompts

DB = "results.jsonl.sqlite"
#: Ids given and not: the second line's id is its index, the others are not.
PROMPTS: list[Any] = [
    json.dumps("batch-export a"),  # a str item is written as is
    {"id": "b", "prompt": "batch-export bb"},
    {"id": 7, "prompt": "batch-export c"},
]


def _plain_run_first(invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path) -> None:
    """An earlier plain run of other prompts into the same store."""
    loopback_alias(f"cli-batch-export-{uuid.uuid4().hex[:8]}")
    write_prompts(
        cli_dir, [json.dumps(f"batch-export earlier {i}") for i in range(4)], "earlier.jsonl"
    )
    earlier = invoke_cli("run", "loopback", "earlier.jsonl", "--out", "e.jsonl", "--results-db", DB)
    assert earlier.code == 0, earlier.stderr
    write_prompts(cli_dir, PROMPTS)


def _exported(invoke_cli: InvokeCli, cli_dir: Path) -> list[dict[str, Any]]:
    result = invoke_cli("results", DB, "--export", "export.jsonl")
    assert result.code == 0, result.stderr
    return read_results(cli_dir / "export.jsonl")


def test_an_export_after_a_batch_api_run_is_that_run_with_its_ids(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    _plain_run_first(invoke_cli, loopback_alias, cli_dir)
    result = invoke_cli(*RUN, "--batch-api")
    assert result.code == 0, result.stderr
    written = read_results(cli_dir / "results.jsonl")
    assert [line["id"] for line in written] == [0, "b", 7]
    assert [line["text"] for line in written] == [
        "echo: batch-export a",
        "echo: batch-export bb",
        "echo: batch-export c",
    ]
    assert _exported(invoke_cli, cli_dir) == written


def test_an_export_after_no_wait_then_collect_is_the_collecting_run(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    _plain_run_first(invoke_cli, loopback_alias, cli_dir)
    submitted = invoke_cli(*RUN, "--batch-api", "--no-wait")
    assert submitted.code == 0, submitted.stderr
    pending = _exported(invoke_cli, cli_dir)  # the submitted run, its answers still to come
    assert [line["id"] for line in pending] == [0, "b", 7]
    assert [line["error"]["class"] for line in pending] == ["NotAnswered"] * 3
    collected = invoke_cli(*RUN, "--batch-api")
    assert collected.code == 0, collected.stderr
    written = read_results(cli_dir / "results.jsonl")
    assert [line["id"] for line in written] == [0, "b", 7]
    assert _exported(invoke_cli, cli_dir) == written
