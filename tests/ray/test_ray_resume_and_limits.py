"""`model_registry.ray.run` under faults: the driver SIGKILLed mid-run and run again pays
only for what was in flight; a server enforcing the declared rpm refuses nothing when the
run's limit is split across its actors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import model_registry.ray as mr
from model_registry import Generation
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import client_kwargs, model_name

PROMPTS = 400
#: Calls in flight for the whole run (2 per actor): the run takes about 10 s.
CONCURRENCY = 4
#: What can be paid twice: answers done in an actor whose batch was not back at the
#: driver (every batch an actor holds, done or not).
IN_FLIGHT = 2 * mr.BATCHES_PER_ACTOR * mr.DEFAULT_BATCH_SIZE

DRIVER = """
import json, sys
import ray
import model_registry.ray as mr

args = json.loads(sys.argv[1])
ray.init(address=args.pop("address"))
mr.run(args.pop("name"), args.pop("prompts"), results_db=args.pop("db"), workers=2, **args)
"""


def _stored(db: Path) -> int:
    """Answers committed to `db` (read beside the run that holds its lock)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM results WHERE ok = 1").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


def test_a_driver_killed_mid_run_and_run_again_answers_every_prompt_once(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    kwargs = {**client_kwargs(openai_server), "limits": {"concurrency": CONCURRENCY}}
    prompts = [f"!delay=0.1 k{i}" for i in range(PROMPTS)]
    db = tmp_path / "run.sqlite"
    args = {"address": ray_instance.get_runtime_context().gcs_address, "name": f"openai:{model}"}
    args |= {"prompts": prompts, "db": str(db), **kwargs}
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    driver = subprocess.Popen(
        [sys.executable, "driver.py", json.dumps(args)], cwd=tmp_path, env=env
    )
    try:
        deadline = time.monotonic() + 300
        while _stored(db) < 2 * mr.DEFAULT_BATCH_SIZE:
            assert driver.poll() is None, "the driver ended before it was killed"
            assert time.monotonic() < deadline, "no answer stored within 300 s"
            time.sleep(0.2)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    done = _stored(db)
    assert done < PROMPTS, "the run finished before the kill: slow it down"

    results = mr.run(f"openai:{model}", prompts, results_db=db, workers=2, **kwargs)

    assert all(isinstance(r, Generation) for r in results)
    assert sum(r.from_store for r in results) >= done
    assert _stored(db) == PROMPTS
    time.sleep(1)  # the killed driver's actors are gone by now; their requests counted
    assert openai_server.stats(model).requests <= PROMPTS + IN_FLIGHT


def test_a_server_enforcing_the_declared_rpm_refuses_nothing_from_two_actors(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    rpm = 600
    openai_server.configure(model, rpm=rpm)
    prompts = [f"r{i}" for i in range(150)]

    results = mr.run(
        f"openai:{model}",
        prompts,
        results_db=tmp_path / "run.sqlite",
        workers=2,
        limits={"rpm": rpm},
        **client_kwargs(openai_server),
    )

    refused = [r for r in results if not isinstance(r, Generation)]
    assert refused == []
    assert openai_server.stats(model).rejected == 0
