"""`model_registry.ray` without Ray at work: importing it loads nothing of Ray, and a run
on a machine without the extra says what to install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model_registry._ray_rows import limits_share

#: Makes `import ray` behave as on a machine without the `ray` extra.
NO_RAY = (
    "import sys, importlib.abc\n"
    "class NoRay(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'ray': raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, NoRay())\n"
)


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout


def test_importing_model_registry_ray_loads_no_ray_nor_a_backend() -> None:
    code = (
        "import sys, json\n"
        "import model_registry.ray\n"
        "heavy = {'ray', 'pyarrow', 'pandas', 'litellm', 'vllm'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    assert json.loads(_run(code)) == []


def test_a_run_without_the_ray_extra_names_the_install_command() -> None:
    code = NO_RAY + (
        "import model_registry.ray\n"
        "try:\n"
        "    model_registry.ray.run('openai:m', ['hi'], results_db='x.sqlite')\n"
        "except model_registry.BackendNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    assert _run(code).strip() == (
        "model_registry.ray needs Ray Data: pip install 'model-registry-llm[ray]' "
        "(in a checkout: uv sync --extra ray)"
    )


def test_each_worker_gets_its_share_of_the_strictest_declared_and_own_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[limits."openai"]\nrpm = 900\ntpm = 90000\nconcurrency = 10\n', encoding="utf-8"
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(aliases))
    kwargs = {"max_tokens": 8, "limits": {"rpm": 600}}

    share = limits_share("openai:gpt-4.1-mini", kwargs, 3)

    assert share == {"max_tokens": 8, "limits": {"rpm": 200, "tpm": 30000, "concurrency": 3}}
    assert limits_share("openai:gpt-4.1-mini", kwargs, 1) == kwargs
    assert limits_share("openai:gpt-4.1-mini", {"limits": {"concurrency": 2}}, 4) == {
        "limits": {"rpm": 225, "tpm": 22500, "concurrency": 1}
    }


def test_the_default_workers_and_gpus_per_actor_follow_the_cluster_and_the_engine() -> None:
    from model_registry.ray import _gpus_for, _workers_for

    hosted, local = "openai:gpt-4.1-mini", "local:Qwen/Qwen3-8B"
    tensor = {"tensor_parallel_size": 2}
    both = {**tensor, "pipeline_parallel_size": 2}
    # (name, kwargs, GPUs in the cluster) -> (workers, GPUs per actor)
    cases = {
        (hosted, (), 0): (2, None),
        (hosted, (), 8): (2, None),
        (local, (), 0): (1, None),  # a CPU engine
        (local, (), 8): (8, 1.0),
        (local, tuple(tensor.items()), 8): (4, 2.0),
        (local, tuple(both.items()), 8): (2, 4.0),
        (local, tuple(tensor.items()), 3): (1, 2.0),
    }
    for (name, kwargs, gpus), expected in cases.items():
        decided = (_workers_for(name, dict(kwargs), gpus), _gpus_for(name, dict(kwargs), gpus))
        assert decided == expected, (name, kwargs, gpus)
    # the driver's own kwargs and the limits are not the engine's
    assert _gpus_for(local, {**tensor, "limits": {"rpm": 60}, "_packed": True}, 8) == 2.0
