"""`run --batch-api`'s progress shows each job's own counts as the provider reports them
(a real console-script process against the fake server's batch endpoints)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import LoopbackAlias, RunCli
from tests.cli.test_run import assert_every_prompt_once_in_order, numbered_prompts
from tests.fixtures.openai_server import FakeOpenAIServer

RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", "--batch-api")


def test_the_progress_says_the_jobs_own_counts_as_they_change(
    run_cli: RunCli,
    loopback_alias: LoopbackAlias,
    openai_server: FakeOpenAIServer,
    cli_dir: Path,
) -> None:
    loopback_alias("cli-batch-progress")
    numbered_prompts(cli_dir, 30)
    openai_server.configure_batches(polls=3)  # the job ends at its 3rd poll
    try:
        result = run_cli(*RUN, timeout=300)
    finally:
        openai_server.configure_batches()
    assert result.code == 0, result.stderr
    assert_every_prompt_once_in_order(cli_dir / "results.jsonl", 30)
    shown = [line for line in result.stderr.splitlines() if line.startswith("progress: job ")]
    assert len(shown) >= 2, result.stderr
    assert " in_progress (completed " in shown[0], result.stderr
    assert shown[-1].endswith(" completed (completed 30, failed 0)"), result.stderr
