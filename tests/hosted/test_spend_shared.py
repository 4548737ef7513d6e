"""`max_cost` over a store other writers share: at each reservation a budget counts the
cost the store's other writers (other processes, other `ResultStore`s of the file) recorded
since its batch started, so processes under one cap together pass it by at most what the
others have in flight."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from model_registry import BudgetExceededError, ResultStore
from model_registry.clients._batch_api.budget import job_budget
from model_registry.clients._policy.cost_bound import Pricing
from model_registry.clients._policy.spend import FRESH_S, Budget, StoreSpend
from model_registry.store import StoredResult
from model_registry.testing import FakeOpenAIServer
from tests.hosted.test_spend_limits import ANSWER_COST, alias, stored_cost

REPO = Path(__file__).resolve().parents[2]


def record(cost: float | None) -> StoredResult:
    return StoredResult("answer", "stop", 3, 4, 7, cost, 0.01, "m", "p", "priced")


async def a_new_read() -> None:
    """Let the last read of the others' spend age past its reuse."""
    await anyio.sleep(2 * FRESH_S)


def test_recorded_cost_reads_the_rows_after_a_mark_and_committed_cost_only_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as mine, ResultStore(path) as other:
        assert mine.recorded_cost() == (0.0, None)
        other.put_result("a#0", 0, record(0.25))
        other.put_result("b#0", 1, record(None))
        other.flush()
        other.put_error("c#0", 2, "ServiceUnavailableError", "busy", 503)  # the last row
        other.flush()
        cost, mark = mine.recorded_cost()
        assert cost == 0.25 and mark is not None
        assert mine.recorded_cost(mark) == (0.0, mark)
        # a success replacing the last row read is a row after it: its cost is read
        mine.put_result("c#0", 2, record(0.5))
        mine.flush()
        cost, later = mine.recorded_cost(mark)
        assert cost == 0.5 and later is not None and later > mark
        mine.put_result("d#0", 3, record(math.inf))  # not a cost it counts as committed
        mine.flush()
        assert mine.recorded_cost(later) == (math.inf, later + 1)
        assert (mine.committed_cost, other.committed_cost) == (0.5, 0.25)


async def test_a_budget_counts_the_spend_another_writer_records_but_its_own_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as mine, ResultStore(path) as other:
        other.put_result("before#0", 0, record(0.25))  # recorded before the start
        other.flush()
        spent, shared = await StoreSpend.start(mine)
        budget = Budget(1.0, spent, shared)
        assert budget.spent == 0.25
        first = await budget.acquire(0.25)
        mine.put_result("mine#0", 1, record(0.2))  # this batch's answer, stored and settled
        budget.settle(first, 0.2)
        await mine.aflush()
        other.put_error("theirs#0", 2, "ServiceUnavailableError", "busy", 503)
        other.put_result("theirs#0", 2, record(0.3))
        other.flush()
        await a_new_read()
        with pytest.raises(BudgetExceededError) as refused:
            await budget.acquire(0.3)  # 0.25 + 0.2 + 0.3 spent: 0.3 more does not fit
        assert math.isclose(refused.value.spent, 0.75)
        assert math.isclose(budget.others, 0.3)


async def test_a_batch_job_reserves_after_reading_the_others_spend(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    price = Pricing(
        "priced", {"input_cost_per_token": 0.0, "output_cost_per_token": 0.01}, None, 8, 0
    )
    prompts = [f"p{i}" for i in range(10)]  # each request bounded by 8 * 0.01 = 0.08
    keys: list[str | None] = [f"k{i}#0" for i in range(10)]
    with ResultStore(path) as mine, ResultStore(path) as other:
        budget = await job_budget(0.5, mine, price)
        other.put_result("theirs#0", 0, record(0.2))
        other.flush()
        await a_new_read()
        admitted, refused = await budget.admit([], list(range(10)), prompts, keys)
    assert admitted == [0, 1, 2]  # 0.2 + 3 * 0.08 <= 0.5 < 0.2 + 4 * 0.08
    assert sorted(refused) == list(range(3, 10))


def _start(db: Path, tag: str, cap: float, concurrency: int) -> subprocess.Popen[str]:
    args = (str(db), tag, "200", str(cap), str(concurrency))
    run = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.capped_batch", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    assert run.stdout.readline().strip() == "ready", run.stderr and run.stderr.read()[-3000:]
    return run


def _finish(run: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    done: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return done


def test_two_processes_on_one_store_under_one_cap_spend_it_once(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    model, db = alias(tmp_path, server, provider), tmp_path / "run.sqlite"
    server.configure(model, delay=0.1)  # calls overlap: each process has 8 in flight
    cap, concurrency = 1.0, 8
    runs = [_start(db, tag, cap, concurrency) for tag in ("a", "b")]
    try:
        for run in runs:
            assert run.stdin is not None
            run.stdin.write("go\n")
            run.stdin.flush()
        done = [_finish(run) for run in runs]
    finally:
        for run in runs:
            run.kill()
            run.wait()
    assert all(d["errors"] == [] and d["refused"] > 0 for d in done)
    spent = stored_cost(db)
    assert math.isclose(spent, sum(d["answered"] for d in done) * ANSWER_COST)
    # each alone would spend about the whole cap (2 caps in all, as before each process read
    # the store only at its start); together they pass it by at most what the other had in
    # flight or not yet committed (8 calls of 0.011 USD; thrice that on a loaded machine)
    assert spent <= cap + 3 * concurrency * ANSWER_COST
