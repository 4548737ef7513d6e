"""A 10,000-prompt `run --batch-api` killed with SIGKILL at different moments (while it
uploads, once the job is accepted, while it collects the answers; 1,000 prompts before the
job is submitted, and at a random moment), then run again: the same command collects every
answer, in one job only (real console-script processes against the fake server's OpenAI
Batches). `MODEL_REGISTRY_KILL_SEED=N` repeats a random moment."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import LoopbackAlias, RunCli, SpawnCli
from tests.cli.test_run import assert_every_prompt_once_in_order, numbered_prompts
from tests.fixtures.openai_server import FakeOpenAIServer

RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", "--batch-api")
DB = "results.jsonl.sqlite"

pytestmark = pytest.mark.slow


def _count(db: Path, sql: str) -> int:
    """A count read from the run's store while it runs (0 before its table exists)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def store_opened(db: Path, server: FakeOpenAIServer) -> bool:
    """The run has opened its store: it is reading prompts, LiteLLM, building requests."""
    return db.exists()


def uploading(db: Path, server: FakeOpenAIServer) -> bool:
    """The job's intent is recorded: its file is being uploaded, or the job created."""
    return _count(db, "SELECT count(*) FROM batch_jobs") > 0


def accepted(db: Path, server: FakeOpenAIServer) -> bool:
    """The provider has accepted the job (the store may not have recorded it yet)."""
    return server.batch_stats("openai").jobs_created > 0


def collecting(db: Path, server: FakeOpenAIServer) -> bool:
    """The job has ended and some of its answers are in the store."""
    return _count(db, "SELECT count(*) FROM results") > 0


Moment = Callable[[Path, FakeOpenAIServer], bool]


@pytest.fixture
def server(openai_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The server with no jobs yet; jobs end at their 2nd poll (a second or two)."""
    openai_server.reset()
    openai_server.configure_batches(polls=2)
    yield openai_server
    openai_server.reset()


@pytest.mark.parametrize(
    ("moment", "count"),
    [(store_opened, 1_000), (uploading, 10_000), (accepted, 10_000), (collecting, 10_000)],
)
def test_a_10000_prompt_batch_run_killed_at_any_moment_is_collected_by_one_job(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    server: FakeOpenAIServer,
    cli_dir: Path,
    moment: Moment,
    count: int,
) -> None:
    loopback_alias("cli-batch-crash")
    numbered_prompts(cli_dir, count)
    process = spawn_cli(*RUN)
    deadline = time.monotonic() + 300
    while not moment(cli_dir / DB, server):
        assert process.poll() is None, f"the run ended before {moment.__name__}"
        assert time.monotonic() < deadline, f"the run never reached {moment.__name__}"
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=60)
    assert not (cli_dir / "results.jsonl").exists()
    collect_again(run_cli, server, cli_dir, count, moment.__name__)


def test_a_batch_run_killed_at_a_random_moment_is_collected_by_one_job(
    spawn_cli: SpawnCli,
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    seed = int(os.environ.get("MODEL_REGISTRY_KILL_SEED") or time.time_ns() % 1_000_000)
    delay = random.Random(seed).uniform(0.0, 10.0)
    loopback_alias("cli-batch-crash-random")
    numbered_prompts(cli_dir, 1_000)
    process = spawn_cli(*RUN)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=delay)  # a run that ends first is simply run again
    process.kill()
    process.communicate(timeout=60)
    said = f"killed {delay:.2f} s after its start (MODEL_REGISTRY_KILL_SEED={seed})"
    collect_again(run_cli, server, cli_dir, 1_000, said)


def collect_again(
    run_cli: RunCli, server: FakeOpenAIServer, cli_dir: Path, count: int, said: str
) -> None:
    """The same command, run again, writes every answer; one job in all held them."""
    again = run_cli(*RUN, timeout=600)
    assert again.code == 0, f"{said}: {again.stderr}"
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", count)
    stats = server.batch_stats("openai")
    assert (stats.jobs_created, stats.requests) == (1, count), said
