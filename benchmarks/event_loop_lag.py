"""Event-loop lag: does our client keep the caller's loop responsive?

A probe task sleeps 1 ms at a time and records each oversleep (p50/p99).

- Hosted: 256 concurrent calls to a loopback OpenAI-compatible server (own process)
  through raw `litellm.acompletion`, then through `get_client(alias).generate`,
  alternating run by run; goal: our p99 at most 1.2x raw LiteLLM's (median of the
  per-pair ratios).
- Local: while a vLLM engine for the tiny model starts (vLLM imported in a worker
  thread, the engine built off the loop) and then streams; goal: p99 under 100 ms.
  `--model PATH` for another model, `--skip-local` to leave it out.

    uv run python benchmarks/event_loop_lag.py --quick
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    TINY_ENGINE_ARGS,
    Goal,
    LagProbe,
    Report,
    base_parser,
    progress_bar,
    spread,
    tiny_model_dir,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "bench-model"
ALIAS = "bench-hosted"
PROMPT = "Write three distractors for: the capital of France"


async def hosted(base_url: str, calls: int, pairs: int) -> dict[str, Any]:
    import litellm

    from model_registry import get_client

    async def raw() -> None:
        await litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=[{"role": "user", "content": PROMPT}],
            api_base=base_url,
            api_key="no-key",
        )

    async with get_client(ALIAS) as client:

        async def ours() -> None:
            await client.generate(PROMPT)

        sides = {"litellm": raw, "ours": ours}
        await asyncio.gather(*(raw() for _ in range(32)), *(ours() for _ in range(32)))
        results: dict[str, list[dict[str, float]]] = {"litellm": [], "ours": []}
        with progress_bar("loop lag, hosted", pairs * 2) as advance:
            for r in range(pairs):
                for side in ("litellm", "ours") if r % 2 == 0 else ("ours", "litellm"):
                    gc.collect()
                    probe = LagProbe()
                    probe.start()
                    await asyncio.sleep(0.01)
                    await asyncio.gather(*(sides[side]() for _ in range(calls)))
                    results[side].append(await probe.stop())
                    advance(1)
    ratios = [
        o["p99_ms"] / max(lt["p99_ms"], 1e-6)
        for o, lt in zip(results["ours"], results["litellm"], strict=True)
    ]
    return {
        "calls": calls,
        "pairs": pairs,
        "litellm": {k: spread([r[k] for r in results["litellm"]]) for k in ("p50_ms", "p99_ms")},
        "ours": {k: spread([r[k] for r in results["ours"]]) for k in ("p50_ms", "p99_ms")},
        "ours_over_litellm_p99": spread(ratios),
    }


async def local(model: str, tokens: int, streams: int) -> dict[str, Any]:
    from model_registry import get_client

    probe = LagProbe()
    probe.start()
    started = time.perf_counter()
    client = get_client(f"local:{model}", **TINY_ENGINE_ARGS)
    await client
    start_s = time.perf_counter() - started
    during_start = await probe.stop()

    probe.start()
    started = time.perf_counter()

    async def one() -> int:
        count = 0
        async for _ in client.stream(PROMPT, max_tokens=tokens, ignore_eos=True):
            count += 1
        return count

    deltas = await asyncio.gather(*(one() for _ in range(streams)))
    stream_s = time.perf_counter() - started
    during_stream = await probe.stop()
    await client.aclose()
    return {
        "model": model,
        "engine_start_s": start_s,
        "during_start": during_start,
        "streams": streams,
        "tokens_per_stream": tokens,
        "deltas": sum(deltas),
        "stream_s": stream_s,
        "during_stream": during_stream,
        "p99_ms_overall": max(during_start["p99_ms"], during_stream["p99_ms"]),
    }


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--calls", type=int, default=256, help="concurrent hosted calls")
    parser.add_argument("--pairs", type=int, default=None, help="alternating runs per side")
    parser.add_argument("--model", default=None, help="local model path (default: tiny model)")
    parser.add_argument("--skip-local", action="store_true", help="hosted part only")
    args = parser.parse_args()
    pairs = args.pairs or (3 if args.quick else 7)
    report = Report(
        "event_loop_lag",
        quick=args.quick,
        args={"calls": args.calls, "pairs": pairs, "model": args.model},
    )

    from hosted_overhead import alias_file

    from tests.fixtures.openai_server import run_openai_server

    with run_openai_server() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["MODEL_REGISTRY_ALIASES"] = str(alias_file(Path(tmp), server.base_url))
        figures = asyncio.run(hosted(server.base_url, args.calls, pairs))
    report.figures["hosted"] = figures
    print(
        f"hosted, {args.calls} calls: loop lag p99 raw litellm "
        f"{figures['litellm']['p99_ms']['median']:.2f} ms, ours "
        f"{figures['ours']['p99_ms']['median']:.2f} ms, "
        f"ratio {figures['ours_over_litellm_p99']['median']:.3f}"
    )
    report.goal(
        Goal(
            f"loop lag: p99 ours / raw litellm ({args.calls} hosted calls)",
            1.2,
            "<=",
            figures["ours_over_litellm_p99"]["median"],
            "x",
        )
    )

    if not args.skip_local:
        model = args.model or str(tiny_model_dir())
        local_figures = asyncio.run(local(model, 64 if args.quick else 256, 16))
        report.figures["local"] = local_figures
        print(
            f"local: engine start {local_figures['engine_start_s']:.1f} s, loop lag p99 "
            f"{local_figures['during_start']['p99_ms']:.2f} ms (max "
            f"{local_figures['during_start']['max_ms']:.1f}); streaming p99 "
            f"{local_figures['during_stream']['p99_ms']:.2f} ms"
        )
        report.goal(
            Goal(
                "loop lag: p99 while a local engine starts and streams",
                100.0,
                "<",
                local_figures["p99_ms_overall"],
                "ms",
            )
        )
    report.figures["median_note"] = "p99 per run; the figure is the median over runs"
    report.save(args.out)


if __name__ == "__main__":
    sys.exit(main())
