"""Peak memory of a long batch (benchmarks/README.md, "A million prompts in bounded memory"):
`iter_many` over a generator with a store, `model-registry run` over a JSONL file, and a
plain `openai.AsyncOpenAI` + semaphore script that keeps its results in a list, answered
in process (`litellm.acompletion` returns a built answer: every layer of ours runs, none of
LiteLLM's per-call work; an `httpx.MockTransport` for openai), at 10,000, 100,000 and
1,000,000 prompts.

    uv run python benchmarks/store_memory.py --quick      # 10,000 and 30,000 prompts
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, Goal, Report, base_parser, fresh_env

#: One `iter_many` over the largest size: it prints `[prompts, peak RSS MiB]` as JSON each
#: time it has read as many prompts as a size (the peak so far is that size's peak).
_PEAK = "import resource; peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"
#: LiteLLM answers every call at once with one built answer (its mock_response path costs
#: 6-7 ms a call here, two hours a million).
_ANSWERED = """
from model_registry.clients._litellm_import import import_litellm
litellm = import_litellm()
message = {"role": "assistant", "content": "ok"}
answer = litellm.ModelResponse(model="gpt-4o-mini", usage=litellm.Usage(prompt_tokens=3,
    completion_tokens=1, total_tokens=4), choices=[{"index": 0, "message": message}])
async def answered(**kwargs): return answer
litellm.acompletion = answered
"""
_ITER_MANY = f"""
import asyncio, sys, model_registry
{_PEAK}
{_ANSWERED}
folder, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
async def main():
    client = model_registry.get_client("openai:gpt-4o-mini", api_key="sk-mem")
    async with client:
        prompts = (f"prompt {{i}}" for i in range(sizes[-1]))
        count = 0
        async for _ in client.iter_many(prompts, results_db=folder + "/iter.sqlite"):
            count += 1
            if count in sizes:
                print(f"[{{count}}, {{peak()}}]", flush=True)
asyncio.run(main())
"""
#: A fresh process per size: it keeps every answer in a list and prints its peak RSS, MiB.
_OPENAI = f"""
import asyncio, sys, httpx, openai
{_PEAK}
n = int(sys.argv[1])
choice = {{"index": 0, "finish_reason": "stop", "message": {{"role": "assistant", "content": "ok"}}}}
body = {{"id": "c-mem", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [choice], "usage": {{"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}}}
async def main():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    http = httpx.AsyncClient(transport=transport)
    client = openai.AsyncOpenAI(base_url="http://mem.invalid/v1", api_key="k", http_client=http)
    gate = asyncio.Semaphore(64)
    async def one(i):
        async with gate:
            messages = [{{"role": "user", "content": f"prompt {{i}}"}}]
            r = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            return r.choices[0].message.content
    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert len(results) == n and results[-1] == "ok"
asyncio.run(main())
print(f"[{{n}}, {{peak()}}]")
"""
_ALIAS = """
[aliases."mem-run"]
provider = "openai"
model_id = "gpt-4o-mini"

[aliases."mem-run".defaults]
api_key = "sk-mem"
"""


def child(label: str, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a child, echoing its `[prompts, MiB]` lines; {prompts: MiB} of them all."""
    peaks: dict[str, float] = {}
    with subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("["):
                n, mib = json.loads(line)
                peaks[str(n)] = mib
                print(f"{label}: {n} prompts, peak RSS {mib:.0f} MiB", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}")
    return peaks


def run_peak(n: int, folder: Path) -> float:
    """`model-registry run` over an n-line file: the peak RSS of its process, MiB."""
    prompts, out = folder / "prompts.jsonl", folder / "out.jsonl"
    with prompts.open("w") as file:
        file.writelines(json.dumps(f"prompt {i}") + "\n" for i in range(n))
    (folder / "aliases.toml").write_text(_ALIAS)
    code = (
        f"{_PEAK}\n{_ANSWERED}\nimport sys, runpy, atexit\n"
        f"atexit.register(lambda: print(f'[{n}, {{peak()}}]', flush=True))\n"
        "sys.argv = ['model-registry', *sys.argv[1:]]\nrunpy.run_module('model_registry', run_name='__main__')"
    )
    argv = [sys.executable, "-c", code, "run", "mem-run", str(prompts), "--out", str(out)]
    peaks = child("run", argv, fresh_env(MODEL_REGISTRY_ALIASES=str(folder / "aliases.toml")))
    lines = out.read_text().count("\n")
    assert lines == n, f"run wrote {lines} lines for {n} prompts"
    return peaks[str(n)]


def measure(sizes: list[int], paths: list[str]) -> dict[str, dict[str, float]]:
    """Peak RSS (MiB) per path and size: iter_many in one process, the others one per size."""
    figures: dict[str, dict[str, float]] = {path: {} for path in paths}
    with tempfile.TemporaryDirectory() as folder:
        if "iter_many" in paths:
            argv = [sys.executable, "-c", _ITER_MANY, folder, *map(str, sizes)]
            figures["iter_many"] = child("iter_many", argv, fresh_env())
    for n in sizes:
        if "openai" in paths:
            argv = [sys.executable, "-c", _OPENAI, str(n)]
            figures["openai"] |= child("openai", argv, fresh_env())
        if "run" in paths:
            with tempfile.TemporaryDirectory() as folder:
                figures["run"][str(n)] = run_peak(n, Path(folder))
    return figures


def goals(figures: dict[str, dict[str, float]], sizes: list[int]) -> list[Goal]:
    """Peak RSS at the largest size (iter_many < 300 MiB, run < 400); growth per prompt."""
    top, low = str(sizes[-1]), str(sizes[0])
    limits = {"iter_many": 300, "run": 400}
    found = [
        Goal(f"memory: {p} peak RSS ({top} prompts)", limits[p], "<", peaks[top], "MiB")
        for p, peaks in figures.items()
        if p in limits
    ]
    for path, peaks in figures.items():
        growth = (peaks[top] - peaks[low]) * 1024 / max(1, sizes[-1] - sizes[0])
        name = f"memory: {path} growth per prompt ({low} to {top})"
        found.append(Goal(name, 0.3, "<=", growth, "KiB", checked=path != "openai"))
    return found


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--sizes", type=int, nargs="+", help="prompt counts (ascending)")
    parser.add_argument("--paths", nargs="+", default=["iter_many", "openai", "run"])
    args = parser.parse_args()
    sizes: list[Any] = args.sizes or (
        [10_000, 30_000] if args.quick else [10_000, 100_000, 1_000_000]
    )
    report = Report("store_memory", quick=args.quick, args={"sizes": sizes, "paths": args.paths})
    report.figures = measure(sizes, args.paths)
    report.save(args.out, goals(report.figures, sizes))


if __name__ == "__main__":
    main()
