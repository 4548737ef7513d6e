"""`model-registry run --batch-api --max-cost USD` against the fake server: the job holds the
prompts that fit, in input order; the others get a BudgetExceededError line and exit 3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from model_registry.testing import FakeOpenAIServer
from tests.cli.conftest import LoopbackAlias, RunCli, no_traceback

#: Prompt tokens are free and an answer token costs 0.002 USD: a request's bound is
#: max_tokens (8) of them, 0.016; its answer "echo: prompt N" (3 tokens) half that price.
PRICES = ("--set", "input_cost_per_token=0.0", "--set", "output_cost_per_token=0.002")
RUN = (
    *("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", "--batch-api"),
    *(*PRICES, "--set", "max_tokens=8"),
)


def write_prompts(folder: Path, count: int) -> None:
    lines = "".join(json.dumps(f"prompt {i}") + "\n" for i in range(count))
    (folder / "prompts.jsonl").write_text(lines, encoding="utf-8")


def errors(folder: Path) -> list[object]:
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [line["error"] and line["error"]["class"] for line in map(json.loads, lines)]


def job_sizes(server: FakeOpenAIServer, before: int) -> list[int]:
    return [len(job["custom_ids"]) for job in server.batch_jobs("openai")[before:]]


def test_run_batch_api_under_max_cost_sends_what_fits_and_exits_3(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    loopback_alias(f"cli-batch-cost-{uuid.uuid4().hex[:8]}")
    write_prompts(cli_dir, 5)
    before = len(openai_server.batch_jobs("openai"))
    result = run_cli(*RUN, "--max-cost", "0.018")  # one bound fits, not one more past it
    assert result.code == 3, result.stderr
    assert no_traceback(result) and "4 prompts were not sent" in result.stderr
    assert errors(cli_dir) == [None, *["BudgetExceededError"] * 4]
    assert job_sizes(openai_server, before) == [1]

    again = run_cli(*RUN, "--max-cost", "0.018")
    assert again.code == 3, again.stderr
    assert job_sizes(openai_server, before) == [1]

    done = run_cli(*RUN, "--max-cost", "5")
    assert done.code == 0, done.stderr
    assert errors(cli_dir) == [None] * 5
    assert job_sizes(openai_server, before) == [1, 4]


def test_no_wait_under_max_cost_submits_what_fits_and_exits_3(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    loopback_alias(f"cli-batch-cost-{uuid.uuid4().hex[:8]}")
    write_prompts(cli_dir, 5)
    before = len(openai_server.batch_jobs("openai"))
    result = run_cli(*RUN, "--max-cost", "0.04", "--no-wait")
    assert result.code == 3, result.stderr
    assert "2 prompts submitted" in result.stderr and "3 prompts not sent" in result.stderr
    assert job_sizes(openai_server, before) == [2]
