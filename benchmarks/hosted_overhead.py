"""What our hosted path adds on top of LiteLLM (and LiteLLM on top of the openai SDK and httpx).

A real OpenAI-compatible server answers on 127.0.0.1 in its own process
(tests/fixtures/openai_server.py). At each concurrency the same calls go through

    (a) raw httpx.AsyncClient      (b) the openai SDK      (c) raw litellm.acompletion
    (d) get_client(alias).generate (e) client.generate_many

Latency (p50/p99) is measured INTERLEAVED: (a)-(d) alternate inside one run (a shared
queue drained by `concurrency` workers), each path's percentiles come from the same
seconds of machine time, and the figure is the median over repeated runs. Sequential
batches are noise on these 2-core machines (A against A: 0.86-1.02).

Throughput needs each path alone on its loop (when two paths share a loop at saturation
they complete at the same rate, whatever each costs). The goal's figure, (e) against
`asyncio.gather` over raw litellm (semaphore at the same concurrency), comes from two
worker processes that run the two batches AT THE SAME TIME on one shared core, roles
swapped every round (benchmarks/_paired.py says why: sequential batches on these
machines drift 10-30% apart, A against A). A loaded client is CPU-bound, so the
throughput ratio is the inverse ratio of CPU seconds per call. Without --quick, the
requests/s of all five paths are also measured alone, in alternating batches (median
over rounds; for the table, not for a goal).

A cProfile of our path at concurrency 1 says where each millisecond goes.

`--with-lag` (run_all.py uses it) also measures event_loop_lag.py's hosted goal on these
workers; with --quick its rounds are the concurrency-256 throughput batches themselves
(256 calls at once, a `LagProbe` on each worker's loop), so the burst is run once for both.

    uv run python benchmarks/hosted_overhead.py --quick
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    HOSTED_ALIAS,
    HOSTED_PROMPT,
    Goal,
    Phases,
    Report,
    base_parser,
    gather_limited,
    hosted_alias_file,
    median,
    percentile,
    progress_bar,
    spread,
)
from _paired import PairedWorkers, machine_drift, paired_ratios
from event_loop_lag import default_pairs as lag_pairs
from event_loop_lag import hosted as hosted_lag
from event_loop_lag import hosted_figures as hosted_lag_figures
from event_loop_lag import lag_paths
from event_loop_lag import record_hosted as record_hosted_lag

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "bench-model"
#: calls at once of event_loop_lag.py's hosted goal (--with-lag)
LAG_CALLS = 256
PROMPT = HOSTED_PROMPT


def messages() -> list[dict[str, str]]:
    """Fresh messages per call, as real prompts are: LiteLLM caches work on the messages
    object, so reusing one list makes repeated raw calls about 1.5 ms cheaper here."""
    return [{"role": "user", "content": PROMPT}]


LATENCY_PATHS = ("httpx", "openai_sdk", "litellm", "ours_generate")
THROUGHPUT_PATHS = ("httpx", "openai_sdk", "litellm", "ours_generate", "ours_generate_many")

Call = Callable[[], Awaitable[Any]]


class Paths:
    """The clients of every path, made once (pools warm) and closed at the end."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def __aenter__(self) -> Paths:
        import httpx
        import litellm
        import openai

        from model_registry import get_client

        self.litellm = litellm
        self.httpx = httpx.AsyncClient(
            base_url=self.base_url,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000),
            timeout=60,
        )
        self.openai = openai.AsyncOpenAI(base_url=self.base_url, api_key="no-key", max_retries=0)
        self.client = await get_client(HOSTED_ALIAS)
        self.calls: dict[str, Call] = {
            "httpx": self.call_httpx,
            "openai_sdk": self.call_openai,
            "litellm": self.call_litellm,
            "ours_generate": self.call_ours,
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.httpx.aclose()
        await self.openai.close()
        await self.client.aclose()

    async def call_httpx(self) -> str:
        response = await self.httpx.post(
            "/chat/completions", json={"model": MODEL, "messages": messages()}
        )
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    async def call_openai(self) -> str:
        response = await self.openai.chat.completions.create(model=MODEL, messages=messages())  # type: ignore[arg-type]
        return response.choices[0].message.content or ""

    async def call_litellm(self) -> str:
        response = await self.litellm.acompletion(
            model=f"openai/{MODEL}", messages=messages(), api_base=self.base_url, api_key="no-key"
        )
        return str(response.choices[0].message.content)

    async def call_ours(self) -> str:
        return (await self.client.generate(PROMPT)).text

    # --- batches for throughput -------------------------------------------------------

    async def batch(self, path: str, n: int, concurrency: int) -> None:
        if path == "ours_generate_many":
            await self.client.generate_many([PROMPT] * n, concurrency=concurrency)
            return
        await gather_limited(self.calls[path], n, concurrency)


def williams_orders(n: int) -> list[list[int]]:
    """Orders of n paths in which each path comes first equally often AND follows every
    other path equally often (a Williams design). Plain rotation is not enough: LiteLLM
    finishes each call in a worker thread, which slows whichever call comes next, so the
    path that always follows litellm would pay for it."""
    first = [0]
    low, high = 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    orders = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2:
        orders += [order[::-1] for order in orders]
    return orders


async def interleaved_run(
    paths: Paths, n_per_path: int, concurrency: int
) -> dict[str, list[float]]:
    """One run: the paths alternate call by call, `concurrency` calls in flight in all."""
    names = list(LATENCY_PATHS)
    schedule: list[str] = []
    orders = williams_orders(len(names))
    for r in range(n_per_path):
        schedule += [names[i] for i in orders[r % len(orders)]]
    latencies: dict[str, list[float]] = {name: [] for name in names}
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(schedule):
            name = schedule[position]
            position += 1
            call = paths.calls[name]
            started = time.perf_counter()
            await call()
            latencies[name].append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure_latency(
    paths: Paths, concurrency: int, n_per_path: int, runs: int, advance: Callable[[int], None]
) -> dict[str, Any]:
    per_run: list[dict[str, dict[str, float]]] = []
    await interleaved_run(paths, max(4, min(n_per_path, concurrency) // 2), concurrency)  # warm-up
    for _ in range(runs):
        gc.collect()
        latencies = await interleaved_run(paths, n_per_path, concurrency)
        per_run.append(
            {
                name: {
                    "p50_ms": percentile(values, 50) * 1e3,
                    "p99_ms": percentile(values, 99) * 1e3,
                    "mean_ms": sum(values) / len(values) * 1e3,
                }
                for name, values in latencies.items()
            }
        )
        advance(1)

    def ratio(a: str, b: str, key: str) -> list[float]:
        return [run[a][key] / run[b][key] for run in per_run]

    def diff(a: str, b: str, key: str) -> list[float]:
        return [run[a][key] - run[b][key] for run in per_run]

    return {
        "n_per_path": n_per_path,
        "runs": runs,
        "paths": {
            name: {
                key: spread([run[name][key] for run in per_run])
                for key in ("p50_ms", "p99_ms", "mean_ms")
            }
            for name in LATENCY_PATHS
        },
        "ours_minus_litellm_p50_ms": spread(diff("ours_generate", "litellm", "p50_ms")),
        "ours_over_litellm_p50": spread(ratio("ours_generate", "litellm", "p50_ms")),
        "ours_over_litellm_p99": spread(ratio("ours_generate", "litellm", "p99_ms")),
        "ours_over_openai_sdk_p50": spread(ratio("ours_generate", "openai_sdk", "p50_ms")),
        "litellm_over_openai_sdk_p50": spread(ratio("litellm", "openai_sdk", "p50_ms")),
        "openai_sdk_over_httpx_p50": spread(ratio("openai_sdk", "httpx", "p50_ms")),
    }


async def measure_throughput(
    paths: Paths,
    concurrency: int,
    n: int,
    rounds: int,
    names: list[str],
    advance: Callable[[int], None],
) -> dict[str, Any]:
    rps: dict[str, list[float]] = {name: [] for name in names}
    cpu_ms: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up, each path alone
        await paths.batch(name, min(n, max(concurrency // 2, 8)), concurrency)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            cpu = time.process_time()
            started = time.perf_counter()
            await paths.batch(name, n, concurrency)
            wall = time.perf_counter() - started
            rps[name].append(n / wall)
            cpu_ms[name].append((time.process_time() - cpu) / n * 1e3)
            advance(1)
    many_ratio = [m / g for m, g in zip(rps["ours_generate_many"], rps["litellm"], strict=True)]
    return {
        "n_per_batch": n,
        "rounds": rounds,
        "req_per_s": {name: spread(values) for name, values in rps.items()},
        "cpu_ms_per_call": {name: spread(values) for name, values in cpu_ms.items()},
        "generate_many_over_litellm_gather": spread(many_ratio),
        "generate_many_over_litellm_gather_cpu": median(cpu_ms["litellm"])
        / median(cpu_ms["ours_generate_many"]),
    }


def measure_paired_throughput(
    workers: PairedWorkers,
    concurrencies: list[int],
    pairs: int,
    quick: bool,
    lag_calls: int | None = None,
    lag_rounds: int = 0,
    phases: Phases | None = None,
) -> dict[str, Any]:
    """generate_many against gather over raw litellm, side by side in two processes.

    With `lag_calls`, the loop-lag comparison of event_loop_lag.py comes too (key "lag"):
    its rounds are these very batches at concurrency `lag_calls` when that batch is
    `lag_calls` calls at once (--quick), else rounds of their own."""

    figures: dict[str, Any] = {"drift_before": machine_drift()}

    def batch_size(c: int) -> int:
        n = (30 if quick else 100) if c == 1 else 2 * c
        return min(n, 256) if quick else n

    def shares_lag(c: int) -> bool:
        return c == lag_calls and batch_size(c) == c

    def rounds_for(c: int) -> int:
        # --quick: one pair fewer at c >= 256, where a round costs 6-8 s here
        rounds = 2 * (pairs - 1 if quick and c >= 256 and pairs > 1 else pairs)
        return max(rounds, lag_rounds) if shares_lag(c) else rounds

    lag_answers: list[dict[str, dict[str, Any]]] = []
    steps = sum(rounds_for(c) for c in concurrencies)
    with progress_bar("hosted throughput, paired", steps) as advance:
        for c in concurrencies:
            rounds = rounds_for(c)
            n = batch_size(c)
            probe = shares_lag(c)
            cpu_ratio: list[float] = []
            wall_ratio: list[float] = []
            cpu_ms: dict[str, list[float]] = {"litellm": [], "ours_generate_many": []}
            rps: dict[str, list[float]] = {"litellm": [], "ours_generate_many": []}
            gc_ms: dict[str, list[float]] = {"litellm": [], "ours_generate_many": []}
            for r in range(rounds):
                paths = lag_paths(r)  # (litellm, ours_generate_many), swapped every round
                answers = dict(zip(paths, workers.batch(paths, n, c, probe), strict=True))
                if probe:
                    lag_answers.append(answers)
                for path, answer in answers.items():
                    cpu_ms[path].append(answer["cpu_s"] / n * 1e3)
                    rps[path].append(n / answer["wall_s"])
                    gc_ms[path].append(sum(g["s"] for g in answer["gc"].values()) / n * 1e3)
                # throughput ratio = inverse ratio of the cost per call
                cpu_ratio.append(
                    answers["litellm"]["cpu_s"] / answers["ours_generate_many"]["cpu_s"]
                )
                wall_ratio.append(
                    answers["litellm"]["wall_s"] / answers["ours_generate_many"]["wall_s"]
                )
                advance(1)
            figures[str(c)] = {
                "n_per_batch": n,
                "rounds": rounds,
                "loop_lag_probe": probe,
                "cpu_ms_per_call": {k: spread(v) for k, v in cpu_ms.items()},
                # each worker had half of one core: for the table, not for a ratio
                "req_per_s_side_by_side": {k: spread(v) for k, v in rps.items()},
                # the collector's share of cpu_ms_per_call (generations 0 and 1 here:
                # after the workers' gc.freeze() no batch ran a generation-2 pass)
                "gc_ms_per_call": {k: spread(v) for k, v in gc_ms.items()},
                "per_round_cpu_ratio": cpu_ratio,
                "generate_many_over_litellm_gather": spread(paired_ratios(cpu_ratio)),
                "wall_ratio_info": spread(paired_ratios(wall_ratio)),
            }
            if phases is not None:
                phases.lap(f"paired_c{c}")
    figures["pinning"] = workers.pinning
    if lag_calls is not None:
        figures["lag"] = (
            hosted_lag_figures(lag_calls, lag_answers, workers.pinning)
            if lag_answers
            else hosted_lag(workers, lag_calls, lag_rounds)
        )
        if phases is not None:
            phases.lap("loop_lag")
    figures["drift_after"] = machine_drift()
    return figures


# --- profile ------------------------------------------------------------------------

#: Functions whose cumulative time per call tells where our hosted millisecond goes:
#: (label, file suffix, function name).
PROFILE_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("our generate() in all", "clients/base.py", "generate"),
    ("our _generate() (params, messages, Generation)", "clients/litellm.py", "_generate"),
    ("litellm.acompletion in all", "litellm/utils.py", "wrapper_async"),
    ("litellm function_setup (logging object, callbacks)", "litellm/utils.py", "function_setup"),
    ("litellm main.acompletion (params, routing)", "litellm/main.py", "acompletion"),
    ("litellm get_optional_params", "litellm/utils.py", "get_optional_params"),
    ("litellm get_llm_provider", "get_llm_provider_logic.py", "get_llm_provider"),
    ("litellm openai handler (SDK call + convert)", "llms/openai/openai.py", "acompletion"),
    ("openai SDK request (build, send, parse)", "openai/_base_client.py", "request"),
    ("HTTP transport send (httpx/aiohttp)", "httpx/_client.py", "send"),
    (
        "litellm response -> ModelResponse",
        "convert_dict_to_response.py",
        "convert_to_model_response_object",
    ),
    (
        "litellm update_response_metadata (cost in hidden params)",
        "response_metadata.py",
        "update_response_metadata",
    ),
    (
        "litellm response_cost_calculator (Logging)",
        "litellm_logging.py",
        "response_cost_calculator",
    ),
    ("litellm completion_cost", "litellm/cost_calculator.py", "completion_cost"),
    (
        "litellm async_success_handler (logging payload)",
        "litellm_logging.py",
        "async_success_handler",
    ),
    ("litellm success_handler (sync, thread pool)", "litellm_logging.py", "success_handler"),
    (
        "litellm get_standard_logging_object_payload",
        "litellm_logging.py",
        "get_standard_logging_object_payload",
    ),
    ("litellm get_model_info (pricing lookups)", "litellm/utils.py", "get_model_info"),
    ("event loop select() (waiting for the server)", "selectors.py", "select"),
)


def _short(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    parts = Path(filename).parts
    for anchor in ("site-packages", "model_registry", "lib"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return f"{'/'.join(parts[index + 1 :])}:{line}({name})"
    return f"{filename}:{line}({name})"


async def profile_ours(paths: Paths, n: int) -> dict[str, Any]:
    """cProfile `n` sequential calls of our path; per-call ms of the markers and the top entries."""
    for _ in range(10):
        await paths.call_ours()
    gc.collect()
    wall0, cpu0, main0 = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(n):
        await paths.call_ours()
    unprofiled = {
        "wall_ms_per_call": (time.perf_counter() - wall0) / n * 1e3,
        "cpu_ms_per_call_all_threads": (time.process_time() - cpu0) / n * 1e3,
        "cpu_ms_per_call_event_loop_thread": (time.thread_time() - main0) / n * 1e3,
    }
    unprofiled["cpu_ms_per_call_other_threads"] = (
        unprofiled["cpu_ms_per_call_all_threads"] - unprofiled["cpu_ms_per_call_event_loop_thread"]
    )
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        await paths.call_ours()
    profiler.disable()
    profiled_wall = (time.perf_counter() - started) / n * 1e3
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    markers = []
    for label, suffix, name in PROFILE_MARKERS:
        cum = sum(
            entry[3]
            for (filename, _line, func), entry in raw.items()
            if func == name and filename.replace(os.sep, "/").endswith(suffix)
        )
        if not cum:
            cum = sum(
                entry[3]
                for (filename, _line, func), entry in raw.items()
                if func == name and suffix.split("/")[-1] in filename
            )
        markers.append({"what": label, "ms_per_call": round(cum / n * 1e3, 3)})

    def top(key: int, count: int = 25) -> list[dict[str, Any]]:
        rows = sorted(raw.items(), key=lambda item: item[1][key], reverse=True)[:count]
        return [
            {
                "function": _short(func),
                "calls_per_call": round(entry[1] / n, 2),
                "tottime_ms_per_call": round(entry[2] / n * 1e3, 3),
                "cumtime_ms_per_call": round(entry[3] / n * 1e3, 3),
            }
            for func, entry in rows
        ]

    return {
        "calls": n,
        "unprofiled": unprofiled,
        "profiled_wall_ms_per_call": profiled_wall,
        "note": "cProfile inflates times (about 1.5-2x) and sees only the event-loop thread",
        "where_the_time_goes": markers,
        "top_cumulative": top(3),
        "top_own_time": top(2),
    }


# --- LiteLLM public switches -----------------------------------------------------------

SWITCHES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "kwarg no-log=True": ({"no-log": True}, {}),
    "litellm.turn_off_message_logging=True": ({}, {"turn_off_message_logging": True}),
    "litellm.disable_end_user_cost_tracking=True": ({}, {"disable_end_user_cost_tracking": True}),
}


async def measure_switches(paths: Paths, n: int, rounds: int) -> dict[str, Any]:
    """CPU ms per raw litellm call (concurrency 1) under each public switch, alternating."""
    litellm = paths.litellm
    cpu: dict[str, list[float]] = {name: [] for name in SWITCHES}

    async def run(name: str, count: int) -> float:
        kwargs, settings = SWITCHES[name]
        saved = {key: getattr(litellm, key) for key in settings}
        for key, value in settings.items():
            setattr(litellm, key, value)
        try:
            started = time.process_time()
            for _ in range(count):
                await litellm.acompletion(
                    model=f"openai/{MODEL}",
                    messages=messages(),
                    api_base=paths.base_url,
                    api_key="no-key",
                    **kwargs,
                )
            return (time.process_time() - started) / count * 1e3
        finally:
            for key, value in saved.items():
                setattr(litellm, key, value)

    for name in SWITCHES:
        await run(name, 10)
    for r in range(rounds):
        for name in list(SWITCHES) if r % 2 == 0 else list(SWITCHES)[::-1]:
            cpu[name].append(await run(name, n))
    base = median(cpu["default"])
    return {
        name: {"cpu_ms_per_call": spread(values), "vs_default": median(values) / base}
        for name, values in cpu.items()
    }


# --- main ------------------------------------------------------------------------------


async def run_benchmark(
    base_url: str, args: Any, report: Report, workers: PairedWorkers, phases: Phases
) -> None:
    """Latency (interleaved), the alone-throughput table (full runs), the profile."""
    concurrencies: list[int] = args.concurrency
    async with Paths(base_url) as paths:
        # the paired workers started beside our own imports; nothing may run beside the
        # measurements
        await asyncio.to_thread(workers.ready)
        # a full gc.collect() (before each run) takes 0.4 s with LiteLLM alive; what is
        # alive now leaves the collector's view (as in the paired workers)
        gc.collect()
        gc.freeze()
        phases.lap("imports_and_workers_ready")
        latency: dict[str, Any] = {}
        throughput: dict[str, Any] = {}
        # The goal's throughput figure is paired (main()); a full run also measures the
        # five paths alone for the requests/s table.
        names = [] if args.quick else list(THROUGHPUT_PATHS)
        steps = len(concurrencies) * (args.runs + args.rounds * len(names))
        with progress_bar("hosted latency", steps) as advance:
            for c in concurrencies:
                # at least `c` calls in flight: n per path >= c / 4 paths
                n_lat = args.calls if c == 1 else max(args.calls, c // 4)
                latency[str(c)] = await measure_latency(paths, c, n_lat, args.runs, advance)
                phases.lap(f"latency_c{c}")
                if names:
                    n_thr = args.calls if c == 1 else max(args.calls, 2 * c)
                    throughput[str(c)] = await measure_throughput(
                        paths, c, n_thr, args.rounds, names, advance
                    )
                    phases.lap(f"alone_throughput_c{c}")
        report.figures["latency_interleaved"] = latency
        if throughput:
            report.figures["throughput_alone_alternating_batches"] = throughput
        report.figures["profile_ours_concurrency_1"] = await profile_ours(paths, args.profile_calls)
        phases.lap("profile")
        if args.switches:
            report.figures["litellm_switches"] = await measure_switches(paths, 60, 6)
            phases.lap("switches")


def summarise(args: Any, report: Report) -> None:
    """Print the table and record the goals."""
    concurrencies: list[int] = args.concurrency
    latency = report.figures["latency_interleaved"]
    alone = report.figures.get("throughput_alone_alternating_batches", {})
    paired = report.figures["throughput_paired"]
    missing = {"median": float("nan")}
    for c in concurrencies:
        lat = latency[str(c)]
        side_by_side = {
            "req_per_s": paired[str(c)]["req_per_s_side_by_side"],
            "cpu_ms_per_call": paired[str(c)]["cpu_ms_per_call"],
        }
        thr = alone.get(str(c), side_by_side)
        how = "each path alone" if str(c) in alone else "side by side, two on one core"
        print(f"\nconcurrency {c} (req/s and CPU: {how}):")
        for name in THROUGHPUT_PATHS:
            p = lat["paths"].get(name)
            p50 = f"{p['p50_ms']['median']:9.3f}" if p else "      n/a"
            p99 = f"{p['p99_ms']['median']:9.3f}" if p else "      n/a"
            rps = thr["req_per_s"].get(name, missing)["median"]
            cpu = thr["cpu_ms_per_call"].get(name, missing)["median"]
            print(
                f"  {name:20s} p50 {p50} ms  p99 {p99} ms  {rps:8.1f} req/s  {cpu:6.2f} CPU ms/call"
            )
        print(
            f"  ours-litellm p50 {lat['ours_minus_litellm_p50_ms']['median']:+.3f} ms, "
            f"p99 ratio {lat['ours_over_litellm_p99']['median']:.3f}, "
            f"generate_many/gather (paired) "
            f"{paired[str(c)]['generate_many_over_litellm_gather']['median']:.3f}, "
            f"ours/openai-SDK p50 {lat['ours_over_openai_sdk_p50']['median']:.2f}x"
        )
    print(
        f"machine drift (a fixed loop, slowest/fastest): "
        f"{paired['drift_before']['max_over_min']:.2f}x before, "
        f"{paired['drift_after']['max_over_min']:.2f}x after; {paired['pinning']}"
    )
    profile = report.figures["profile_ours_concurrency_1"]
    print("\nwhere our hosted call's time goes (cProfile, ms per call, concurrency 1):")
    for row in profile["where_the_time_goes"]:
        print(f"  {row['ms_per_call']:8.3f}  {row['what']}")
    print(f"  unprofiled: {profile['unprofiled']}")

    if "1" in latency:
        report.goal(
            Goal(
                "hosted: p50 overhead of get_client().generate over raw litellm (c=1)",
                0.3,
                "<=",
                latency["1"]["ours_minus_litellm_p50_ms"]["median"],
                "ms",
            )
        )
    for c in concurrencies:
        report.goal(
            Goal(
                f"hosted: p99 ratio generate/raw litellm (c={c})",
                1.05,
                "<=",
                latency[str(c)]["ours_over_litellm_p99"]["median"],
                "x",
            )
        )
    for c in concurrencies:
        report.goal(
            Goal(
                f"hosted: generate_many throughput / gather over raw litellm (c={c})",
                0.97,
                ">=",
                paired[str(c)]["generate_many_over_litellm_gather"]["median"],
                "x",
                detail="side by side in two processes, inverse CPU per call",
            )
        )
    if "1" in latency:
        report.goal(
            Goal(
                "hosted stretch: p50 ours/openai-SDK (c=1)",
                2.0,
                "<=",
                latency["1"]["ours_over_openai_sdk_p50"]["median"],
                "x",
                checked=False,
            )
        )


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 64, 256], help="default: 1 64 256"
    )
    parser.add_argument("--calls", type=int, default=None, help="calls per path per run")
    parser.add_argument("--runs", type=int, default=None, help="interleaved latency runs (4-7)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds of the alone-throughput table"
    )
    parser.add_argument(
        "--pairs", type=int, default=None, help="pairs of rounds of the paired throughput (3-4)"
    )
    parser.add_argument("--profile-calls", type=int, default=None)
    parser.add_argument(
        "--switches", action="store_true", help="also A/B LiteLLM's public switches (CPU per call)"
    )
    parser.add_argument(
        "--with-lag",
        action="store_true",
        help="also event_loop_lag.py's hosted goal, on these workers (run_all.py uses it)",
    )
    args = parser.parse_args()
    args.calls = args.calls or (40 if args.quick else 150)
    args.runs = args.runs or (4 if args.quick else 7)
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.pairs = args.pairs or (3 if args.quick else 4)
    args.profile_calls = args.profile_calls or (60 if args.quick else 300)
    report = Report("hosted_overhead", quick=args.quick, args=vars(args) | {"out": str(args.out)})

    from tests.fixtures.openai_server import run_openai_server

    phases = Phases()
    with run_openai_server() as server, tempfile.TemporaryDirectory() as tmp:
        aliases = hosted_alias_file(Path(tmp) / "bench_aliases.toml", server.base_url, MODEL)
        os.environ["MODEL_REGISTRY_ALIASES"] = str(aliases)
        report.figures["server"] = "tests/fixtures/openai_server.py (aiohttp, own process)"
        with PairedWorkers(server) as workers:
            asyncio.run(run_benchmark(server.base_url, args, report, workers, phases))
            paired = measure_paired_throughput(
                workers,
                args.concurrency,
                args.pairs,
                args.quick,
                lag_calls=LAG_CALLS if args.with_lag else None,
                lag_rounds=2 * lag_pairs(args.quick),
                phases=phases,
            )
    phases.lap("workers_and_server_stop")
    report.figures["phase_s"] = phases.seconds
    lag = paired.pop("lag", None)
    report.figures["throughput_paired"] = paired
    summarise(args, report)
    if lag is not None:
        record_hosted_lag(report, lag)
    report.save(args.out)


if __name__ == "__main__":
    sys.exit(main())
