"""What the same run costs through a provider's batch API and one request at a time, for a
priced model, against the fake server (benchmarks/README.md, "Batch prices").

    uv run python benchmarks/batch_cost.py --quick
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Goal, Report, base_parser, server_kwargs, warm_up

from model_registry import get_client
from model_registry.testing import fake_openai_server

#: Priced models LiteLLM's map gives batch prices for, and the route the fake server serves.
MODELS = {"gpt-4o-mini": "openai"}


def prompts(count: int) -> list[str]:
    """Prompts of a few dozen tokens each, all different (nothing is cached)."""
    return [f"question {i}: " + "describe the weather in a few words " * 4 for i in range(count)]


async def one_run(server: Any, model: str, count: int, batch_api: bool, db: Path) -> dict[str, Any]:
    """The cost, tokens and wall time of `count` prompts, batched or one request each."""
    name = f"{MODELS[model]}:{model}"
    started = time.perf_counter()
    async with get_client(name, max_tokens=64, **server_kwargs(server, "batch-cost")) as client:
        results = await client.generate_many(
            prompts(count),
            results_db=db,
            concurrency=64,
            **({"batch_api": True} if batch_api else {}),
        )
    costs = [r.cost for r in results]
    return {
        "cost_usd": None if None in costs else sum(c for c in costs if c is not None),
        "prompt_tokens": sum(r.usage.prompt_tokens or 0 for r in results),
        "completion_tokens": sum(r.usage.completion_tokens or 0 for r in results),
        "wall_s": round(time.perf_counter() - started, 2),
        "jobs": len({r.batch_id for r in results if r.batch_id}),
    }


async def measure(count: int) -> dict[str, Any]:
    """Per model: the run one request at a time, then through the batch API, and the ratio."""
    figures: dict[str, Any] = {}
    async with fake_openai_server() as server:
        await warm_up(server)
        with tempfile.TemporaryDirectory() as tmp:
            for model in MODELS:
                single = await one_run(server, model, count, False, Path(tmp, f"{model}-1.db"))
                batch = await one_run(server, model, count, True, Path(tmp, f"{model}-b.db"))
                same = batch["prompt_tokens"] == single["prompt_tokens"]
                ratio = None
                if single["cost_usd"] and batch["cost_usd"] is not None:
                    ratio = batch["cost_usd"] / single["cost_usd"]
                figures[model] = {
                    "per_request": single,
                    "batch": batch,
                    "same_tokens": same,
                    "ratio": ratio,
                }
    return figures


def goals(figures: dict[str, Any]) -> list[Goal]:
    """Each model's batch cost over its per-request cost: LiteLLM's batch price, half."""
    found = []
    for model, figure in figures.items():
        ratio = figure["ratio"]
        measured = None if ratio is None or not figure["same_tokens"] else round(ratio, 6)
        detail = (
            f"${figure['batch']['cost_usd']:.6f} batch vs ${figure['per_request']['cost_usd']:.6f} "
            f"per request, same tokens"
            if measured is not None
            else "a cost was unknown or the token counts differ"
        )
        name = f"batch cost / per-request cost ({model}, same prompts and answers)"
        found.append(Goal(name, 0.5, "<=", measured, "x", detail=detail))
    return found


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--prompts", type=int, help="prompts per run (default 2,000; quick 200)")
    args = parser.parse_args()
    count = args.prompts or (200 if args.quick else 2000)
    report = Report("batch_cost", quick=args.quick, args={"prompts": count})
    report.figures = asyncio.run(measure(count))
    for model, figure in report.figures.items():
        single, batch = figure["per_request"], figure["batch"]
        print(
            f"{model}: {count} prompts, {single['prompt_tokens']} + {single['completion_tokens']} "
            f"tokens: per request ${single['cost_usd']:.6f} ({single['wall_s']} s), batch "
            f"${batch['cost_usd']:.6f} ({batch['wall_s']} s, {batch['jobs']} job), "
            f"ratio {figure['ratio']:.4f}"
        )
    report.save(args.out, goals(report.figures))


if __name__ == "__main__":
    main()
