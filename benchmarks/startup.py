"""How fast the library and its CLI start, against `python -c "import litellm"`.

Each command runs in a fresh subprocess, repeated (order rotated every round); the
figure is the median wall time. Also counts the modules each loads and checks that
none of litellm, vllm, torch or transformers is among them.

    uv run python benchmarks/startup.py --quick
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, Goal, Report, base_parser, bytecode_cached, median, progress_bar, spread

HEAVY = ("litellm", "vllm", "torch", "transformers")

# A tiny runner: executes the target, then reports which modules got loaded.
_PROBE = """
import sys, json, runpy
target = sys.argv[1]
sys.argv = sys.argv[2:]
code = 0
if target == "import":
    __import__(sys.argv[0])
else:
    try:
        from model_registry.cli import main
        main()
    except SystemExit as exc:
        code = exc.code or 0
names = sorted(sys.modules)
heavy = sorted({n.split('.')[0] for n in names} & {"litellm", "vllm", "torch", "transformers"})
sys.stderr.write("\\nMODULES " + json.dumps({"count": len(names), "heavy": heavy}) + "\\n")
sys.exit(code)
"""


def commands(python: str) -> dict[str, list[str]]:
    exe = Path(python).parent
    cli = exe / "model-registry"
    cli_cmd = [str(cli)] if cli.exists() else [python, "-m", "model_registry"]
    return {
        "import litellm": [python, "-c", "import litellm"],
        "import model_registry": [python, "-c", "import model_registry"],
        "model-registry list": [*cli_cmd, "list"],
        "model-registry --help": [*cli_cmd, "--help"],
        "python -c pass": [python, "-c", "pass"],
    }


def probes(python: str) -> dict[str, list[str]]:
    return {
        "import model_registry": [python, "-c", _PROBE, "import", "model_registry"],
        "model-registry list": [python, "-c", _PROBE, "cli", "model-registry", "list"],
        "model-registry --help": [python, "-c", _PROBE, "cli", "model-registry", "--help"],
    }


def env() -> dict[str, str]:
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
    environment.pop("MODEL_REGISTRY_ALIASES", None)
    # Measured as Python runs by default: the first run writes bytecode caches, later runs
    # read them. (These machines set PYTHONDONTWRITEBYTECODE=1, under which every process
    # compiles all of litellm again: about 15 s instead of about 8 s here.)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def time_once(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{command} exited {result.returncode}: {result.stderr.decode()[-2000:]}"
        )
    return elapsed


def modules_loaded(command: list[str]) -> dict[str, object]:
    result = subprocess.run(command, cwd=REPO, env=env(), capture_output=True, timeout=120)
    for line in reversed(result.stderr.decode().splitlines()):
        if line.startswith("MODULES "):
            data: dict[str, object] = json.loads(line[len("MODULES ") :])
            return data
    raise RuntimeError(f"{command}: no module report: {result.stderr.decode()[-2000:]}")


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--repeat", type=int, default=None, help="runs per command (median)")
    parser.add_argument(
        "--litellm-repeat",
        type=int,
        default=None,
        help="runs of `import litellm` (8-10 s each here; default: 1 with --quick, else --repeat)",
    )
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 11)
    # --quick: the reference runs once. Its spread here is 3% (9.5-10.1 s), while the
    # goals leave 4-6x of room (0.016x and 0.07x measured against 0.1x and 0.25x).
    litellm_repeat = min(args.litellm_repeat or (1 if args.quick else repeat), repeat)
    report = Report(
        "startup", quick=args.quick, args={"repeat": repeat, "litellm_repeat": litellm_repeat}
    )
    python = sys.executable
    cmds = commands(python)
    names = list(cmds)
    times: dict[str, list[float]] = {name: [] for name in names}
    # Warm the OS file cache and write the bytecode caches (once, before any timing).
    for name in names if not bytecode_cached("litellm") else names[1:]:
        time_once(cmds[name])
    if not bytecode_cached("litellm"):
        report.note(
            "litellm has no bytecode cache (read-only site-packages?): every import of it "
            "compiles it again, so its import time is inflated"
        )
    steps = repeat * (len(names) - 1) + litellm_repeat
    with progress_bar("startup", steps) as advance:
        for r in range(repeat):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                if name == "import litellm" and r >= litellm_repeat:
                    continue
                times[name].append(time_once(cmds[name]))
                advance(1)
    modules = {name: modules_loaded(cmd) for name, cmd in probes(python).items()}
    base = median(times["import litellm"])
    figures: dict[str, object] = {
        "wall_s": {name: spread(values) for name, values in times.items()},
        "ratio_to_import_litellm": {name: median(values) / base for name, values in times.items()},
        "modules": modules,
        "commands": {
            name: " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
            for name, cmd in cmds.items()
        },
    }
    report.figures.update(figures)
    for name in names:
        print(
            f"{name:24s} median {median(times[name]) * 1e3:8.1f} ms  "
            f"({median(times[name]) / base:.3f}x import litellm)"
        )
    for name, data in modules.items():
        print(f"{name:24s} loads {data['count']} modules; heavy: {data['heavy'] or 'none'}")

    targets = {
        "import model_registry": 0.1,
        "model-registry list": 0.25,
        "model-registry --help": 0.25,
    }
    for name, target in targets.items():
        report.goal(
            Goal(f"startup: {name} / import litellm", target, "<=", median(times[name]) / base, "x")
        )
    for name in ("import model_registry", "model-registry list", "model-registry --help"):
        heavy = modules[name]["heavy"]
        assert isinstance(heavy, list)
        report.goal(
            Goal(
                f"startup: {name} loads none of {'/'.join(HEAVY)}",
                0,
                "<=",
                float(len(heavy)),
                "heavy modules",
                detail=", ".join(heavy),
            )
        )
    report.save(args.out)


if __name__ == "__main__":
    sys.exit(main())
