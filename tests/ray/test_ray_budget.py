"""`max_cost` on Ray: one budget for the whole run, held by one actor; each worker's
attempts reserve from it before they are sent, so the spend never passes the cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import model_registry.ray as mr
from model_registry import BudgetExceededError, Generation, ResultStore
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import SERVER_KEY, client_kwargs, model_name

#: USD per token (the fake server counts a token per word): "prompt N" and its answer
#: "echo: prompt N" cost 2 * 0.001 + 3 * 0.002 = 0.008 each.
PRICES = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002, "max_tokens": 8}


def test_a_run_on_ray_stops_at_max_cost_and_a_higher_cap_finishes_it(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    kwargs = {**client_kwargs(openai_server), **PRICES}
    prompts = [f"prompt {i}" for i in range(40)]
    db = tmp_path / "run.sqlite"

    results = mr.run(f"openai:{model}", prompts, results_db=db, workers=2, max_cost=0.1, **kwargs)

    sent = [r for r in results if isinstance(r, Generation)]
    not_sent = [r for r in results if isinstance(r, BudgetExceededError)]
    assert sent and not_sent and len(sent) + len(not_sent) == 40
    assert openai_server.stats(model).requests == len(sent)
    with ResultStore(db) as store:
        summary = store.summary()
    assert (summary.results, summary.failed) == (len(sent), 0)  # the unsent are not stored
    assert summary.cost is not None and summary.cost <= 0.1

    again = mr.run(f"openai:{model}", prompts, results_db=db, workers=2, max_cost=1.0, **kwargs)

    assert all(isinstance(r, Generation) for r in again)
    assert openai_server.stats(model).requests == 40
    with ResultStore(db) as store:
        assert (store.summary().cost or 0.0) <= 1.0


def test_run_with_ray_and_max_cost_writes_the_prompts_not_sent_and_exits_3(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    lines = [json.dumps(f"prompt {i}") for i in range(12)]
    (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    address = ray_instance.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "model_registry", "run", f"openai:{model}"]
    command += ["prompts.jsonl", "--out", "results.jsonl", "--ray", "--ray-address", address]
    command += ["--max-cost", "0.1", "--set", f"api_base={openai_server.url}"]
    command += ["--set", f"api_key={SERVER_KEY}", "--set", "num_retries=0"]
    for key, value in PRICES.items():
        command += ["--set", f"{key}={value}"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 3, done.stderr
    out = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    not_sent = [line for line in out if line["error"] is not None]
    assert {line["error"]["class"] for line in not_sent} == {"BudgetExceededError"}
    assert openai_server.stats(model).requests == 12 - len(not_sent) > 0
    assert f"{len(not_sent)} prompts not sent" in done.stderr
    assert "of --max-cost $0.100000" in done.stderr
