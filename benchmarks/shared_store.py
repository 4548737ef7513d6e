"""Throughput of four processes sharing one result store against one process, the same
prompts against the loopback server (benchmarks/README.md, "Sharing a store").

    uv run python benchmarks/shared_store.py --quick
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from _common import REPO, Report, base_parser, fresh_env, goal_of, spread

from model_registry.testing import FakeOpenAIServer, run_openai_server

#: Each process runs this batch (`python -m tests.fixtures.shared_batch`): it prints `ready`
#: once its client started, waits for a line on stdin, runs `generate_many` over the same
#: prompts with the same store, and prints a JSON line (answers, from_store, wrong, s).
WORKER = "tests.fixtures.shared_batch"


def run_once(
    server: FakeOpenAIServer, store: Path, model: str, n: int, processes: int
) -> dict[str, float]:
    """`processes` workers run the `n` prompts on one new store; the wall time from the
    first one's start to the last one's end, and what the server saw."""
    args = (str(store), server.url, model, str(n), "30")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", WORKER, *args],
            cwd=REPO,
            env=fresh_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:  # every interpreter started and LiteLLM imported: off the clock
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outs = [json.loads(worker.communicate(timeout=1800)[0].splitlines()[-1]) for worker in workers]
    # from the first batch's start to the last one's end: interpreters' exits are off the clock
    wall = max(out["ended"] for out in outs) - min(out["started"] for out in outs)
    if any(out["answers"] != n or out["wrong"] for out in outs):
        raise SystemExit(f"a worker returned wrong answers: {outs}")
    return {
        "wall_s": round(wall, 3),
        "prompts_per_s": round(n / wall, 1),
        "requests": server.stats(model).requests,
        "from_store": [out["from_store"] for out in outs],
        "cpu_s": [round(out["cpu_s"], 2) for out in outs],
    }


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--prompts", type=int, help="prompts per batch (default 4000; quick 800)")
    parser.add_argument("--rounds", type=int, help="pairs of runs (default 3; quick 1)")
    parser.add_argument("--delay", type=float, default=0.0, help="server delay per answer (s)")
    args = parser.parse_args()
    n = args.prompts or (800 if args.quick else 4_000)
    rounds = args.rounds or (1 if args.quick else 3)
    report = Report("shared_store", quick=args.quick, args={"prompts": n, "rounds": rounds})
    runs: dict[str, list[dict[str, float]]] = {"one": [], "four": []}
    ratios = []
    with run_openai_server() as server, TemporaryDirectory() as tmp:
        for turn in range(rounds):
            order = ("one", "four") if turn % 2 == 0 else ("four", "one")  # who goes first
            for side in order:
                model = f"shared-{side}-{turn}"
                server.configure(model, delay=args.delay)
                run = run_once(
                    server, Path(tmp, f"{model}.sqlite"), model, n, 4 if side == "four" else 1
                )
                runs[side].append(run)
                print(f"round {turn + 1}/{rounds} {side}: {run}", flush=True)
            ratios.append(runs["four"][-1]["prompts_per_s"] / runs["one"][-1]["prompts_per_s"])
    report.figures = {
        "runs": runs,
        "ratio": spread(ratios),
        "extra_requests": max(run["requests"] - n for side in runs.values() for run in side),
    }
    print(f"four processes / one process, prompts per second: {[round(r, 2) for r in ratios]}")
    goals = [
        goal_of(
            "shared store: 4 processes / 1 process throughput",
            1.0,
            ">=",
            ratios,
            "x",
            checked=False,
            detail=f"{n} prompts, each sent once in total; {rounds} round(s)",
        )
    ]
    report.save(args.out, goals)


if __name__ == "__main__":
    main()
