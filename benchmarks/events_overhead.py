"""What listening to the events costs (benchmarks/README.md, "Events"): generate_many at
concurrency 256 with one no-op handler on every event against none, side by side; and our
p50 over raw LiteLLM at concurrency 1 with no handler (the hosted overhead goal).

    uv run python benchmarks/events_overhead.py --quick
"""

from __future__ import annotations

from _common import Goal, Report, base_parser, goal_of
from _paired import PairedWorkers
from hosted_overhead import latency_goals, measure_latency

from model_registry.testing import run_openai_server

CONCURRENCY = 256


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--pairs", type=int, default=None, help="pairs of side-by-side rounds")
    parser.add_argument("--calls", type=int, default=None, help="calls per path per latency run")
    parser.add_argument("--runs", type=int, default=None, help="interleaved latency runs")
    args = parser.parse_args()
    pairs = args.pairs or (2 if args.quick else 4)
    calls = args.calls or (40 if args.quick else 150)
    runs = args.runs or (4 if args.quick else 7)
    report = Report("events_overhead", quick=args.quick, args={"pairs": pairs, "calls": calls})
    with run_openai_server() as server, PairedWorkers(server) as workers:
        latency = measure_latency(workers, [1], calls, runs)
        paths = ("many", "many_events")
        compared = workers.compare(paths, CONCURRENCY, CONCURRENCY, 2 * pairs)
    del compared["answers"]
    name = f"events: generate_many with one no-op handler / none, throughput (c={CONCURRENCY})"
    goals: list[Goal] = [goal_of(name, 0.97, ">=", compared["ratio"], "x")]
    goals += latency_goals(latency)  # no handler registered: the hosted goal still holds
    report.figures = {"latency_ms_per_run": latency, "paired": compared}
    report.save(args.out, goals)


if __name__ == "__main__":
    main()
