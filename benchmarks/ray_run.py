"""The same hosted run three ways, in one run: plain `generate_many`, and
`model_registry.ray.run` with 1 and 2 actors on a local Ray (2 CPUs), all against the
loopback server. Ratios are wall times over plain `generate_many`'s in the same round
(paths take turns going first). The store, polled, splits each wall time: the time to
the first stored answer (Ray: the actors' start) and the rate after it. Needs the `ray` extra:
`UV_PROJECT_ENVIRONMENT=build/venv-ray uv run --extra ray python benchmarks/ray_run.py`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import Report, base_parser, median, rotated, server_kwargs, spread

PATHS = ("generate_many", "ray_1_actor", "ray_2_actors")


def stored(db: Path) -> int:
    """Answers committed to `db` so far (0 before it exists)."""
    uri = f"file:{db}?mode=ro"
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(uri, uri=True)) as c,
    ):
        return int(c.execute("SELECT count(*) FROM results WHERE ok = 1").fetchone()[0])
    return 0


def watch(db: Path, started: float, done: threading.Event, first: list[tuple[float, int]]) -> None:
    """Note when the first answers reach `db` (seconds after `started`, and how many)."""
    while not done.wait(0.05):
        if (count := stored(db)) > 0:
            first.append((time.perf_counter() - started, count))
            return


def plain(name: str, prompts: list[str], db: Path, kwargs: dict[str, Any]) -> list[Any]:
    """The run without Ray: one client, generate_many into `db`."""
    from model_registry import get_client

    async def go() -> list[Any]:
        async with get_client(name, **kwargs) as client:
            return await client.generate_many(prompts, results_db=db, return_exceptions=True)

    return asyncio.run(go())


def one_run(path: str, count: int, server: Any, folder: Path) -> dict[str, float]:
    """`count` fresh prompts through `path` (a model of its own, a new store): the wall
    seconds, those to the first stored answer, and the answers per second after it."""
    import model_registry.ray as mr

    name = f"openai:bench-ray-{uuid.uuid4().hex[:8]}"
    prompts = [f"prompt {i}" for i in range(count)]
    db = folder / f"{uuid.uuid4().hex}.sqlite"
    kwargs: dict[str, Any] = {**server_kwargs(server, "ray-bench"), "num_retries": 0}
    first: list[tuple[float, int]] = []
    started, done = time.perf_counter(), threading.Event()
    watcher = threading.Thread(target=watch, args=(db, started, done, first))
    watcher.start()
    try:
        if path == "generate_many":
            results = plain(name, prompts, db, kwargs)
        else:
            workers = 1 if path == "ray_1_actor" else 2
            results = mr.run(name, prompts, results_db=db, workers=workers, **kwargs)
    finally:
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, f"{path}: {len(failed)} prompts failed, e.g. {failed[0]!r}"
    to_first, seen = first[0] if first else (wall, count)
    rate = (count - seen) / (wall - to_first) if wall > to_first and count > seen else 0.0
    return {"wall_s": wall, "first_answer_s": to_first, "answers_per_s_after": rate}


def figures_of(runs: dict[str, list[dict[str, float]]], prompts: int) -> dict[str, Any]:
    """Per path: the spread of each measure; wall over generate_many's, round by round."""
    base = [r["wall_s"] for r in runs["generate_many"]]
    out: dict[str, Any] = {"prompts": prompts}
    for path in PATHS:
        ratios = [r["wall_s"] / b for r, b in zip(runs[path], base, strict=True)]
        out[path] = {key: spread([r[key] for r in runs[path]]) for key in runs[path][0]}
        out[path] |= {"wall_over_generate_many": median(ratios), "ratio_rounds": ratios}
    return out


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--prompts", type=int, help="prompts per run (default 2000; quick 400)")
    parser.add_argument("--rounds", type=int, help="rounds, paths in turn (default 3; quick 1)")
    args = parser.parse_args()
    prompts = args.prompts or (400 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    # the actors use this environment as it is (not `uv run`'s packaged copy of the checkout)
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    import ray

    from model_registry.testing import run_openai_server

    report = Report("ray_run", quick=args.quick, args={"prompts": prompts, "rounds": rounds})
    runs: dict[str, list[dict[str, float]]] = {path: [] for path in PATHS}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with run_openai_server() as server, tempfile.TemporaryDirectory() as tmp:
            one_run("generate_many", 16, server, Path(tmp))  # LiteLLM's import, first call
            for turn in range(rounds):
                for path in rotated(PATHS, turn):
                    runs[path].append(one_run(path, prompts, server, Path(tmp)))
                    print(f"round {turn + 1}: {path}: {runs[path][-1]}")
    finally:
        ray.shutdown()
    report.figures = figures_of(runs, prompts)
    for path in PATHS:  # no goal: Ray on two cores costs throughput, recorded here
        f = report.figures[path]
        print(
            f"{path}: {f['wall_over_generate_many']:.2f}x generate_many's wall time; first "
            f"answer at {f['first_answer_s']['median']:.1f} s, then "
            f"{f['answers_per_s_after']['median']:.0f} answers/s"
        )
    report.save(args.out)


if __name__ == "__main__":
    main()
