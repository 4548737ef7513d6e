"""Local throughput: our `generate_many` against vLLM's offline `LLM.generate`, same prompts
and output length, in palindrome blocks; and the loop lag while our engine starts and streams.

    uv run python benchmarks/local_throughput.py --quick
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, Goal, LagProbe, Report, base_parser, goal_of, pin_threads, rotated

PROMPT = "Write three distractors for question {i}: what is the capital of France?"
#: A switch of engine waits this long: vLLM's idle worker busy-polls its queue for 1 s
#: (`busy_loop_s` in shm_broadcast.py) on the core both engines' workers share.
SETTLE_S = 1.1
SIDES = ("offline", "ours")
#: The tiny model on CPU: a small KV cache (vLLM's default memory fraction fails there)
#: and no torch.compile (a shorter start).
TINY_ENGINE_ARGS = dict(kv_cache_memory_bytes=64 * 2**20, max_model_len=512, enforce_eager=True)


def tiny_model_dir() -> Path:
    """The tiny random Llama, built once in a subprocess (keeps torch out of this process)."""
    target = Path(tempfile.gettempdir()) / "model-registry-bench" / "tiny-model"
    if not (target / "config.json").is_file() or not (target / "tokenizer.json").is_file():
        command = [sys.executable, "-m", "tests.fixtures.tiny_model", str(target)]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    return target


def palindrome(sides: list[str], block: int, runs_per_visit: int = 1) -> list[str]:
    """One block's order: the sides, then backwards (first side rotated every block), each
    visit `runs_per_visit` runs: a linear drift cancels in any two sides' ratio."""
    half = rotated(sides, block)
    return [side for side in half + half[::-1] for _ in range(runs_per_visit)]


def place_on_reserved_core() -> str:
    """Pin this process (both frontends) to the core vLLM's CPU worker leaves free; called
    once both engines run (earlier, the engines would inherit it)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return "not pinned (one core)"
    pin_threads("self", cores[-1])
    return f"this process on core {cores[-1]} (vLLM's reserved core)"


class Sides:
    """Both engines and a run of each side; `run(side)` gives its wall seconds."""

    def __init__(self, llm: Any, client: Any, prompts: list[str], tokens: int) -> None:
        from vllm import SamplingParams

        self.llm, self.client, self.prompts, self.tokens = llm, client, prompts, tokens
        tokenizer = client.engine.get_tokenizer()
        chat = [[{"role": "user", "content": p}] for p in prompts]
        self.templated = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in chat
        ]
        self.params = SamplingParams(max_tokens=tokens, ignore_eos=True)
        self.last_engine = ""

    async def offline(self) -> int:
        inputs: Any = [{"prompt": t} for t in self.templated]
        outputs = self.llm.generate(inputs, self.params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    async def ours(self) -> int:
        results = await self.client.generate_many(
            self.prompts, max_tokens=self.tokens, ignore_eos=True
        )
        return sum(r.usage.completion_tokens or 0 for r in results)

    async def run(self, side: str) -> float:
        """One run of `side`; its wall seconds. Checks every side made the same tokens."""
        engine = "offline" if side == "offline" else "async"
        if self.last_engine and engine != self.last_engine:
            await asyncio.sleep(SETTLE_S)  # the other engine's worker stops polling
        self.last_engine = engine
        gc.collect()
        began = time.perf_counter()
        produced = await getattr(self, side)()
        wall = time.perf_counter() - began
        if produced != len(self.prompts) * self.tokens:
            raise RuntimeError(f"{side}: {produced} tokens, expected the same for every side")
        return wall


async def start_engines(model: str, engine_args: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """vLLM's offline engine starts in a thread beside ours; our start's loop lag is probed."""
    from vllm import LLM

    from model_registry import get_client

    offline = asyncio.ensure_future(asyncio.to_thread(LLM, model=model, **engine_args))
    probe = LagProbe()
    probe.start()
    try:
        client = await get_client(f"local:{model}", **engine_args)
    except BaseException:
        await asyncio.gather(offline, return_exceptions=True)
        raise
    lag = await probe.stop()
    return await offline, client, lag


async def measure_blocks(sides: Sides, blocks: int, runs_per_visit: int) -> list[dict[str, float]]:
    """Per block, the seconds each side took in all (every side runs the same tokens)."""
    for side in SIDES:  # warm-up
        await sides.run(side)
    # What is alive now leaves the collector's view: the gc.collect() before each run
    # took 0.3-0.6 s with vLLM alive, a third of a run.
    gc.freeze()
    seconds: list[dict[str, float]] = []
    for b in range(blocks):
        block = dict.fromkeys(SIDES, 0.0)
        for side in palindrome(list(SIDES), b, runs_per_visit):
            block[side] += await sides.run(side)
        seconds.append(block)
    return seconds


async def stream_lag(sides: Sides, streams: int) -> dict[str, Any]:
    """The loop lag while `streams` streams run on our engine."""

    async def one(text: str) -> None:
        async for _ in sides.client.stream(text, max_tokens=sides.tokens, ignore_eos=True):
            pass

    probe = LagProbe()
    probe.start()
    await asyncio.gather(*(one(p) for p in sides.prompts[:streams]))
    return await probe.stop()


async def run(args: Any, report: Report) -> None:
    """Start both engines, measure, stop them, record the goals."""
    engine_args = {} if args.model else TINY_ENGINE_ARGS
    model = args.model or str(tiny_model_dir())
    llm, client, lag_start = await start_engines(model, engine_args)
    placement = place_on_reserved_core()
    prompts = [PROMPT.format(i=i) for i in range(args.prompts)]
    sides = Sides(llm, client, prompts, args.max_tokens)
    try:
        block_s = await measure_blocks(sides, args.blocks, args.runs_per_visit)
        lag_stream = await stream_lag(sides, 16)
    finally:  # both engines stop at once (each takes about 5 s)
        stop = asyncio.to_thread(llm.llm_engine.engine_core.shutdown)
        await asyncio.gather(client.aclose(), stop)

    def pooled(side: str, base: str) -> tuple[float, list[float]]:
        total = sum(b[base] for b in block_s) / sum(b[side] for b in block_s)
        return total, [b[base] / b[side] for b in block_s]

    ours, ours_blocks = pooled("ours", "offline")
    lags = [lag_start["p99_ms"], lag_stream["p99_ms"]]
    for lag in (lag_start, lag_stream):
        del lag["cpu_lags_ms"]
    report.figures = {"model": model, "placement": placement, "seconds_per_block": block_s}
    report.figures["loop_lag_ms"] = {"during_start": lag_start, "during_stream": lag_stream}
    name = "loop lag: p99 while a local engine starts and streams"
    report.goals.append(Goal(name, 100.0, "<", max(lags), "ms", low=min(lags), high=max(lags)))
    name = "local: generate_many / offline LLM.generate, output tokens/s"
    target = 0.97 if args.model else 0.95
    detail = f"all runs pooled, {args.blocks} blocks (spread: per block)"
    goal = goal_of(name, target, ">=", ours_blocks, "x", detail=detail)
    report.goals.append(dataclasses.replace(goal, measured=ours))


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--model", default=None, help="model path or repo id (default: tiny)")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=None, help="palindrome blocks of runs")
    parser.add_argument("--runs-per-visit", type=int, default=None)
    args = parser.parse_args()
    args.prompts = args.prompts or (32 if args.quick else 64)
    args.max_tokens = args.max_tokens or (64 if args.quick else 256)
    args.blocks = args.blocks or (2 if args.quick else 4)
    args.runs_per_visit = args.runs_per_visit or (2 if args.quick else 1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = Report("local_throughput", quick=args.quick, args=vars(args) | {"out": str(args.out)})
    asyncio.run(run(args, report))
    report.save(args.out)


if __name__ == "__main__":
    main()
