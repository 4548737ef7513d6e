"""Fixtures of the Ray tests: one local Ray (2 CPUs) and one fake server per session.

Without Ray these tests skip, unless MODEL_REGISTRY_REQUIRE_RAY=1 (as in CI's Ray step),
which turns the missing Ray into a failure. Every test here is marked `ray`.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.openai_server import openai_server_fixture

REQUIRE_ENV = "MODEL_REGISTRY_REQUIRE_RAY"
SERVER_KEY = "sk-ray-test-key"

openai_server = openai_server_fixture(api_key=SERVER_KEY)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[Any]:
    """A local Ray for the session (its start is slow on two cores), or a skip without Ray."""
    if importlib.util.find_spec("ray") is None:
        message = "ray is not installed (uv sync --extra ray)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {message}", pytrace=False)
        pytest.skip(f"{message}; skipping the Ray tests")
    # under `uv run`, Ray would start each worker through `uv run` with this checkout
    # packaged as its working dir (minutes on two cores); the workers share this venv
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    import ray

    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as exc:  # Ray waits 30 s (fixed) for its raylet: a loaded machine
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise
    yield ray
    ray.shutdown()


def model_name() -> str:
    """A model name of its own (the server keeps rules and counts per name)."""
    return f"m-{uuid.uuid4().hex[:8]}"


def client_kwargs(server: Any) -> dict[str, Any]:
    """What reaches the fake server from a Ray actor: its URL and key as kwargs."""
    return {"api_base": server.url, "api_key": SERVER_KEY, "num_retries": 0}
