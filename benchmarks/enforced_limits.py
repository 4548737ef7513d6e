"""A long batch against a server that enforces a rate limit, through a client declaring the
same limit, after a while without one (the 429 storm). About 17 minutes: `run_all.py`
leaves it out (benchmarks/README.md, "a server that enforces its rate limit").

    uv run python benchmarks/enforced_limits.py                      # 10,000 prompts, 600 rpm
    uv run python benchmarks/enforced_limits.py --prompts 40 --rpm 6000 --baseline-seconds 1
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import anyio
from _common import Goal, Report, base_parser, progress_lines, rate_figures, server_kwargs, warm_up

from model_registry import Generation, get_client
from model_registry.testing import FakeOpenAIServer, fake_openai_server

CONCURRENCY = 256
LIMITED, BASELINE = "enforced", "baseline"


async def batch(
    server: FakeOpenAIServer, model: str, prompts: list[str], rpm: float, **options: Any
) -> dict[str, Any]:
    """The batch against a server enforcing `rpm`, with `options` (`limits`, `seconds`: a
    run cancelled then, whose prompts count as failed) for the client."""
    server.configure(model, rpm=rpm)
    began, seconds, results = time.perf_counter(), options.pop("seconds", math.inf), []
    async with (
        get_client(f"openai:{model}", **options, **server_kwargs(server, model)) as client,
        progress_lines(server, model, len(prompts)),
    ):
        with anyio.move_on_after(seconds):
            many = client.generate_many(prompts, concurrency=CONCURRENCY, return_exceptions=True)
            results = await many
    wall = time.perf_counter() - began
    failed = [r for r in results if not isinstance(r, Generation)]
    stats = await server.await_idle(model, within=30)
    return {
        "prompts": len(prompts),
        "wall_s": round(wall, 2),
        "requests": stats.requests,
        "rejected": stats.rejected,
        "rejected_per_second": round(stats.rejected / wall, 1),
        "admitted": stats.requests - stats.rejected,
        "failed": len(prompts) - len(results) + len(failed),
        "failures": sorted({type(f).__name__ for f in failed}),
        "prompts_per_minute_of_wall": round(len(results) / wall * 60, 2),
        **rate_figures(server.request_starts(model), rpm),
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
        storm = await batch(server, BASELINE, prompts, rpm, seconds=baseline_seconds)
        print(f"  {storm}", flush=True)
        print(f"limited: {n} prompts at concurrency {CONCURRENCY}, rpm {rpm:g}", flush=True)
        run = await batch(server, LIMITED, prompts, rpm, limits={"rpm": rpm})
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
    sizes = {"prompts": n, "rpm": args.rpm, "baseline_seconds": seconds}
    report = Report("enforced_limits", quick=args.quick, args=sizes)
    report.figures = asyncio.run(measure(n, args.rpm, seconds))
    report.save(args.out, goals(report.figures["limited"]))


if __name__ == "__main__":
    main()
