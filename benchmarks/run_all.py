"""Run every benchmark (each in its own subprocess), then print one table of goals.

    uv run python benchmarks/run_all.py --quick --check

Writes benchmarks/results/<name>.json per script, benchmarks/results/summary.json, and a
PNG plot of the ratio goals (benchmarks/results/ratios.png) when matplotlib is installed.
`--check` exits 1 naming each goal missed (report-only goals such as the 2.0x stretch
are shown, never checked). A script that fails counts as a missed goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    Report,
    base_parser,
    bytecode_cached,
    goal_rows,
    machine_info,
    versions,
)

SCRIPTS = (
    "startup",
    "resolve",
    "hosted_overhead",
    "event_loop_lag",
    "local_throughput",
)


def run_script(
    name: str, quick: bool, timeout: float, extra: Sequence[str] = ()
) -> tuple[int, float]:
    command = [sys.executable, str(BENCH_DIR / f"{name}.py"), *extra]
    if quick:
        command.append("--quick")
    print(f"\n=== {name} ({' '.join(command[1:])})", flush=True)
    started = time.perf_counter()
    try:
        code = subprocess.run(command, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"{name}: timed out after {timeout:.0f} s", file=sys.stderr)
        code = 124
    return code, time.perf_counter() - started


def plot(goals: list[dict[str, Any]]) -> str:
    """A bar chart of each ratio goal's measured/target; a note when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (uv pip install matplotlib)"
    ratio_goals = [g for g in goals if g["unit"] == "x" and g["measured"] is not None]
    if not ratio_goals:
        return "plot skipped: no ratio goals"
    labels = [g["name"] for g in ratio_goals]
    values = [g["measured"] / g["target"] for g in ratio_goals]
    colors = ["tab:green" if g["passed"] else "tab:red" for g in ratio_goals]
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(labels) + 1.5))
    ax.barh(labels, values, color=colors)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("measured / target (pass: left of 1 for <=, right of 1 for >=)")
    ax.invert_yaxis()
    info = machine_info()
    ax.set_title(f"model-registry benchmarks - {info['cores']} cores, {info['date'][:10]}")
    fig.tight_layout()
    path = RESULTS_DIR / "ratios.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument(
        "--only", nargs="+", choices=SCRIPTS, default=None, help="run only these scripts"
    )
    args = parser.parse_args()
    selected = args.only or list(SCRIPTS)
    timeout = 240.0 if args.quick else 1800.0
    started = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}
    goals: list[dict[str, Any]] = []
    failed_scripts: list[str] = []
    if not bytecode_cached("litellm"):
        # Under PYTHONDONTWRITEBYTECODE=1 (set on these machines) every script would compile
        # all of litellm again on import: about 15 s each instead of about 8 s.
        print("writing litellm's bytecode caches (once)", flush=True)
        environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-c", "import litellm"], env=environment, check=False)
    # event_loop_lag's two parts run elsewhere when those scripts run anyway: the hosted
    # part on hosted_overhead's paired workers (--with-lag: no second set of workers,
    # server and imports, 15-20 s), the local part on local_throughput's engine (no
    # third engine start, 45-65 s here).
    extras: dict[str, list[str]] = {name: [] for name in selected}
    if "event_loop_lag" in selected:
        if "hosted_overhead" in selected:
            extras["hosted_overhead"].append("--with-lag")
            extras["event_loop_lag"].append("--skip-hosted")
        if "local_throughput" in selected:
            extras["event_loop_lag"].append("--skip-local")
    for name in selected:
        extra = extras[name]
        if name == "event_loop_lag" and {"--skip-hosted", "--skip-local"} <= set(extra):
            print("\n=== event_loop_lag: measured by hosted_overhead and local_throughput")
            continue
        code, wall = run_script(name, args.quick, timeout, extra)
        runs[name] = {"exit_code": code, "wall_s": round(wall, 1)}
        path = RESULTS_DIR / f"{name}.json"
        fresh = path.is_file() and path.stat().st_mtime >= time.time() - wall - 1
        if code != 0 or not fresh:
            failed_scripts.append(name)
            goals.append(
                {
                    "name": f"{name}: script ran and wrote its JSON",
                    "target": 0,
                    "compare": "<=",
                    "measured": float(code or 1),
                    "unit": "exit code",
                    "checked": True,
                    "passed": False,
                    "detail": "",
                }
            )
            continue
        goals.extend(json.loads(path.read_text())["goals"])
    total = time.perf_counter() - started

    report = Report("summary", quick=args.quick, args={"scripts": selected})
    report.figures = {"scripts": runs, "total_wall_s": round(total, 1)}
    report.goals = []
    data = report.to_dict() | {"goals": goals, "versions": versions()}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "summary.json").write_text(json.dumps(data, indent=2, default=str) + "\n")

    info = machine_info()
    title = (
        f"model-registry benchmarks{' (--quick)' if args.quick else ''}: "
        f"{info['cores']} cores, {info['cpu_model']}, {info['date']}, {total:.0f} s"
    )
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("goal", "target", "measured", "result"):
        table.add_column(column, overflow="fold")
    for row in goal_rows(goals):
        table.add_row(*row)
    console = Console(width=max(130, Console().width))
    console.print()
    console.print(table)
    print(plot(goals))

    missed = [g for g in goals if g.get("checked", True) and g["passed"] is False]
    unmeasured = [g for g in goals if g.get("checked", True) and g["passed"] is None]
    for g in [g for g in goals if not g.get("checked", True)]:
        print(f"report only: {g['name']}: {g['measured']} (target {g['compare']} {g['target']})")
    if args.check and (missed or unmeasured):
        for g in missed:
            print(
                f"MISSED: {g['name']}: measured {g['measured']}, target {g['compare']} "
                f"{g['target']} {g['unit']}"
            )
        for g in unmeasured:
            print(f"NOT MEASURED: {g['name']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
