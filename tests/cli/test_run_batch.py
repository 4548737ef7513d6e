"""`model-registry run --batch-api [--no-wait]`: a prompts file through the provider's batch
API (respx at OpenAI's URLs, the app run in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from tests.cli.conftest import InvokeCli
from tests.hosted.batch_fakes import OpenAIBatches

RUN = ("run", "openai:gpt-4o-mini", "prompts.jsonl", "--out", "results.jsonl", "--batch-api")


@pytest.fixture
def fake(cli_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIBatches]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test-key")
    lines = "".join(json.dumps(f"prompt {i}") + "\n" for i in range(5))
    (cli_dir / "prompts.jsonl").write_text(lines, encoding="utf-8")
    with respx.mock(assert_all_called=False) as router:
        yield OpenAIBatches(router)


def test_run_with_batch_api_writes_every_answer_from_one_job(
    fake: OpenAIBatches, invoke_cli: InvokeCli, cli_dir: Path
) -> None:
    result = invoke_cli(*RUN)
    assert result.code == 0, result.stderr
    lines = [json.loads(x) for x in (cli_dir / "results.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == [f"echo: prompt {i}" for i in range(5)]
    assert len(fake.created) == 1 and len(fake.uploads[0]) == 5


def test_no_wait_submits_exits_0_and_the_same_command_collects(
    fake: OpenAIBatches, invoke_cli: InvokeCli, cli_dir: Path
) -> None:
    submitted = invoke_cli(*RUN, "--no-wait")
    assert submitted.code == 0, submitted.stderr
    assert "5 prompts submitted" in submitted.stderr and "batch_0" in submitted.stderr
    assert "without --no-wait" in submitted.stderr
    assert not (cli_dir / "results.jsonl").exists()
    assert fake.jobs["batch_0"]["polls"] == 0
    collected = invoke_cli(*RUN)
    assert collected.code == 0, collected.stderr
    lines = (cli_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 5 and len(fake.created) == 1


def test_no_wait_without_batch_api_is_a_usage_error(
    fake: OpenAIBatches, invoke_cli: InvokeCli
) -> None:
    result = invoke_cli(*RUN[:-1], "--no-wait")
    assert result.code == 2 and "--no-wait goes with --batch-api" in result.stderr
    assert not fake.created


def test_batches_lists_the_jobs_and_cancel_cancels_the_running_ones(
    fake: OpenAIBatches, invoke_cli: InvokeCli, cli_dir: Path
) -> None:
    fake.polls_before_end = 100  # the job runs on
    assert invoke_cli(*RUN, "--no-wait").code == 0
    listed = invoke_cli("batches", "results.jsonl.sqlite")
    assert listed.code == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("batch_0"))
    assert row.split()[1:3] == ["openai:gpt-4o-mini", "5"]
    assert "pending" in row and "validating" in row
    assert fake.cancel.call_count == 0
    cancelled = invoke_cli("batches", "results.jsonl.sqlite", "--cancel")
    assert cancelled.code == 0, cancelled.stderr
    assert fake.cancel.call_count == 1 and "cancelling" in cancelled.stdout


def test_batches_of_a_missing_file_says_so(invoke_cli: InvokeCli, cli_dir: Path) -> None:
    result = invoke_cli("batches", "nothing.sqlite")
    assert result.code == 1 and "nothing.sqlite does not exist" in result.stderr
    assert not (cli_dir / "nothing.sqlite").exists()
