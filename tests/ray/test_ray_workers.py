"""`model_registry.ray.run` when a worker dies: an actor SIGKILLed mid-run is restarted by
Ray and its batches sent again; the run finishes, and what the driver already kept is not
asked again."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path
from typing import Any

import model_registry.ray as mr
from model_registry import Generation
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import client_kwargs, model_name
from tests.ray.test_ray_resume_and_limits import _stored

PROMPTS = 240
#: What the killed actor held (every batch it worked on) is asked again.
IN_FLIGHT = mr.BATCHES_PER_ACTOR * mr.DEFAULT_BATCH_SIZE


def _workers(ray: Any) -> list[dict[str, Any]]:
    """The live Ray Data actors of this process's job (each answers batches)."""
    from ray._private.state import actors

    job = ray.get_runtime_context().get_job_id()
    found = actors(job_id=ray.JobID.from_hex(job), actor_state_name="ALIVE").values()
    return [a for a in found if "MapWorker" in a["ActorClassName"] and a["Pid"]]


def test_an_actor_killed_mid_run_is_restarted_and_the_run_finishes(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    kwargs = {**client_kwargs(openai_server), "limits": {"concurrency": 4}}
    prompts = [f"!delay=0.1 w{i}" for i in range(PROMPTS)]
    db = tmp_path / "run.sqlite"

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            mr.run, f"openai:{model}", prompts, results_db=db, workers=2, **kwargs
        )
        deadline = time.monotonic() + 300
        while _stored(db) < 2 * mr.DEFAULT_BATCH_SIZE or not _workers(ray_instance):
            assert not running.done(), running.result()
            assert time.monotonic() < deadline, "no answer stored within 300 s"
            time.sleep(0.2)
        victim = _workers(ray_instance)[0]
        os.kill(victim["Pid"], signal.SIGKILL)
        assert _stored(db) < PROMPTS, "the run finished before the kill: slow it down"
        results = running.result(timeout=600)

    assert all(isinstance(r, Generation) for r in results), [
        r for r in results if not isinstance(r, Generation)
    ][:3]
    assert [r.text for r in results] == [f"echo: {p}" for p in prompts]
    assert _stored(db) == PROMPTS
    restarted = ray_instance._private.state.actors(actor_id=victim["ActorID"])
    assert restarted["NumRestarts"] >= 1
    assert PROMPTS <= openai_server.stats(model).requests <= PROMPTS + IN_FLIGHT
