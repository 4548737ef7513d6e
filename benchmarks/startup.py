"""How fast the library and its CLI start, against `python -c "import litellm"`.

Each command runs in a fresh subprocess, repeated (order rotated every round); the
figure is the median wall time over `import litellm`'s. Also checks that none of
litellm, vllm, torch or transformers is loaded by `import model_registry`, `list` or
`--help`. Timed as Python runs by default: with bytecode caches (these machines set
PYTHONDONTWRITEBYTECODE=1, under which every process compiles all of LiteLLM again).

    uv run python benchmarks/startup.py --quick
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, Goal, Report, base_parser, goal_of, median

HEAVY = ("litellm", "vllm", "torch", "transformers")
TARGETS = {"import model_registry": 0.1, "model-registry list": 0.25, "model-registry --help": 0.25}

# Runs the target, then reports the top-level heavy modules it loaded.
_PROBE = """
import sys, json
target, sys.argv = sys.argv[1], sys.argv[2:]
code = 0
if target == "import":
    __import__(sys.argv[0])
else:
    try:
        from model_registry.cli import main
        main()
    except SystemExit as exc:
        code = exc.code or 0
heavy = sorted({n.split('.')[0] for n in sys.modules} & {"litellm", "vllm", "torch", "transformers"})
sys.stderr.write("\\nHEAVY " + json.dumps(heavy) + "\\n")
sys.exit(code)
"""


def commands() -> dict[str, list[str]]:
    """The timed commands."""
    python = sys.executable
    cli = Path(python).parent / "model-registry"
    cli_cmd = [str(cli)] if cli.exists() else [python, "-m", "model_registry"]
    return {
        "import litellm": [python, "-c", "import litellm"],
        "import model_registry": [python, "-c", "import model_registry"],
        "model-registry list": [*cli_cmd, "list"],
        "model-registry --help": [*cli_cmd, "--help"],
    }


def env() -> dict[str, str]:
    """The environment of every command: default alias files, bytecode caches written."""
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
    environment.pop("MODEL_REGISTRY_ALIASES", None)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def run(command: list[str]) -> tuple[float, str]:
    """Wall seconds of `command`, and its stderr; raises when it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{command} exited {result.returncode}: {result.stderr.decode()[-2000:]}"
        )
    return elapsed, result.stderr.decode()


def heavy_modules(name: str) -> list[str]:
    """The heavy modules the command `name` loads."""
    target = ["import", "model_registry"] if name.startswith("import") else ["cli", *name.split()]
    _, stderr = run([sys.executable, "-c", _PROBE, *target])
    line = next(line for line in reversed(stderr.splitlines()) if line.startswith("HEAVY "))
    heavy: list[str] = json.loads(line.removeprefix("HEAVY "))
    return heavy


def main() -> None:
    parser = base_parser(__doc__ or "")
    args = parser.parse_args()
    # --quick: `import litellm` once (3% spread between runs; the goals leave 4-6x of room)
    repeat, litellm_repeat = (3, 1) if args.quick else (11, 11)
    report = Report("startup", quick=args.quick, args={"repeat": repeat})
    cmds = commands()
    names = list(cmds)
    for name in names:  # warm the OS file cache, write the bytecode caches
        run(cmds[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if name != "import litellm" or r < litellm_repeat:
                times[name].append(run(cmds[name])[0])
    base = median(times["import litellm"])
    report.figures = {"wall_s": times}
    for name, target in TARGETS.items():
        print(f"{name:24s} {median(times[name]) * 1e3:8.1f} ms ({median(times[name]) / base:.3f}x)")
        ratios = [t / base for t in times[name]]
        report.goal(goal_of(f"startup: {name} / import litellm", target, "<=", ratios, "x"))
    for name in TARGETS:
        heavy = heavy_modules(name)
        goal_name = f"startup: {name} loads none of {'/'.join(HEAVY)}"
        report.goal(Goal(goal_name, 0, "<=", len(heavy), "modules", detail=", ".join(heavy)))
    report.save(args.out)


if __name__ == "__main__":
    main()
