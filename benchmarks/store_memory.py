"""Peak memory of a long batch (benchmarks/README.md, "A million prompts in bounded memory"):
`iter_many` over a generator with a store, `model-registry run` over a JSONL file, and a
plain `openai.AsyncOpenAI` + semaphore script that keeps its results in a list, each in a
fresh process against the loopback server, at 10,000, 100,000 and 1,000,000 prompts.

    uv run python benchmarks/store_memory.py --quick      # 10,000 and 30,000 prompts
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, Goal, Report, base_parser, fresh_env, python_json

from model_registry.testing import run_openai_server

#: Each path's child: argv is (url, prompts, folder); it prints its peak RSS in MiB as JSON.
_PEAK = "import resource; peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"
_ITER_MANY = f"""
import asyncio, sys, model_registry
{_PEAK}
url, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
async def main():
    client = model_registry.get_client("openai:mem-iter", api_base=url, api_key="sk-mem")
    async with client:
        prompts = (f"prompt {{i}}" for i in range(n))
        count = 0
        async for _ in client.iter_many(prompts, results_db=folder + "/iter.sqlite"):
            count += 1
    assert count == n
asyncio.run(main())
print(peak())
"""
_OPENAI = f"""
import asyncio, sys, openai
{_PEAK}
url, n = sys.argv[1], int(sys.argv[2])
async def main():
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-mem", max_retries=0)
    gate = asyncio.Semaphore(64)
    async def one(i):
        async with gate:
            messages = [{{"role": "user", "content": f"prompt {{i}}"}}]
            r = await client.chat.completions.create(model="mem-openai", messages=messages)
            return r.choices[0].message.content
    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert len(results) == n
asyncio.run(main())
print(peak())
"""
_ALIAS = """
[aliases."mem-run"]
provider = "openai"
model_id = "mem-run"

[aliases."mem-run".defaults]
api_base = "{url}"
api_key = "sk-mem"
"""


def run_peak(url: str, n: int, folder: Path) -> float:
    """`model-registry run` over an n-line file: the peak RSS of its process, MiB."""
    prompts, out = folder / "prompts.jsonl", folder / "out.jsonl"
    with prompts.open("w") as file:
        file.writelines(json.dumps(f"prompt {i}") + "\n" for i in range(n))
    (folder / "aliases.toml").write_text(_ALIAS.format(url=url))
    code = (
        f"{_PEAK}\nimport sys, runpy, atexit\natexit.register(lambda: print(peak(), file=sys.stderr))\n"
        "sys.argv = ['model-registry', *sys.argv[1:]]\nrunpy.run_module('model_registry', run_name='__main__')"
    )
    argv = [sys.executable, "-c", code, "run", "mem-run", str(prompts), "--out", str(out)]
    env = fresh_env(MODEL_REGISTRY_ALIASES=str(folder / "aliases.toml"))
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"run exited {done.returncode}: {done.stderr[-2000:]}")
    lines = out.read_text().count("\n")
    assert lines == n, f"run wrote {lines} lines for {n} prompts"
    return float(done.stderr.strip().splitlines()[-1])


def measure(sizes: list[int]) -> dict[str, dict[str, float]]:
    """Peak RSS (MiB) of each path at each size, each in a fresh process."""
    figures: dict[str, dict[str, float]] = {"iter_many": {}, "run": {}, "openai": {}}
    with run_openai_server() as server:
        for n in sizes:
            with tempfile.TemporaryDirectory() as folder:
                figures["iter_many"][str(n)] = python_json(_ITER_MANY, server.url, str(n), folder)
                figures["openai"][str(n)] = python_json(_OPENAI, server.url, str(n))
                figures["run"][str(n)] = run_peak(server.url, n, Path(folder))
            shown = ", ".join(f"{path} {peaks[str(n)]:.0f}" for path, peaks in figures.items())
            print(f"{n:>9} prompts: peak RSS MiB: {shown}", flush=True)
    return figures


def goals(figures: dict[str, dict[str, float]], sizes: list[int]) -> list[Goal]:
    """Under 300 MiB (iter_many) and 400 MiB (run) at the largest size; the growth per
    prompt of each path between the smallest and largest, reported."""
    top, low = str(sizes[-1]), str(sizes[0])
    found = [
        Goal(
            f"memory: iter_many peak RSS ({top} prompts)",
            300,
            "<",
            figures["iter_many"][top],
            "MiB",
        ),
        Goal(f"memory: run peak RSS ({top} prompts)", 400, "<", figures["run"][top], "MiB"),
    ]
    for path, peaks in figures.items():
        growth = (peaks[top] - peaks[low]) * 1024 / max(1, sizes[-1] - sizes[0])
        name = f"memory: {path} growth per prompt ({low} to {top})"
        found.append(Goal(name, 0.3, "<=", growth, "KiB", checked=path != "openai"))
    return found


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--sizes", type=int, nargs="+", help="prompt counts (ascending)")
    args = parser.parse_args()
    sizes: list[Any] = args.sizes or (
        [10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000]
    )
    report = Report("store_memory", quick=args.quick, args={"sizes": sizes})
    report.figures = measure(sizes)
    report.save(args.out, goals(report.figures, sizes))


if __name__ == "__main__":
    main()
