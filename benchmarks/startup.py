"""How fast the library and its CLI start, and their peak memory, beside `import litellm`
in one run, each command in a fresh subprocess (benchmarks/README.md, "Start-up").

    uv run python benchmarks/startup.py --quick
"""

from __future__ import annotations

import subprocess
import sys
import time

from _common import (
    REPO,
    Goal,
    Report,
    base_parser,
    fresh_env,
    goal_of,
    median,
    python_json,
    rotated,
)

HEAVY = ("litellm", "vllm", "torch", "transformers")
#: Loaded when first used, never by `import model_registry` or a resolve of an alias.
LAZY = (
    "sqlite3",
    "aiolimiter",
    "ssl",
    "hashlib",
    "asyncio",
    "logging",
    "litellm model list",
)
ALIAS = "my-reasoning-model"
#: Each command: Python code to run, or the CLI's arguments.
COMMANDS = {
    "import litellm": ("python", "import litellm"),
    "import model_registry": ("python", "import model_registry"),
    "import model_registry + resolve(alias)": (
        "python",
        f"import model_registry as m; m.resolve({ALIAS!r}); m.resolve({ALIAS!r})",
    ),
    "model-registry list": ("cli", "list"),
    "model-registry --help": ("cli", "--help"),
}
#: Per command: at most this times `import litellm`'s wall time, and this peak MiB.
TARGETS: dict[str, tuple[float, float | None]] = {
    "import model_registry": (0.015, 20.0),
    "import model_registry + resolve(alias)": (0.015, 20.0),
    "model-registry list": (0.06, None),
    "model-registry --help": (0.25, None),
}
# Runs a command as `command()` does, then prints the top-level modules it loaded.
_PROBE = """
import json, sys
kind, arg = sys.argv[1:]
code, opened = 0, []
def audit(event, args):
    if event == "open" and "model_prices_and_context_window" in str(args[0]):
        opened.append(args[0])
sys.addaudithook(audit)
if kind == "python":
    exec(arg)
else:
    sys.argv = ["model-registry", arg]
    try:
        from model_registry.cli import main
        main()
    except SystemExit as exc:
        code = exc.code or 0
loaded = {n.split('.')[0] for n in sys.modules} | ({"litellm model list"} if opened else set())
print("\\n" + json.dumps(sorted(loaded)))
sys.exit(code)
"""


# The child's own peak (VmHWM of its memory after exec; ru_maxrss from wait4 would report the
# forked parent's peak), printed last on stderr; the CLI runs as its console script does.
_PEAK = "import atexit, sys\natexit.register(lambda: sys.stderr.write('\\nVmHWM ' + next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM'))))\n"
_CLI = (
    "sys.argv = ['model-registry', {arg!r}]\nfrom model_registry_cli import main\nsys.exit(main())"
)


def command(name: str) -> list[str]:
    """The command line for `name`, reporting its peak memory."""
    kind, arg = COMMANDS[name]
    return [sys.executable, "-c", _PEAK + (arg if kind == "python" else _CLI.format(arg=arg))]


def run(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds of `argv`, its own peak resident MiB and its stderr; raises when it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=fresh_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    stderr, _, peak_kib = done.stderr.rpartition("\nVmHWM ")
    return elapsed, int(peak_kib) / 1024, stderr


def loaded_modules(name: str) -> set[str]:
    """The top-level modules the command `name` loads (and "litellm model list")."""
    return set(python_json(_PROBE, *COMMANDS[name]))


def measure(repeat: int, litellm_repeat: int) -> dict[str, dict[str, list[float]]]:
    """Every command `repeat` times (`import litellm` `litellm_repeat` times), order rotated."""
    names = list(COMMANDS)
    for name in names:  # warm the OS file cache, write the bytecode caches
        run(command(name))
    figures: dict[str, dict[str, list[float]]] = {n: {"wall_s": [], "peak_mib": []} for n in names}
    for r in range(repeat):
        for name in rotated(names, r):
            if name != "import litellm" or r < litellm_repeat:
                wall, peak, _ = run(command(name))
                figures[name]["wall_s"].append(wall)
                figures[name]["peak_mib"].append(peak)
    return figures


def goals(figures: dict[str, dict[str, list[float]]]) -> list[Goal]:
    """Time over `import litellm`, peak memory, and what each command loads."""
    base = median(figures["import litellm"]["wall_s"])
    found = []
    for name, (ratio, mib) in TARGETS.items():
        wall, peak = figures[name]["wall_s"], figures[name]["peak_mib"]
        print(f"{name:40s} {median(wall) * 1e3:7.1f} ms, {median(peak):5.1f} MiB")
        ratios = [t / base for t in wall]
        found.append(goal_of(f"startup: {name} / import litellm", ratio, "<=", ratios, "x"))
        if mib is not None:
            found.append(goal_of(f"startup: {name}, peak memory", mib, "<=", peak, "MiB"))
        banned = HEAVY + (LAZY if name.startswith("import") else ())
        loaded = sorted(loaded_modules(name) & set(banned))
        what = "heavy or lazy" if name.startswith("import") else "heavy"
        goal_name = f"startup: {name} loads no {what} module"
        found.append(Goal(goal_name, 0, "<=", len(loaded), "modules", detail=", ".join(loaded)))
    return found


def main() -> None:
    parser = base_parser(__doc__ or "")
    args = parser.parse_args()
    # --quick: `import litellm` twice (runs about 3% apart; it is the slow one)
    repeat, litellm_repeat = (5, 2) if args.quick else (11, 11)
    report = Report("startup", quick=args.quick, args={"repeat": repeat, "alias": ALIAS})
    report.figures = measure(repeat, litellm_repeat)
    report.save(args.out, goals(report.figures))


if __name__ == "__main__":
    main()
