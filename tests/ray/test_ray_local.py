"""A local model on Ray: the tiny model's vLLM engine in one Ray CPU actor, its answers in
the driver's store. Needs both Ray and vLLM (CI's local-engine step, which has both)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

import model_registry.ray as mr
from model_registry import Generation
from model_registry.testing import build_tiny_model
from tests.local.conftest import ENGINE_KWARGS, REQUIRE_ENV

pytestmark = pytest.mark.local


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """The tiny model (a skip without vLLM, a failure when MODEL_REGISTRY_REQUIRE_VLLM=1)."""
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but vllm is not installed", pytrace=False)
        pytest.skip("vllm is not installed; skipping the local model on Ray")
    return build_tiny_model(tmp_path / "tiny")


def test_the_tiny_model_answers_through_one_ray_cpu_actor(
    ray_instance: Any, tiny_model: Path, tmp_path: Path
) -> None:
    name = f"local:{tiny_model}"
    prompts: list[Any] = ["Hello", [{"role": "user", "content": "Hi there"}], "A third"]
    kwargs = {"temperature": 0.0, "max_tokens": 8, **ENGINE_KWARGS}
    db = tmp_path / "run.sqlite"

    results = mr.run(name, prompts, results_db=db, workers=1, **kwargs)

    assert all(isinstance(r, Generation) for r in results), results
    assert all(0 < r.usage.completion_tokens <= 8 for r in results)
    assert not any(r.from_store for r in results)
    again = mr.run(name, prompts, results_db=db, workers=1, **kwargs)  # no engine: stored
    assert [r.text for r in again] == [r.text for r in results]
    assert all(r.from_store for r in again)
