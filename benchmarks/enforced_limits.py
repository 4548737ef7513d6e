"""Issue 20's "done when": a long batch against a server that ENFORCES a rate limit.

The loopback server of `model_registry.testing` enforces `--rpm` for one model as a strict
provider does (`configure(model, rpm=...)`: a request that would put more than rpm in the
trailing 60 s, or more than 1.5x rpm/60 in the trailing 1 s, gets a 429 with Retry-After).
A client that declares the same limit (`get_client(..., limits={"rpm": rpm})`) runs
`generate_many` over `--prompts` prompts at concurrency 256. Reported: wall time, the
achieved requests per minute over rpm, the most requests the server saw in any 1 s and
any 60 s window, its 429s (`rejected`) and the prompts that failed.

Before it, in the same run, a baseline WITHOUT a declared limit: the same batch against
the same enforcing server for `--baseline-seconds`, then cancelled: the 429s the server
sent per second (the storm the limiter prevents). Each side has its own API key, so its
own provider limiter and cooldowns. The full run (10,000 prompts at 600 rpm) takes about
17 minutes, so `run_all.py` leaves it out.

    uv run python benchmarks/enforced_limits.py                      # the issue's run
    uv run python benchmarks/enforced_limits.py --prompts 40 --rpm 6000 --baseline-seconds 1
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

import anyio
from _common import Goal, Report, base_parser

from model_registry import Generation, get_client
from model_registry.testing import FakeOpenAIServer, fake_openai_server

CONCURRENCY = 256
LIMITED, BASELINE = "enforced", "baseline"
#: Seconds between progress lines during the limited run.
PROGRESS_EVERY = 60.0


def most_in_window(times: Sequence[float], seconds: float) -> int:
    """The most arrivals in any window of `seconds` open at its start (`(t - seconds, t]`,
    the server's trailing window); 0 for none."""
    ts = sorted(times)
    return max((i + 1 - bisect.bisect_right(ts, t - seconds) for i, t in enumerate(ts)), default=0)


def over_bound(times: Sequence[float], seconds: float, limit: int) -> list[float]:
    """When (seconds after the first arrival) an arrival made its trailing window hold more
    than `limit` (refused arrivals count too: this locates refusals, it does not replay them)."""
    ts = sorted(times)
    return [
        round(t - ts[0], 3)
        for i, t in enumerate(ts)
        if i + 1 - bisect.bisect_right(ts, t - seconds) > limit
    ]


def per_second_limit(rpm: float) -> int:
    """What the enforcing server admits in any 1 s: 1.5x rpm/60, rounded down, at least 1."""
    return max(1, math.floor(1.5 * rpm / 60))


def client_kwargs(server: FakeOpenAIServer, side: str) -> dict[str, Any]:
    """A side's own API key: its own provider limiter, so the baseline's cooldowns do not
    pause the limited side (the server accepts any key)."""
    return {"api_base": server.url, "api_key": f"sk-{side}"}


async def warm_up(server: FakeOpenAIServer) -> None:
    """One call on a model of its own: LiteLLM's import and first-call start-up."""
    async with get_client("openai:warm-up", **client_kwargs(server, "warm")) as client:
        await client.generate("warm up")


async def baseline(
    server: FakeOpenAIServer, prompts: list[str], rpm: float, seconds: float
) -> dict[str, Any]:
    """The batch without a declared limit for `seconds` (then cancelled): the 429 storm."""
    server.configure(BASELINE, rpm=rpm)
    began = time.perf_counter()
    async with get_client(f"openai:{BASELINE}", **client_kwargs(server, BASELINE)) as client:
        with anyio.move_on_after(seconds):
            await client.generate_many(prompts, concurrency=CONCURRENCY, return_exceptions=True)
        elapsed = time.perf_counter() - began
    stats = await server.await_idle(BASELINE, within=30)
    return {
        "seconds": round(elapsed, 2),
        "requests": stats.requests,
        "rejected": stats.rejected,
        "rejected_per_second": round(stats.rejected / elapsed, 1),
        "requests_per_second": round(stats.requests / elapsed, 1),
        "admitted": stats.requests - stats.rejected,
    }


async def progress(server: FakeOpenAIServer, total: int) -> None:
    """A line every PROGRESS_EVERY seconds: what the server has seen so far."""
    began = time.perf_counter()
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        stats = await asyncio.to_thread(server.stats, LIMITED)
        done = stats.requests - stats.rejected - stats.in_flight
        print(
            f"  {time.perf_counter() - began:6.0f} s: {done}/{total} answered, "
            f"{stats.rejected} refused",
            flush=True,
        )


async def limited(server: FakeOpenAIServer, prompts: list[str], rpm: float) -> dict[str, Any]:
    """The batch with `limits={"rpm": rpm}` declared, to the end."""
    server.configure(LIMITED, rpm=rpm)
    kwargs = client_kwargs(server, LIMITED)
    began = time.perf_counter()
    async with get_client(f"openai:{LIMITED}", limits={"rpm": rpm}, **kwargs) as client:
        ticker = asyncio.create_task(progress(server, len(prompts)))
        try:
            results = await client.generate_many(
                prompts, concurrency=CONCURRENCY, return_exceptions=True
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
    wall = time.perf_counter() - began
    failed = [r for r in results if not isinstance(r, Generation)]
    return summary(server, rpm, wall, len(prompts), failed)


def summary(
    server: FakeOpenAIServer, rpm: float, wall: float, n: int, failed: list[Any]
) -> dict[str, Any]:
    """The limited run's figures, from the server's counts and arrival times (the achieved
    rate: requests after the first over the time from the first to the last)."""
    stats = server.stats(LIMITED)
    starts = server.request_starts(LIMITED)
    span = starts[-1] - starts[0] if len(starts) > 1 else float("nan")
    achieved = (len(starts) - 1) / span * 60 if span > 0 else float("nan")
    return {
        "prompts": n,
        "wall_s": round(wall, 2),
        "requests": stats.requests,
        "rejected": stats.rejected,
        "failed": len(failed),
        "failures": sorted({type(f).__name__ for f in failed}),
        "achieved_rpm": round(achieved, 2),
        "achieved_over_rpm": round(achieved / rpm, 4),
        "prompts_per_minute_of_wall": round(n / wall * 60, 2),
        "most_in_1s": most_in_window(starts, 1.0),
        "limit_1s": per_second_limit(rpm),
        "most_in_60s": most_in_window(starts, 60.0),
        "limit_60s": math.floor(rpm),
        "over_1s_at_s": over_bound(starts, 1.0, per_second_limit(rpm))[:20],
        "over_60s_at_s": over_bound(starts, 60.0, math.floor(rpm))[:20],
    }


def goals(run: dict[str, Any]) -> list[Goal]:
    """No 429, no window over the server's bounds, no failed prompt; the rate (report only)."""
    bounds = [
        ("429s from a server enforcing the declared rpm", 0, run["rejected"], "429s"),
        ("most requests in any 1 s", run["limit_1s"], run["most_in_1s"], "requests"),
        ("most requests in any 60 s", run["limit_60s"], run["most_in_60s"], "requests"),
        ("prompts failed", 0, run["failed"], "prompts"),
    ]
    checked = [Goal(f"enforced: {name}", t, "<=", value, unit) for name, t, value, unit in bounds]
    rate = run["achieved_over_rpm"]
    name = "enforced: achieved requests per minute / rpm"
    return [*checked, Goal(name, 0.95, ">=", rate, "x", checked=False)]


async def measure(n: int, rpm: float, baseline_seconds: float) -> dict[str, Any]:
    """The baseline, then the limited run, against one enforcing server."""
    prompts = [f"prompt {i}" for i in range(n)]
    async with fake_openai_server() as server:
        await warm_up(server)
        print(f"baseline: no declared limit, {baseline_seconds:g} s", flush=True)
        storm = await baseline(server, prompts, rpm, baseline_seconds)
        print(f"  {storm}", flush=True)
        print(f"limited: {n} prompts at concurrency {CONCURRENCY}, rpm {rpm:g}", flush=True)
        run = await limited(server, prompts, rpm)
        print(f"  {run}", flush=True)
    return {"baseline": storm, "limited": run}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--prompts", type=int, default=None, help="default 10,000 (--quick: 300)")
    parser.add_argument("--rpm", type=float, default=600.0, help="the server's and the client's")
    parser.add_argument(
        "--baseline-seconds", type=float, default=None, help="default 30 (--quick: 5)"
    )
    args = parser.parse_args()
    n = args.prompts or (300 if args.quick else 10_000)
    seconds = args.baseline_seconds or (5.0 if args.quick else 30.0)
    report = Report(
        "enforced_limits",
        quick=args.quick,
        args={"prompts": n, "rpm": args.rpm, "baseline_seconds": seconds},
    )
    report.figures = asyncio.run(measure(n, args.rpm, seconds))
    for goal in goals(report.figures["limited"]):
        report.goal(goal)
    report.save(args.out)


if __name__ == "__main__":
    main()
