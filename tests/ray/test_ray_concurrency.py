"""How much `model_registry.ray` asks of the cluster and of the server: the GPUs of a local
name's engine per actor, several batches in flight per actor (the batch size does not cap
the calls; 4 batches do), and `--concurrency` split across the workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import model_registry.ray as mr
from model_registry import Generation
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import SERVER_KEY, client_kwargs, model_name

LOCAL = "local:Qwen/Qwen3-8B"


class _Dataset:
    """Stands for a Ray Data dataset: keeps what `map_batches` was asked for."""

    def map_batches(self, fn: Any, **kwargs: Any) -> _Dataset:
        self.fn, self.kwargs = fn, kwargs
        return self


def test_an_actor_of_a_local_name_asks_ray_for_its_engines_gpus(
    ray_instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the test's Ray has no GPU: before the patch, no actor asks for one
    assert mr.gpus_per_actor(LOCAL, tensor_parallel_size=2) is None
    assert mr.build_processor(LOCAL)(_Dataset()).kwargs["num_gpus"] is None
    monkeypatch.setattr(ray_instance, "cluster_resources", lambda: {"CPU": 2.0, "GPU": 8.0})

    processed = mr.build_processor(LOCAL, workers=4, tensor_parallel_size=2)(_Dataset())

    assert processed.fn is mr.ModelProcessor
    assert processed.kwargs["num_gpus"] == 2.0
    assert processed.kwargs["compute"].min_size == 4
    assert mr.gpus_per_actor(LOCAL, tensor_parallel_size=2, pipeline_parallel_size=2) == 4.0
    assert mr.build_processor(LOCAL, num_gpus=1)(_Dataset()).kwargs["num_gpus"] == 1
    assert mr.build_processor("openai:m")(_Dataset()).kwargs["num_gpus"] is None


def test_an_actor_has_more_calls_in_flight_than_its_batch_size_up_to_4_batches(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    batch_size = 4
    prompts = [f"!delay=1 f{i}" for i in range(10 * batch_size)]

    results = mr.run(
        f"openai:{model}",
        prompts,
        results_db=tmp_path / "run.sqlite",
        workers=1,
        batch_size=batch_size,
        **client_kwargs(openai_server),
    )

    assert all(isinstance(r, Generation) for r in results)
    # one actor, several batches at once: not capped by the batch size, but by 4 batches
    in_flight = openai_server.stats(model).max_in_flight
    assert batch_size < in_flight <= mr.BATCHES_PER_ACTOR * batch_size


def test_run_with_ray_splits_concurrency_across_the_workers(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    lines = [f'"!delay=0.5 c{i}"' for i in range(80)]
    (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    address = ray_instance.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "model_registry", "run", f"openai:{model}"]
    command += ["prompts.jsonl", "--out", "results.jsonl", "--ray", "--ray-address", address]
    command += ["--workers", "2", "--concurrency", "6", "--set", f"api_base={openai_server.url}"]
    command += ["--set", f"api_key={SERVER_KEY}", "--set", "num_retries=0"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 0, done.stderr
    stats = openai_server.stats(model)
    assert stats.requests == 80
    # 3 per actor: without the split each actor would hold 6 (up to 64 prompts at once)
    assert stats.max_in_flight <= 6
