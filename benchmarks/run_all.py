"""Run every benchmark (each in its own subprocess), then print and plot one table of goals.

    uv run python benchmarks/run_all.py --quick --check

Writes `<out>/<name>.json` per script, `<out>/summary.json` and `<out>/goals.png` (default
`benchmarks/results/`, ignored by git). `--check` exits 1 naming each goal missed or not
measured (a failed script is a missed goal); report-only goals never fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    Goal,
    base_parser,
    format_value,
    machine_info,
    print_goals,
)

SCRIPTS = ("startup", "resolve", "hosted_overhead", "events_overhead", "local_throughput")
LABEL = {"va": "center", "fontsize": 8}


def run_script(name: str, quick: bool, out: Path, timeout: float) -> tuple[list[Goal], float]:
    """Run one script; its goals (a failed script is one missed goal) and wall seconds."""
    command = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--out", str(out)]
    command += ["--quick"] if quick else []
    print(f"\n=== {name}", flush=True)
    path = out / f"{name}.json"
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        code = subprocess.run(command, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = 124
    wall = time.perf_counter() - started
    if code != 0 or not path.is_file():
        name = f"{name}: the script ran and wrote its results"
        return [Goal(name, 0, "<=", code or 1, "exit code")], wall
    return [Goal.from_dict(g) for g in json.loads(path.read_text())["goals"]], wall


def plot(goals: Sequence[Goal], path: Path, title: str) -> str:
    """Each goal's figure and spread over its target (1 = on target), values labelled: a
    marker per goal, a bar over its spread; a note when it cannot plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed"
    shown = [g for g in goals if g.measured is not None and g.target > 0]
    if not shown:
        return "plot skipped: no goal to plot"
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(shown) + 1.5))
    for y, g in enumerate(shown):
        x = g.measured / g.target  # type: ignore[operator]
        low = (g.low if g.low is not None else g.measured) / g.target  # type: ignore[operator]
        high = (g.high if g.high is not None else g.measured) / g.target  # type: ignore[operator]
        color = "tab:green" if g.passed else "tab:red"
        ax.plot([min(low, high), max(low, high)], [y, y], color=color, linewidth=3, alpha=0.4)
        ax.plot([x], [y], "o", color=color)
        text = f"{format_value(g.measured, g.unit)} (target {g.compare} {format_value(g.target, g.unit)})"
        ax.annotate(text, (max(x, high), y), xytext=(6, 0), textcoords="offset points", **LABEL)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(shown)), [g.name for g in shown], fontsize=8)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    left, right = ax.get_xlim()  # linear: a difference goal's figure can be negative
    left, right = min(left, 0.9), max(right, 1.1)
    ax.set_xlim(left, right + 0.6 * (right - left))  # room for the labels
    ax.set_title("measured / target (each label says which side passes)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


def summarise(goals: Sequence[Goal], check: bool) -> int:
    """Print report-only goals, and with `check` what was missed; the exit code."""
    for g in goals:
        if not g.checked:
            print(f"report only: {g.name}: {format_value(g.measured, g.unit)}")
    missed = [g for g in goals if g.checked and g.passed is not True]
    if not check or not missed:
        return 0
    for g in missed:
        shown = format_value(g.measured, g.unit) if g.measured is not None else "not measured"
        print(f"MISSED: {g.name}: {shown}, target {g.compare} {format_value(g.target, g.unit)}")
    return 1


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, default=list(SCRIPTS))
    args = parser.parse_args()
    out: Path = (args.out or RESULTS_DIR).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    goals: list[Goal] = []
    walls: dict[str, float] = {}
    for name in args.only:
        found, walls[name] = run_script(name, args.quick, out, 240.0 if args.quick else 1800.0)
        goals += found
    total = time.perf_counter() - started
    info = machine_info()
    summary = {"machine": info, "quick": args.quick, "wall_s": walls}
    summary |= {"total_wall_s": round(total, 1), "goals": [g.to_dict() for g in goals]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    title = (
        f"model-registry benchmarks{' --quick' if args.quick else ''}: {info['cores']} cores, "
        f"{info['cpu_model']}, {info['date'][:10]}, {info['git_commit']}, {total:.0f} s"
    )
    print()
    print_goals(goals, title)
    print(plot(goals, out / "goals.png", title))
    print(f"wall time {total:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()))
    sys.exit(summarise(goals, args.check))


if __name__ == "__main__":
    main()
