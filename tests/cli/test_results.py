"""`model-registry results`: a store's totals, its failed requests and its latest run
exported in `run`'s output format, in input order, with no prompts file."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from model_registry import ResultStore
from tests.cli.conftest import InvokeCli, LoopbackAlias
from tests.cli.test_run import RUN, read_results, write_prompts

DB = "results.jsonl.sqlite"


def _run_with_a_failure(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    write_prompts(
        cli_dir,
        [
            {"id": "a", "prompt": "cli-results fine"},
            json.dumps("cli-results !status=400"),
            {"id": 7, "prompt": "cli-results also fine"},
        ],
    )
    assert invoke_cli(*RUN, "--set", "num_retries=0").code == 1


def test_results_prints_the_totals_and_the_failed_requests(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-results")
    _run_with_a_failure(invoke_cli, cli_dir)

    totals = invoke_cli("results", DB)
    assert totals.code == 0, totals.stderr
    assert "2 answered, 1 failed" in totals.stdout
    as_json = json.loads(invoke_cli("results", DB, "--json").stdout)
    assert (as_json["answered"], as_json["failed"]) == (2, 1)
    assert as_json["prompt_tokens"] > 0

    failed = invoke_cli("results", DB, "--failed")
    assert failed.code == 0, failed.stderr
    index, error_class, status, message = failed.stdout.strip().split("\t")
    assert (index, error_class, status) == ("1", "BadRequestError", "400")
    assert "injected error 400" in message
    [row] = json.loads(invoke_cli("results", DB, "--failed", "--json").stdout)
    assert (row["index"], row["class"], row["status_code"]) == (1, "BadRequestError", 400)


def test_an_export_equals_the_runs_output_in_input_order_after_a_reordered_resume(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-results-order")
    first = [{"id": f"q{i}", "prompt": f"cli-results-order {i}"} for i in range(6)]
    write_prompts(cli_dir, first)
    assert invoke_cli(*RUN).code == 0
    reordered = [*reversed(first), {"id": "new", "prompt": "cli-results-order new"}]
    write_prompts(cli_dir, reordered)
    assert invoke_cli(*RUN).code == 0

    result = invoke_cli("results", DB, "--export", "export.jsonl")

    assert result.code == 0, result.stderr
    exported = read_results(cli_dir / "export.jsonl")
    assert [line["id"] for line in exported] == [p["id"] for p in reordered]
    assert exported == read_results(cli_dir / "results.jsonl")
    with ResultStore(cli_dir / DB) as store:
        assert [r.id for r in store] == [p["id"] for p in reordered]
        assert store.failed() == []


def test_results_of_a_missing_store_says_so(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    result = invoke_cli("results", "nowhere.sqlite")
    assert result.code == 1
    assert "nowhere.sqlite does not exist" in result.stderr
    assert not (cli_dir / "nowhere.sqlite").exists()


def test_a_store_with_no_recorded_inputs_is_read_by_index_and_left_unchanged(
    tmp_path: Path,
) -> None:
    from model_registry.store import StoredResult

    path = tmp_path / "old.sqlite"
    with ResultStore(path) as store:
        store.put_result("a#0", 3, StoredResult("hi", "stop", 1, 2, 3, None, 0.1, "m", "p", "n"))
        store.put_error("b#0", 1, "BadRequestError", "nope", 400)
        requests = list(store)
        store.export(tmp_path / "out.jsonl")
    assert [(r.index, r.id) for r in requests] == [(1, 1), (3, 3)]
    assert requests[0].error is not None and requests[0].error.status_code == 400
    assert requests[1].result is not None and requests[1].result.text == "hi"
    lines = read_results(tmp_path / "out.jsonl")
    assert [line["text"] for line in lines] == [None, "hi"]
    assert lines[0]["error"] == {"class": "BadRequestError", "message": "nope", "status_code": 400}
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert "inputs" not in tables
