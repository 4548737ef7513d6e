"""The benchmark helpers whose logic decides a figure or a verdict: goal verdicts, the
pairing that cancels a worker's bias, the lag probe's two clocks, the local runs' order,
the loop-lag figure of paired rounds, what `run_all.py --check` counts, where results
go, and the plot. And every script's --help, and the enforced-limits run (which
`run_all.py` leaves out) in a tiny mode. No timing is asserted."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import _common  # noqa: E402
from _common import (  # noqa: E402
    Goal,
    LagProbe,
    goal_of,
    paired_ratios,
    per_second_limit,
    percentile,
    rate_figures,
    rotated,
    verdict,
)
from _paired import ORDERS  # noqa: E402
from hosted_overhead import EMBED_PATHS, embed_goal, lag_goal  # noqa: E402
from local_throughput import palindrome  # noqa: E402
from run_all import plot, summarise  # noqa: E402

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
    assert Goal.from_dict(goal.to_dict()) == goal


def test_a_goal_of_repeated_measurements_is_their_median_with_its_spread() -> None:
    goal = goal_of("g", 0.95, ">=", [0.99, 0.93, 0.97], "x")
    assert (goal.measured, goal.low, goal.high) == (0.97, 0.93, 0.99)
    assert goal.passed is True
    assert goal_of("g", 0.95, ">=", [], "x").passed is None


def test_check_fails_on_a_miss_or_a_missing_figure_not_on_report_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    met = Goal("met", 1.0, "<=", 0.5, "x")
    stretch = Goal("stretch", 2.0, "<=", 2.2, "x", checked=False)
    assert summarise([met, stretch], check=True) == 0
    assert "report only: stretch" in capsys.readouterr().out
    assert verdict(stretch) == "FAIL (report only)"
    assert summarise([met, Goal("missed", 1.0, "<=", 1.5, "x")], check=True) == 1
    assert "MISSED: missed" in capsys.readouterr().out
    assert summarise([Goal("silent", 1.0, "<=", None, "x")], check=True) == 1
    assert summarise([Goal("missed", 1.0, "<=", 1.5, "x")], check=False) == 0


def test_paired_ratios_cancel_a_constant_worker_bias() -> None:
    # true ratio 0.98; worker 0 runs 3% cheaper, and the roles swap every round
    true, bias = 0.98, 1.03
    rounds = [true * bias, true / bias, true * bias, true / bias, true * bias]
    combined = paired_ratios(rounds)
    assert len(combined) == 2  # the odd last round is left out
    assert all(math.isclose(value, true) for value in combined)
    assert rotated(("a", "b"), 0) == ["a", "b"] and rotated(("a", "b"), 1) == ["b", "a"]


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


def test_latency_paths_come_first_and_follow_each_other_equally_often() -> None:
    n = len(ORDERS[0])
    assert all(sorted(order) == list(range(n)) for order in ORDERS)
    firsts = [order[0] for order in ORDERS]
    follows = [(o[i], o[i + 1]) for o in ORDERS for i in range(n - 1)]
    assert all(firsts.count(p) == firsts.count(0) for p in range(n))
    pairs = {(a, b) for a in range(n) for b in range(n) if a != b}
    assert {follows.count(pair) for pair in pairs} == {follows.count((0, 1))}


class FakeClocks:
    """The two clocks the lag probe reads, moved only by the test."""

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


def test_the_loop_lag_goal_pools_each_sides_wake_ups_over_the_rounds() -> None:
    def lags(stalls_ms: list[float]) -> dict[str, Any]:
        return {"lag": [0.01] * 147 + stalls_ms}  # idle wake-ups and a burst's few stalls

    # Round 0: one of our bursts has only 1 long stall, so that round's own p99 falls
    # among the idle wake-ups; pooled over the rounds, each side's p99 is a stall.
    answers = [
        {"litellm": lags([800.0, 900.0, 1000.0]), "many": lags([0.01, 0.01, 990.0])},
        {"many": lags([840.0, 945.0, 1050.0]), "litellm": lags([800.0, 900.0, 1000.0])},
    ]
    goal = lag_goal({"paths": ["litellm", "many"], "answers": answers, "n_per_batch": 256})
    pooled = {p: percentile([x for a in answers for x in a[p]["lag"]], 99) for p in answers[0]}
    assert 800.0 <= pooled["litellm"] <= 1000.0
    assert goal.measured == pytest.approx(pooled["many"] / pooled["litellm"])
    assert 0.9 < goal.measured < 1.1
    assert goal.low is not None and goal.low < 0.2  # the one pair of rounds, flipped


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_has_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "--out" in result.stdout


def test_results_go_to_a_folder_git_ignores() -> None:
    for name in ("summary.json", "goals.png", "hosted_overhead.json"):
        path = _common.RESULTS_DIR / name
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=BENCH_DIR)
        assert ignored.returncode == 0, f"{path} would be tracked by git"


def test_the_plot_shows_each_goal_against_its_target(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    goals = [
        goal_of("lag", 1.2, "<=", [0.8, 1.1, 0.9], "x"),
        goal_of("resolve", 10.0, "<=", [5.0, 6.0], "us"),
        goal_of("store", 0.95, ">=", [0.97, 0.99], "x"),
        Goal("modules", 0, "<=", 0, "modules"),  # a count: in the table, not on the plot
        Goal("limits", 0.98, ">=", None, "x"),
    ]
    path = tmp_path / "goals.png"
    assert plot(goals, path, "title") == f"plot: {path}"
    assert path.stat().st_size > 0
    assert plot(goals[3:], tmp_path / "none.png", "t") == "plot skipped: no goal to plot"


def test_rate_figures_count_trailing_windows_open_at_their_start() -> None:
    """As the enforcing server counts: (t - seconds, t] for each arrival t."""
    times = [1.6, 0.0, 0.5, 1.0, 1.5]  # in any order
    figures = rate_figures(times, rpm=120)  # 3 a second admitted, 120 a minute
    assert figures["most_in_1s"] == 3  # (0.6, 1.6]; 0.0 is out of (0.0, 1.0]
    assert (figures["limit_1s"], figures["most_in_60s"], figures["limit_60s"]) == (3, 5, 120)
    assert figures["over_1s_at_s"] == [] and figures["achieved_rpm"] == 150.0
    assert rate_figures([0.0, 0.1, 0.2, 0.3], rpm=60)["over_1s_at_s"] == [0.1, 0.2, 0.3]
    assert rate_figures([], rpm=60)["most_in_1s"] == 0
    assert [per_second_limit(rpm) for rpm in (600, 1800, 10)] == [15, 45, 1]


def test_the_enforced_limits_run_works_in_a_tiny_mode(tmp_path: Path) -> None:
    script = BENCH_DIR / "enforced_limits.py"
    tiny = ["--prompts", "40", "--rpm", "6000", "--baseline-seconds", "1", "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, str(script), *tiny], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "enforced_limits.json").read_text())["figures"]
    run = figures["limited"]
    assert (run["prompts"], run["requests"], run["rejected"], run["failed"]) == (40, 40, 0, 0)
    assert (run["most_in_1s"], run["limit_1s"], run["limit_60s"]) == (40, 150, 6000)
    assert figures["baseline"]["requests"] >= 1


def test_the_embedding_pair_runs_side_by_side_in_a_tiny_mode() -> None:
    """embed_many against raw litellm.aembedding: both paths send their requests of
    EMBED_BATCH texts to the server, and the pair gives a ratio checked against 0.97."""
    from _paired import EMBED_BATCH, PairedWorkers, worker_model

    from model_registry.testing import run_openai_server

    with run_openai_server() as server, PairedWorkers(server) as workers:
        workers.ready()
        before = [server.stats(worker_model(i)).requests for i in range(2)]
        compared = workers.compare(EMBED_PATHS, 4, 4, rounds=2)
        bodies = [b for i in range(2) for b in server.stats(worker_model(i)).bodies[-8:]]
        after = [server.stats(worker_model(i)).requests for i in range(2)]
    # a round not counted (both workers warm at this concurrency), then 2 rounds of 4
    assert [a - b for a, b in zip(after, before, strict=True)] == [12, 12]
    assert [len(b["input"]) for b in bodies] == [EMBED_BATCH] * 16
    assert compared["paths"] == list(EMBED_PATHS) and len(compared["per_round_ratio"]) == 2
    assert set(compared["cpu_ms_per_call"]) == set(EMBED_PATHS)
    goal = embed_goal(compared)
    assert (goal.target, goal.compare, goal.unit) == (0.97, ">=", "x")
    assert goal.name.startswith("hosted: embed_many / raw litellm.aembedding")
    assert goal.measured is not None and goal.measured > 0


def test_startup_measures_the_import_goals_and_sees_what_a_command_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import startup

    assert startup.TARGETS["import model_registry"] == (0.015, 20.0)
    assert startup.TARGETS["import model_registry + resolve(alias)"] == (0.015, 20.0)
    assert startup.TARGETS["model-registry list"] == (0.06, None)
    assert set(startup.TARGETS) < set(startup.COMMANDS)  # each timed beside import litellm
    wall, peak_mib, _ = startup.run(startup.command("import model_registry"))
    assert wall > 0 and 5 < peak_mib < 1024
    loaded = startup.loaded_modules("import model_registry")
    assert "model_registry" in loaded and not loaded & set(startup.HEAVY)
    typo = ("python", "import model_registry as m; m.resolve('claude-sonet')")
    monkeypatch.setitem(startup.COMMANDS, "typo", typo)
    assert "litellm model list" in startup.loaded_modules("typo")  # the typo guard read it


#: The benchmarks stay small enough to read in one sitting; new ones share `_common`
#: and `_paired`. 1,500 lines held the benchmarks up to the hosted, local and limit
#: ones; each capability since (batch prices, the store's memory, events, Ray,
#: embeddings) adds one short script, so the budget is 1,500 plus 150 for each.
MAX_BENCHMARK_LINES = 1_500 + 5 * 150


def test_the_benchmarks_stay_under_their_line_budget() -> None:
    lines = {
        p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in BENCH_DIR.glob("*.py")
    }
    assert sum(lines.values()) < MAX_BENCHMARK_LINES, f"benchmarks/*.py: {lines}"
