"""`model-registry run --max-cost USD`: the run stops at the cap, writes a BudgetExceededError
line for each prompt not sent, says what it spent and exits 3; a higher cap finishes it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from model_registry import ResultStore
from tests.cli.conftest import LoopbackAlias, RunCli, no_traceback
from tests.fixtures.openai_server import FakeOpenAIServer

#: USD per token (the fake server counts a token per word): "prompt N" and its answer
#: "echo: prompt N" cost 2 * 0.001 + 3 * 0.002 = 0.008 each.
PRICES = (
    "--set",
    "input_cost_per_token=0.001",
    "--set",
    "output_cost_per_token=0.002",
    "--set",
    "max_tokens=8",
)
RUN = ("run", "loopback", "prompts.jsonl", "--out", "results.jsonl", *PRICES)


def write_prompts(folder: Path, count: int, extra: tuple[str, ...] = ()) -> None:
    lines = [json.dumps(f"prompt {i}") for i in range(count)] + [json.dumps(p) for p in extra]
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_results(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored_cost(path: Path) -> float:
    with ResultStore(path) as store:
        return store.summary().cost or 0.0


def test_run_stops_at_max_cost_writes_the_prompts_not_sent_and_exits_3(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias(f"cli-cost-{uuid.uuid4().hex[:8]}")
    write_prompts(cli_dir, 12)
    result = run_cli(*RUN, "--max-cost", "0.1")
    assert result.code == 3, result.stderr
    assert no_traceback(result)
    lines = read_results(cli_dir / "results.jsonl")
    sent = [line for line in lines if line["error"] is None]
    not_sent = [line for line in lines if line["error"] is not None]
    assert sent and not_sent and len(lines) == 12
    assert {line["error"]["class"] for line in not_sent} == {"BudgetExceededError"}  # type: ignore[index]
    assert openai_server.stats(model).requests == len(sent)
    assert stored_cost(cli_dir / "results.jsonl.sqlite") <= 0.1
    assert f"{len(not_sent)} prompts not sent" in result.stderr
    assert "of --max-cost $0.100000" in result.stderr
    assert "run the same command with a higher --max-cost" in result.stderr

    again = run_cli(*RUN, "--max-cost", "0.1")  # nothing left under the same cap
    assert again.code == 3, again.stderr
    assert openai_server.stats(model).requests == len(sent)

    done = run_cli(*RUN, "--max-cost", "5")
    assert done.code == 0, done.stderr
    assert all(line["error"] is None for line in read_results(cli_dir / "results.jsonl"))
    assert openai_server.stats(model).requests == 12


def test_the_cap_wins_over_a_failed_prompt_exit_3(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    loopback_alias(f"cli-cost-{uuid.uuid4().hex[:8]}")
    write_prompts(cli_dir, 0, extra=("bad !status=400", *(f"prompt {i}" for i in range(12))))
    result = run_cli(*RUN, "--max-cost", "0.1", "--concurrency", "1")
    assert result.code == 3, result.stderr
    assert "1 of 13 prompts failed" in result.stderr
    assert "prompts were not sent" in result.stderr


def test_run_refuses_a_model_with_no_known_price_before_any_call(
    run_cli: RunCli, loopback_alias: LoopbackAlias, openai_server: FakeOpenAIServer, cli_dir: Path
) -> None:
    model = loopback_alias(f"cli-cost-{uuid.uuid4().hex[:8]}")
    write_prompts(cli_dir, 2)
    result = run_cli("run", "loopback", "prompts.jsonl", "--out", "out.jsonl", "--max-cost", "1")
    assert result.code == 1, result.stderr
    assert "input_cost_per_token" in result.stderr and no_traceback(result)
    assert openai_server.stats(model).requests == 0
