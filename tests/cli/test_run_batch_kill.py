"""`run --batch-api` killed (SIGKILL) or interrupted (Ctrl-C) while its job runs: the same
command collects the job, and no prompt is submitted twice (real console-script processes
against the fake server's batch endpoints)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import LoopbackAlias, RunCli, SpawnCli
from tests.cli.test_run import assert_every_prompt_once_in_order, numbered_prompts
from tests.fixtures.openai_server import FakeOpenAIServer

RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", "--batch-api")


@pytest.fixture
def slow_jobs(openai_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """Jobs that end at their 3rd poll (seconds, at the client's back-off); defaults after."""
    openai_server.configure_batches(polls=3)
    yield openai_server
    openai_server.configure_batches()


def wait_for_job(server: FakeOpenAIServer, jobs_before: int) -> None:
    deadline = time.monotonic() + 120
    while server.batch_stats("openai").jobs_created <= jobs_before:
        assert time.monotonic() < deadline, "the run created no batch job"
        time.sleep(0.05)


def test_a_batch_run_killed_with_sigkill_is_collected_without_a_second_job(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    slow_jobs: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    count = 500
    loopback_alias("cli-batch-sigkill")
    numbered_prompts(cli_dir, count)
    before = slow_jobs.batch_stats("openai")
    process = spawn_cli(*RUN)
    wait_for_job(slow_jobs, before.jobs_created)

    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    assert not (cli_dir / "results.jsonl").exists()
    again = run_cli(*RUN, timeout=300)
    assert again.code == 0, again.stderr
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", count)
    after = slow_jobs.batch_stats("openai")
    assert after.jobs_created == before.jobs_created + 1
    assert after.requests == before.requests + count


def test_ctrl_c_while_waiting_leaves_the_job_running_and_says_how_to_collect_it(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    slow_jobs: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    loopback_alias("cli-batch-sigint")
    numbered_prompts(cli_dir, 50)
    before = slow_jobs.batch_stats("openai")
    process = spawn_cli(*RUN)
    wait_for_job(slow_jobs, before.jobs_created)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "keep running at the provider" in stderr
    assert "model-registry batches results.jsonl.sqlite --cancel" in stderr
    again = run_cli(*RUN, timeout=300)
    assert again.code == 0, again.stderr
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", 50)
    assert slow_jobs.batch_stats("openai").jobs_created == before.jobs_created + 1
