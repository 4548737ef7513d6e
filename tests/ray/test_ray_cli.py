"""`model-registry run ... --ray`: the same output file and store as without Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.openai_server import FakeOpenAIServer
from tests.ray.conftest import SERVER_KEY, model_name

PROMPTS = 2000


def _input_line(i: int) -> dict[str, Any]:
    """Prompt i of the 2,000: ids of each kind, a messages prompt, one failing prompt."""
    if i % 100 == 9:
        return {"id": f"r{i}", "messages": [{"role": "user", "content": f"m{i}"}]}
    return {"id": "b", "prompt": "!status=500 no"} if i == 1 else {"id": i * 7, "prompt": f"q{i}"}


def test_run_with_ray_answers_2000_prompts_in_input_order_in_the_output_file_and_store(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    lines = ['"a"'] + [json.dumps(_input_line(i)) for i in range(1, PROMPTS)]
    (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "earlier.jsonl").write_text('"x"\n{"id": "y", "prompt": "y"}\n"z"\n"w"\n')
    address = ray_instance.get_runtime_context().gcs_address
    server = ["--set", f"api_base={openai_server.url}", "--set", f"api_key={SERVER_KEY}"]
    server += ["--set", "num_retries=0"]
    cli = [sys.executable, "-m", "model_registry"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )

    # an earlier run without Ray in the same store: the Ray run must be its latest batch
    plain = call("run", f"openai:{model}", "earlier.jsonl", "--out", "earlier-out.jsonl",
                 "--results-db", "results.jsonl.sqlite", *server)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    done = call("run", f"openai:{model}", "prompts.jsonl", "--out", "results.jsonl", "--ray",
                "--ray-address", address, "--workers", "2", *server)  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert f"{PROMPTS} prompts in" in done.stderr
    assert f"1 of {PROMPTS} prompts failed" in done.stderr
    assert SERVER_KEY not in done.stderr
    assert openai_server.stats(model).requests == 4 + PROMPTS  # each prompt once
    out = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["id"] for line in out] == [0, *(_input_line(i)["id"] for i in range(1, PROMPTS))]
    expected = ["echo: a", None]
    expected += [f"echo: {'m' if i % 100 == 9 else 'q'}{i}" for i in range(2, PROMPTS)]
    assert [line["text"] for line in out] == expected
    assert out[1]["error"]["status_code"] == 500
    # the store holds the Ray run's inputs and ids in input order, as a run without Ray
    exported = call("results", "results.jsonl.sqlite", "--export", "export.jsonl")
    assert exported.returncode == 0, exported.stderr
    lines_out = (tmp_path / "export.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines_out] == out


def test_run_with_ray_writes_parsed_with_a_response_format(
    ray_instance: Any, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    model = model_name()
    openai_server.configure(model, reply='{"city": "Paris"}')
    (tmp_path / "prompts.jsonl").write_text('"a"\n"!status=400 b"\n', encoding="utf-8")
    address = ray_instance.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "model_registry", "run", f"openai:{model}"]
    command += ["prompts.jsonl", "--out", "results.jsonl", "--ray", "--ray-address", address]
    command += ["--workers", "1", "--set", f"api_base={openai_server.url}"]
    command += ["--set", f"api_key={SERVER_KEY}", "--set", "num_retries=0"]
    command += [
        "--set",
        'response_format={type = "object", properties = {city = {type = "string"}}}',
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )

    assert done.returncode == 1, done.stderr
    out = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["parsed"] for line in out] == [{"city": "Paris"}, None]
