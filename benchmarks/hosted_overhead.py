"""What our hosted path, a store and limits cost on top of LiteLLM, against the loopback
server (benchmarks/README.md, "Method"): latency, throughput side by side and loop lag.

    uv run python benchmarks/hosted_overhead.py --quick
"""

from __future__ import annotations

from typing import Any

from _common import Goal, Report, base_parser, goal_of, paired_ratios, percentile
from _paired import EMBED_BATCH, PairedWorkers

from model_registry.testing import run_openai_server


def measure_latency(
    workers: PairedWorkers, concurrencies: list[int], calls: int, runs: int
) -> dict[str, Any]:
    """Per concurrency, per interleaved run: p50 and p99 of each path in ms."""
    figures: dict[str, Any] = {}
    for c in concurrencies:
        n = calls if c == 1 else max(calls, c // 3 + 1)  # at least c calls in flight
        workers.latency(max(4, min(n, c) // 2), c)  # warm-up
        figures[str(c)] = [workers.latency(n, c) for _ in range(runs)]
    return figures


def latency_goals(latency: dict[str, Any]) -> list[Goal]:
    """The latency goals: our p50 overhead at c=1, the p99 ratio at each concurrency."""
    goals = []
    if "1" in latency:
        minus = [run["ours"]["p50"] - run["litellm"]["p50"] for run in latency["1"]]
        name = "hosted: p50 of get_client().generate minus raw litellm (c=1)"
        goals.append(goal_of(name, 0.3, "<=", minus, "ms"))
    for c in latency:
        name = f"hosted: p99 generate / raw litellm (c={c})"
        ratios = [run["ours"]["p99"] / run["litellm"]["p99"] for run in latency[c]]
        goals.append(goal_of(name, 1.05, "<=", ratios, "x"))
    return goals


def lag_goal(compared: dict[str, Any]) -> Goal:
    """Loop lag p99 of `generate_many` over raw LiteLLM's, wake-ups of all rounds pooled per
    side; the spread is that of the pairs of rounds alone."""
    raw, ours = compared["paths"]
    answers = compared["answers"]
    pooled = {p: percentile([x for a in answers for x in a[p]["lag"]], 99) for p in (raw, ours)}
    per_round = [
        percentile(a[ours]["lag"], 99) / max(percentile(a[raw]["lag"], 99), 1e-6) for a in answers
    ]
    pairs = paired_ratios(per_round)
    calls = compared["n_per_batch"]
    name = f"loop lag: p99 generate_many / raw litellm ({calls} calls at once, CPU clock)"
    ratio = pooled[ours] / max(pooled[raw], 1e-6)
    detail = f"wake-ups of all {len(answers)} rounds pooled"
    low, high = min(pairs, default=None), max(pairs, default=None)
    return Goal(name, 1.2, "<=", ratio, "x", detail=detail, low=low, high=high)


#: `embed_many` against raw `litellm.aembedding` under a semaphore, requests of the same
#: `EMBED_BATCH` texts; `n` counts requests.
EMBED_PATHS = ("litellm_embed", "many_embed")
EMBED_CONCURRENCY = 64


def embed_goal(compared: dict[str, Any]) -> Goal:
    """embed_many's throughput over raw `litellm.aembedding` with a semaphore."""
    name = (
        f"hosted: embed_many / raw litellm.aembedding, throughput "
        f"(c={compared['concurrency']}, {EMBED_BATCH} texts a request)"
    )
    return goal_of(name, 0.97, ">=", compared["ratio"], "x")


def measure_paired(
    workers: PairedWorkers, concurrencies: list[int], pairs: int, quick: bool
) -> dict[str, Any]:
    """The side-by-side comparisons: generate_many against raw LiteLLM at each
    concurrency, then the store and the limits, at the highest one (loop lag probed there)."""
    plan: list[tuple[str, tuple[str, str], int, int, int]] = []
    burst = max(concurrencies)  # the loop lag, the store and the limits: 256 by default
    for c in concurrencies:
        n = c if c == burst else (30 if quick else 100) if c == 1 else 2 * c
        rounds = 2 * (pairs + 1) if c == burst else 2 * pairs  # the lag needs more wake-ups
        plan.append((f"many_vs_litellm_c{c}", ("litellm", "many"), n, c, rounds))
    plan.append(("store", ("many", "many_store"), burst, burst, 2 * pairs))
    plan.append(("limits", ("many", "many_limits"), burst, burst, 2 * pairs))
    c = EMBED_CONCURRENCY
    plan.append((f"embed_vs_litellm_c{c}", EMBED_PATHS, 2 * c, c, 2 * pairs))
    figures: dict[str, Any] = {}
    for key, paths, n, c, rounds in plan:
        probe = paths[0] == "litellm" and c == burst
        figures[key] = workers.compare(paths, n, c, rounds, probe=probe)
    return figures


def paired_goals(paired: dict[str, Any]) -> list[Goal]:
    """The throughput goals of the side-by-side comparisons, and the loop-lag goal."""
    goals = []
    for key, compared in paired.items():
        if key.startswith("many_vs_litellm"):
            name = f"hosted: generate_many / gather over raw litellm, throughput (c={compared['concurrency']})"
            goals.append(goal_of(name, 0.97, ">=", compared["ratio"], "x"))
            if compared["answers"]:
                goals.append(lag_goal(compared))
    store = paired["store"]
    burst = store["concurrency"]
    name = f"store: generate_many with / without results_db, throughput (c={burst})"
    goals.append(goal_of(name, 0.95, ">=", store["ratio"], "x"))
    name = f"limits: generate_many with never-binding limits / without, throughput (c={burst})"
    goals.append(goal_of(name, 0.98, ">=", paired["limits"]["ratio"], "x"))
    return [*goals, embed_goal(paired[f"embed_vs_litellm_c{EMBED_CONCURRENCY}"])]


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--calls", type=int, default=None, help="calls per path per latency run")
    parser.add_argument("--runs", type=int, default=None, help="interleaved latency runs")
    parser.add_argument("--pairs", type=int, default=None, help="pairs of side-by-side rounds")
    args = parser.parse_args()
    calls = args.calls or (40 if args.quick else 150)
    runs = args.runs or (4 if args.quick else 7)
    pairs = args.pairs or (2 if args.quick else 4)
    sizes = {"calls": calls, "runs": runs, "pairs": pairs}
    report = Report("hosted_overhead", quick=args.quick, args=sizes)
    with run_openai_server() as server, PairedWorkers(server) as workers:
        latency = measure_latency(workers, args.concurrency, calls, runs)
        paired = measure_paired(workers, args.concurrency, pairs, args.quick)
    goals = latency_goals(latency) + paired_goals(paired)
    for compared in paired.values():
        del compared["answers"]  # every wake-up of the probes: the goals have them
    report.figures = {"latency_ms_per_run": latency, "paired": paired}
    report.save(args.out, goals)


if __name__ == "__main__":
    main()
