"""How much `model_registry.ray` asks of the cluster: the GPUs of a local name's engine
per actor."""

from __future__ import annotations

from typing import Any

import pytest

import model_registry.ray as mr

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
