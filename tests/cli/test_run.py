"""`model-registry run`: a batch of prompts from a JSONL file, kept as it goes, resumable.

Real console-script processes against the loopback OpenAI-compatible server; each test
uses its own model id, so the server's request counts are the test's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import model_registry
from tests.cli.conftest import (
    InvokeCli,
    LoopbackAlias,
    RunCli,
    SpawnCli,
    cli_result,
    no_traceback,
)
from tests.fixtures.openai_server import FakeOpenAIServer

RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl")
#: Requests a killed run may re-send beyond those in flight (the store's writer queue).
HANDFUL = 16


def write_prompts(folder: Path, lines: list[Any], name: str = "prompts.jsonl") -> Path:
    """Write `lines` as JSONL (a str item that is not JSON-encoded is written as is)."""
    path = folder / name
    text = "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines)
    path.write_text(text, encoding="utf-8")
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def requests(server: FakeOpenAIServer, model: str) -> int:
    return server.stats(model).requests


def wait_for_requests(server: FakeOpenAIServer, model: str, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while requests(server, model) < at_least:
        assert time.monotonic() < deadline, f"the run did not reach {at_least} requests"
        time.sleep(0.05)


def numbered_prompts(folder: Path, count: int) -> None:
    write_prompts(folder, [json.dumps(f"prompt {i}") for i in range(count)])


def assert_every_prompt_once_in_order(results_file: Path, count: int) -> None:
    results = read_results(results_file)
    assert [r["id"] for r in results] == list(range(count))
    assert [r["text"] for r in results] == [f"echo: prompt {i}" for i in range(count)]
    assert all(r["error"] is None for r in results)


# --- help ----------------------------------------------------------------------------------


def test_run_help_wraps_each_paragraph_to_the_terminal_and_names_the_default_store(
    run_cli: RunCli,
) -> None:
    result = run_cli("run", "--help")  # 200 columns: each paragraph fits one line
    assert result.code == 0, result.stderr
    assert "Exit 1 when a prompt failed" in result.stdout  # no line break from the source
    assert "RESULTS.jsonl.sqlite" in result.stdout  # the --results-db default


# --- a run and its rerun ------------------------------------------------------------------


def test_run_writes_one_line_per_prompt_in_input_order(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias("gpt-4o-mini")  # a model LiteLLM prices: each line has a cost
    write_prompts(
        cli_dir,
        [
            json.dumps("first"),
            "",  # blank lines are skipped
            json.dumps({"id": "q-2", "prompt": "second"}),
            json.dumps({"id": 7, "messages": [{"role": "user", "content": "third"}]}),
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "s"},
                        {"role": "user", "content": "fourth"},
                    ]
                }
            ),
        ],
    )
    before = requests(openai_server, model)
    result = run_cli(*RUN)
    assert result.code == 0, result.stderr
    assert requests(openai_server, model) - before == 4
    lines = read_results(cli_dir / "results.jsonl")
    assert [(r["id"], r["text"]) for r in lines] == [
        (0, "echo: first"),
        ("q-2", "echo: second"),
        (7, "echo: third"),
        (3, "echo: fourth"),
    ]
    for line in lines:
        assert set(line) == {"id", "text", "finish_reason", "usage", "cost", "error"}
        assert line["finish_reason"] == "stop"
        assert line["usage"]["total_tokens"] > 0
        assert line["cost"] > 0
        assert line["error"] is None
    assert "4 prompts in" in result.stderr
    assert "4 calls made, 0 from the store, 0 failed" in result.stderr
    assert (cli_dir / "results.jsonl.sqlite").is_file()  # the default store, beside the output
    assert no_traceback(result)


def test_a_rerun_makes_no_request_and_writes_the_same_file(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-rerun")
    numbered_prompts(cli_dir, 20)
    assert invoke_cli(*RUN).code == 0
    first = (cli_dir / "results.jsonl").read_bytes()
    before = requests(openai_server, model)
    (cli_dir / "results.jsonl").unlink()

    again = invoke_cli(*RUN)

    assert again.code == 0, again.stderr
    assert requests(openai_server, model) == before
    assert (cli_dir / "results.jsonl").read_bytes() == first
    assert "0 calls made, 20 from the store, 0 failed" in again.stderr


def test_repeated_prompts_are_separate_samples_and_resume_as_such(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-samples")
    write_prompts(cli_dir, [json.dumps("same question !serial=1")] * 3)
    assert invoke_cli(*RUN).code == 0
    texts = [r["text"] for r in read_results(cli_dir / "results.jsonl")]
    assert len(set(texts)) == 3, texts  # three calls, three answers (the server numbers them)
    before = requests(openai_server, model)

    assert invoke_cli(*RUN).code == 0

    assert requests(openai_server, model) == before
    assert [r["text"] for r in read_results(cli_dir / "results.jsonl")] == texts


def test_a_failed_prompt_has_an_error_line_exit_1_and_the_rerun_retries_only_it(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-retry")
    write_prompts(cli_dir, [json.dumps("fine"), json.dumps("cli-run-retry flaky !once=500")])
    run = (*RUN, "--set", "num_retries=0")

    first = invoke_cli(*run)

    assert first.code == 1, first.stderr
    assert "1 of 2 prompts failed" in first.stderr
    ok, failed = read_results(cli_dir / "results.jsonl")
    assert ok["error"] is None and ok["text"] == "echo: fine"
    assert failed["text"] is None and failed["usage"] is None and failed["cost"] is None
    assert failed["error"]["status_code"] == 500
    assert failed["error"]["class"] == "ServiceUnavailableError"
    assert "injected error 500" in failed["error"]["message"]
    assert no_traceback(first)
    before = requests(openai_server, model)

    second = invoke_cli(*run)

    assert second.code == 0, second.stderr
    assert requests(openai_server, model) - before == 1
    assert [r["text"] for r in read_results(cli_dir / "results.jsonl")] == [
        "echo: fine",
        "echo: cli-run-retry flaky !once=500",
    ]


def test_an_error_that_echoes_the_api_key_keeps_it_out_of_the_results(
    invoke_cli: InvokeCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-secret")
    openai_server.configure(model, status=401, message="Incorrect API key: sk-loopback-test")
    write_prompts(cli_dir, [json.dumps("hi")])
    result = invoke_cli(*RUN, "--set", "num_retries=0")
    assert result.code == 1
    text = (cli_dir / "results.jsonl").read_text(encoding="utf-8")
    assert "sk-loopback-test" not in text + result.stderr
    (line,) = read_results(cli_dir / "results.jsonl")
    assert line["error"]["status_code"] == 401


# --- killed and interrupted runs ------------------------------------------------------------


def test_a_run_killed_with_sigkill_resumes_and_pays_only_for_calls_in_flight(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    count, concurrency = 3000, 64
    model = loopback_alias("cli-run-sigkill")
    openai_server.configure(model, delay=0.01)  # every call takes a while: the kill lands mid-run
    numbered_prompts(cli_dir, count)
    process = spawn_cli(*RUN, "--concurrency", str(concurrency))
    wait_for_requests(openai_server, model, count // 3)

    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    assert not (cli_dir / "results.jsonl").exists()  # never a half-written file
    assert requests(openai_server, model) < count  # it was killed mid-run
    again = run_cli(*RUN, "--concurrency", str(concurrency), timeout=300)
    assert again.code == 0, again.stderr
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", count)
    assert requests(openai_server, model) <= count + concurrency + HANDFUL


def test_ctrl_c_stops_with_130_keeps_what_finished_and_the_rerun_completes(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    count, concurrency = 2000, 64
    model = loopback_alias("cli-run-sigint")
    openai_server.configure(model, delay=0.01)
    numbered_prompts(cli_dir, count)
    process = spawn_cli(*RUN, "--concurrency", str(concurrency))
    wait_for_requests(openai_server, model, count // 3)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "Warning" not in stderr
    assert "cancelled" in stderr
    answered = re.search(rf"(\d+) of {count} prompts answered in", stderr)
    assert answered is not None, stderr
    with model_registry.ResultStore(cli_dir / "results.jsonl.sqlite") as store:
        assert int(answered.group(1)) == store.summary().results  # counted from the store
    assert "run the same command again" in stderr
    assert not (cli_dir / "results.jsonl").exists()
    at_interrupt = requests(openai_server, model)
    assert at_interrupt < count
    again = run_cli(*RUN, "--concurrency", str(concurrency), timeout=300)
    assert again.code == 0, again.stderr
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", count)
    assert requests(openai_server, model) <= count + concurrency + HANDFUL


# --- bad input -----------------------------------------------------------------------------


def test_malformed_lines_are_named_by_file_and_line_before_any_call(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias("cli-run-malformed")
    write_prompts(cli_dir, [json.dumps("fine"), "", '{"prompt": 1}', "not json", json.dumps("ok")])

    result = run_cli(*RUN)

    assert result.code == 1
    assert "2 malformed lines in prompts.jsonl, nothing was sent" in result.stderr
    assert 'prompts.jsonl:3: "prompt" must be a string, got a JSON number' in result.stderr
    assert "prompts.jsonl:4: not valid JSON (Expecting value at column 1)" in result.stderr
    assert no_traceback(result)
    assert requests(openai_server, model) == 0
    assert not (cli_dir / "results.jsonl").exists()
    assert not (cli_dir / "results.jsonl.sqlite").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "a JSON array is no prompt"),
        ("42", "a JSON number is no prompt"),
        ('{"id": 1}', 'give exactly one of "prompt" and "messages"'),
        ('{"prompt": "a", "messages": []}', 'give exactly one of "prompt" and "messages"'),
        ('{"promt": "a"}', "unknown key 'promt'"),
        ('{"id": true, "prompt": "a"}', '"id" must be a string or an integer, got a JSON boolean'),
        ('{"id": 1.5, "prompt": "a"}', '"id" must be a string or an integer, got a JSON number'),
        ('{"messages": []}', '"messages" must be a non-empty list'),
        (
            '{"messages": [{"content": "x"}]}',
            '"messages" item 0 must be an object with a string "role"',
        ),
        ('{"prompt": NaN}', "not valid JSON (NaN is not JSON)"),
        ('"\\ud800"', "holds a lone surrogate escape"),
        ('{"prompt": "a"', "not valid JSON"),
        ('{"prompt": "unterminated', "not valid JSON (Unterminated string starting at column 12)"),
        ('{"id": ' + "9" * 5000 + ', "prompt": "a"}', "a number with 5000 digits is too long"),
        (
            '{"messages": [{"role": "user", "content": ' + "[" * 3000 + "]" * 3000 + "}]}",
            "nested too deeply",
        ),
        (
            '{"messages": [{"role": "user", "content": ' + "[" * 40 + "]" * 40 + "}]}",
            "nested too deeply (more than 32 levels)",
        ),
        (
            '{"messages": [{"role": "user", "content": 5}]}',
            '"messages" item 0: "content" must be a string or a list of parts',
        ),
        (
            '{"messages": [{"role": "user", "content": 1e999}]}',
            "the number 1e999 is out of range (no finite number)",
        ),
        (
            '{"messages": [{"role": "user", "content": ["a"]}]}',
            '"messages" item 0: "content" as a list holds parts, each an object',
        ),
        ('{"id": -1e400, "prompt": "a"}', "the number -1e400 is out of range"),
    ],
)
def test_each_kind_of_malformed_line_says_what_is_wrong(
    invoke_cli: InvokeCli, cli_dir: Path, line: str, message: str
) -> None:
    write_prompts(cli_dir, [json.dumps("fine"), line])
    result = invoke_cli("run", "gpt-4o", "prompts.jsonl", "--out", "results.jsonl")
    assert result.code == 1
    assert f"prompts.jsonl:2: {message}" in result.stderr
    assert not (cli_dir / "results.jsonl.sqlite").exists()


def test_a_line_that_is_not_utf8_is_named(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    (cli_dir / "prompts.jsonl").write_bytes(b'"fine"\n"caf\xe9"\n')
    result = invoke_cli("run", "gpt-4o", "prompts.jsonl", "--out", "results.jsonl")
    assert result.code == 1
    assert "prompts.jsonl:2: not UTF-8 text (byte 5 of the line)" in result.stderr


def test_duplicate_ids_are_refused_naming_both_lines(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    write_prompts(
        cli_dir,
        [
            json.dumps({"id": "a", "prompt": "x"}),
            json.dumps({"id": "a", "prompt": "y"}),
            json.dumps("no id: its id is its position, 2"),
            json.dumps({"id": 2, "prompt": "z"}),
        ],
    )
    result = invoke_cli("run", "gpt-4o", "prompts.jsonl", "--out", "results.jsonl")
    assert result.code == 1
    assert 'prompts.jsonl:2: id "a" is also the id of line 1; ids must be unique' in result.stderr
    assert "prompts.jsonl:4: id 2 is also the id of line 3" in result.stderr


def test_an_empty_or_missing_prompts_file_is_an_error(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    (cli_dir / "prompts.jsonl").write_text("\n\n", encoding="utf-8")
    empty = invoke_cli("run", "gpt-4o", "prompts.jsonl", "--out", "results.jsonl")
    assert empty.code == 1
    assert "prompts.jsonl holds no prompts" in empty.stderr
    missing = invoke_cli("run", "gpt-4o", "nowhere.jsonl", "--out", "results.jsonl")
    assert missing.code == 1
    assert "cannot read the prompts file nowhere.jsonl: No such file or directory" in missing.stderr


def test_an_output_that_would_overwrite_the_input_is_a_usage_error(
    invoke_cli: InvokeCli, cli_dir: Path
) -> None:
    write_prompts(cli_dir, [json.dumps("x")])
    result = invoke_cli("run", "gpt-4o", "prompts.jsonl", "--out", "prompts.jsonl")
    assert result.code == 2
    assert "is the prompts file" in result.stderr
    assert (cli_dir / "prompts.jsonl").read_text(encoding="utf-8") == '"x"\n'


# --- the store ---------------------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(b"these are not the results you are looking for\n" * 50)


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    db.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_garbage, "is not a model-registry result store"),
        (_foreign_sqlite, "is an SQLite database of another program"),
    ],
)
def test_a_store_that_is_not_ours_is_refused_and_left_as_it_was(
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
    make: Any,
    message: str,
) -> None:
    model = loopback_alias(f"cli-run-foreign-{make.__name__}")
    numbered_prompts(cli_dir, 3)
    store = cli_dir / "results.jsonl.sqlite"
    make(store)
    before = store.read_bytes()

    result = run_cli(*RUN)

    assert result.code == 1
    assert f"error: results.jsonl.sqlite {message}" in result.stderr
    assert "(model-registry run: use --results-db PATH)" in result.stderr  # not "results_db"
    assert no_traceback(result)
    assert store.read_bytes() == before
    assert requests(openai_server, model) == 0
    assert not (cli_dir / "results.jsonl").exists()


def test_a_run_shares_a_store_another_process_holds_open(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias("cli-run-shared")
    numbered_prompts(cli_dir, 3)
    with model_registry.ResultStore(cli_dir / "elsewhere.sqlite") as held:
        result = run_cli(*RUN, "--results-db", "elsewhere.sqlite")
        assert held.summary().results == 3  # what the run stored, seen by the open store
    assert result.code == 0, result.stderr
    assert requests(openai_server, model) == 3


def test_the_output_file_is_replaced_whole_never_written_in_place(
    run_cli: RunCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-run-atomic")
    numbered_prompts(cli_dir, 5)
    out = cli_dir / "results.jsonl"
    out.write_text("an older file\n", encoding="utf-8")
    old_inode = os.stat(out).st_ino

    assert run_cli(*RUN).code == 0

    assert os.stat(out).st_ino != old_inode  # a new file renamed over the old one
    assert_every_prompt_once_in_order(out, 5)
    assert [p.name for p in cli_dir.iterdir() if p.name.endswith(".tmp")] == []


# --- what a run says while it works and when it cannot finish -----------------------------

PROGRESS_LINE = re.compile(
    r"progress: \d+ of 40 done, \d+ failed  cost \S+  \d+\.\d/s  ETA \d+(s|m\d\ds)  "
    r"elapsed \S+"
)


def test_without_a_terminal_a_progress_line_comes_every_few_seconds(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias("cli-run-progress")
    openai_server.configure(model, delay=0.25)  # 40 calls one at a time: 10 s
    numbered_prompts(cli_dir, 40)
    result = run_cli(*RUN, "--concurrency", "1", timeout=300)
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert any(PROGRESS_LINE.fullmatch(line) for line in lines), result.stderr


def test_on_a_terminal_the_progress_bar_shows_an_eta(
    spawn_cli: SpawnCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-eta")
    openai_server.configure(model, delay=0.25)
    numbered_prompts(cli_dir, 40)
    controller, terminal = os.openpty()
    process = spawn_cli(*RUN, "--concurrency", "1", stderr=terminal)
    os.close(terminal)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
        while chunk := os.read(controller, 65536):
            seen += chunk
    os.close(controller)
    assert process.wait(timeout=300) == 0, seen.decode(errors="replace")
    assert re.search(rb"ETA \d+(s|m\d\ds)", seen), seen.decode(errors="replace")


def test_a_run_whose_calls_all_failed_paid_nothing_for_them(
    invoke_cli: InvokeCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("gpt-4o-mini")  # priced: the stored answer has a cost
    write_prompts(cli_dir, [json.dumps("cli-run-unpaid fine")])
    assert invoke_cli(*RUN).code == 0
    write_prompts(
        cli_dir, [json.dumps("cli-run-unpaid fine"), json.dumps("cli-run-unpaid !status=400")]
    )
    result = invoke_cli(*RUN, "--set", "num_retries=0")
    assert result.code == 1
    assert "1 calls made, 1 from the store, 1 failed" in result.stderr
    assert "(this run's calls: $0.000000)" in result.stderr


def test_a_results_file_that_cannot_be_written_ends_with_a_summary_and_a_free_rerun(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    model = loopback_alias("cli-run-out-full")
    write_prompts(cli_dir, [{"id": "one", "prompt": "one"}])

    process = spawn_cli(*RUN)
    # A folder where the run writes its results file first: that file cannot be made.
    (cli_dir / f".results.jsonl.{process.pid}.tmp").mkdir()
    _, stderr = process.communicate(timeout=120)
    result = cli_result(process.returncode, "", stderr)

    assert result.code == 1, result.stderr
    assert "1 prompts in" in result.stderr and "1 calls made" in result.stderr
    assert "cannot write the results to results.jsonl: Is a directory" in result.stderr
    assert "--results-db results.jsonl.sqlite" in result.stderr
    assert no_traceback(result)
    paid = requests(openai_server, model)
    again = run_cli(*RUN[:3], "--out", "other.jsonl", "--results-db", "results.jsonl.sqlite")
    assert again.code == 0, again.stderr
    assert requests(openai_server, model) == paid  # written from the store, paid once
    assert read_results(cli_dir / "other.jsonl")[0]["text"] == "echo: one"


def test_a_store_that_cannot_be_written_ends_with_what_was_done_and_exit_1(
    run_cli: RunCli, loopback_alias: LoopbackAlias, cli_dir: Path
) -> None:
    loopback_alias("cli-run-store-full")
    write_prompts(cli_dir, [json.dumps(f"prompt {i} " + "y" * 300) for i in range(2000)])

    result = run_cli(*RUN, file_size_limit=96_000, timeout=300)  # the disk fills up

    assert result.code == 1, result.stderr
    assert "stopped" in result.stderr.splitlines()
    assert re.search(r"of 2000 prompts in [\d.]+ s: \d+ calls made", result.stderr), result.stderr
    # the first write that fails: an answer's, or the claims a chunk of prompts takes
    assert re.search(r"Could not (write to|claim requests in) the result store", result.stderr)
    assert "does not pay for them again" in result.stderr
    assert no_traceback(result)
    assert not (cli_dir / "results.jsonl").exists()
