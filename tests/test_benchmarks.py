"""The benchmark helpers whose logic decides a figure: goal verdicts, the pairing that
cancels a worker's bias, the lag probe's two clocks, the local runs' order, the loop-lag
figures of paired rounds, the collector's timer. And every script's --help."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import _common  # noqa: E402
from _common import Goal, LagProbe, Phases, percentile  # noqa: E402
from _paired import _GcTimer, paired_ratios  # noqa: E402
from event_loop_lag import hosted_figures, lag_paths  # noqa: E402
from local_throughput import cpu_seconds, palindrome  # noqa: E402

SCRIPTS = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize(
    ("compare", "target", "measured", "passed"),
    [
        ("<=", 1.2, 1.2, True),
        ("<=", 1.2, 1.21, False),
        (">=", 0.97, 0.97, True),
        (">=", 0.97, 0.969, False),
        ("<", 100.0, 99.9, True),
        ("<", 100.0, 100.0, False),
        ("<=", 1.0, None, None),
    ],
)
def test_goal_verdicts(compare: str, target: float, measured: float | None, passed: object) -> None:
    goal = Goal("g", target, compare, measured, "x")  # type: ignore[arg-type]
    assert goal.passed is passed
    assert goal.to_dict()["passed"] is passed


def test_paired_ratios_cancel_a_constant_worker_bias() -> None:
    # true ratio 0.98; worker 0 runs 3% cheaper, and the roles swap every round
    true, bias = 0.98, 1.03
    rounds = [true * bias, true / bias, true * bias, true / bias, true * bias]
    combined = paired_ratios(rounds)
    assert len(combined) == 2  # the odd last round is left out
    assert all(math.isclose(value, true) for value in combined)
    assert paired_ratios([2.0, 0.5]) == [1.0]


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


class FakeClocks:
    """The two clocks the benchmark helpers read, moved only by the test: a stall of
    known length, spent working or waiting, with no dependence on the machine's load."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0

    def perf_counter(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> FakeClocks:
    fake = FakeClocks()
    monkeypatch.setattr(_common, "time", fake)
    return fake


async def _stall_under_probe(clocks: FakeClocks, wall_s: float, cpu_s: float) -> LagProbe:
    probe = LagProbe()
    probe.start()
    await asyncio.sleep(0.01)  # the probe is sleeping between two readings of the clocks
    clocks.wall += wall_s
    clocks.cpu += cpu_s
    await asyncio.sleep(0.01)
    await probe.stop()
    return probe


async def test_lag_probe_counts_a_cpu_bound_stall_on_both_clocks(clocks: FakeClocks) -> None:
    probe = await _stall_under_probe(clocks, wall_s=0.15, cpu_s=0.15)
    assert max(probe.lags) == pytest.approx(0.15 - probe.interval)  # the oversleep
    assert max(probe.cpu_lags) == pytest.approx(0.15)
    assert sorted(probe.lags)[:-1] == [0.0] * (len(probe.lags) - 1)  # one stall, one wake-up


async def test_lag_probe_counts_a_waiting_stall_on_the_wall_clock_only(
    clocks: FakeClocks,
) -> None:
    """A loop held by a sleeping call, or by the OS running another process, spends no
    CPU of this process: the CPU clock tells it from work that held the loop."""
    probe = await _stall_under_probe(clocks, wall_s=0.15, cpu_s=0.0)
    assert max(probe.lags) == pytest.approx(0.15 - probe.interval)
    assert max(probe.cpu_lags) == 0.0


def test_palindrome_runs_each_side_symmetrically_in_time() -> None:
    for sides in (["a", "b"], ["a", "b", "c"]):
        for block in range(len(sides)):
            for per_visit in (1, 3):
                order = palindrome(sides, block, per_visit)
                assert order == order[::-1]  # a linear drift cancels between any two sides
                assert len(order) == 2 * len(sides) * per_visit
                assert all(order.count(side) == 2 * per_visit for side in sides)
    assert palindrome(["a", "b"], 1, 2) == ["b", "b", "a", "a", "a", "a", "b", "b"]


def test_hosted_lag_figures_pool_each_sides_wake_ups() -> None:
    raw, ours = lag_paths(0)
    assert lag_paths(1) == (ours, raw)

    def lag(stalls_ms: list[float]) -> dict[str, Any]:
        samples = [0.01] * 147 + stalls_ms  # idle wake-ups and a burst's few long stalls
        keys = ("cpu_p50_ms", "p50_ms", "p99_ms", "max_ms", "samples")
        return {
            "lag": {
                "cpu_p99_ms": percentile(samples, 99),
                "cpu_lags_ms": samples,
                **dict.fromkeys(keys, 1.0),
            }
        }

    # Round 0: one of our bursts has only 1 long stall, so that round's own p99 falls
    # among the idle wake-ups; pooled over the rounds, each side's p99 is a stall.
    answers = [
        {raw: lag([800.0, 900.0, 1000.0]), ours: lag([0.01, 0.01, 990.0])},
        {ours: lag([840.0, 945.0, 1050.0]), raw: lag([800.0, 900.0, 1000.0])},
    ]
    figures = hosted_figures(256, answers, "pinned")
    assert figures["per_round_cpu_p99_ratio"][0] < 0.1  # the flip pooling is for
    pooled_raw = percentile([x for a in answers for x in a[raw]["lag"]["cpu_lags_ms"]], 99)
    pooled_ours = percentile([x for a in answers for x in a[ours]["lag"]["cpu_lags_ms"]], 99)
    assert 800.0 <= pooled_raw <= 1000.0
    assert figures["ours_over_litellm_p99"] == pytest.approx(pooled_ours / pooled_raw)
    assert 0.9 < figures["ours_over_litellm_p99"] < 1.1
    assert figures["litellm"]["cpu_p99_ms_all_rounds"] == pytest.approx(pooled_raw)
    assert len(figures["pairs_of_rounds_cpu_p99_ratio"]) == 1


def test_phases_add_up_the_laps(clocks: FakeClocks) -> None:
    phases = Phases()
    clocks.wall += 0.02
    phases.lap("a")
    phases.lap("b")
    clocks.wall += 0.03
    phases.lap("a")
    assert phases.seconds == {"a": 0.05, "b": 0.0}
    assert list(phases.seconds) == ["a", "b"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout


def test_cpu_seconds_counts_a_process_s_cpu_and_its_wait_for_a_core() -> None:
    psutil = pytest.importorskip("psutil")
    me = {"me": psutil.Process()}
    before = cpu_seconds(me)
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn 0.2 s of CPU
        pass
    after = cpu_seconds(me)
    assert set(after) == {"frontend", "me", "me_runqueue_wait"}
    assert after["me"] - before["me"] >= 0.15
    assert after["frontend"] - before["frontend"] >= 0.15
    assert after["me_runqueue_wait"] >= before["me_runqueue_wait"] >= 0


def test_gc_timer_counts_each_generation_s_passes_and_lets_go() -> None:
    import gc

    timer = _GcTimer()
    garbage = [[i] for i in range(200_000)]  # a generation-2 pass has work to do
    gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    del garbage
    figures = timer.stop()
    assert figures["gen0"]["n"] >= 1 and figures["gen1"]["n"] >= 1 and figures["gen2"]["n"] >= 1
    assert 0.0 < figures["gen2"]["max_s"] <= figures["gen2"]["s"] < 10.0
    assert timer._callback not in gc.callbacks
    gc.collect()  # after stop: not counted
    assert [len(timer.passes[g]) for g in (0, 1, 2)] == [figures[f"gen{g}"]["n"] for g in (0, 1, 2)]
