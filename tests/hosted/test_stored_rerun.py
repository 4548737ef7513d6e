"""A batch looks in its store first and starts the backend only when some prompt needs a
call: a rerun whose answers are all stored imports no LiteLLM (seconds on a cold machine)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import anyio

from model_registry import get_client
from tests.fixtures.openai_server import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY

RERUN = """
import asyncio, json, sys
from model_registry import get_client

async def main():
    client = get_client(sys.argv[1], api_base=sys.argv[2], api_key=sys.argv[3])
    answers = await client.generate_many(["a", "b", "c"], results_db=sys.argv[4])
    streamed = [(i, g.from_store) async for i, g in client.iter_many(["a"], results_db=sys.argv[4])]
    await client.aclose()
    return [g.from_store for g in answers], streamed

stored, streamed = asyncio.run(main())
print(json.dumps({"stored": stored, "streamed": streamed, "litellm": "litellm" in sys.modules}))
"""


async def test_a_rerun_whose_answers_are_all_stored_does_not_load_litellm(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    name, db = f"openai:m-{uuid.uuid4().hex[:8]}", tmp_path / "run.sqlite"
    async with get_client(name, api_base=server.base_url, api_key=SERVER_KEY) as client:
        await client.generate_many(["a", "b", "c"], results_db=db)
    args = [name, server.base_url, SERVER_KEY, str(db)]
    with anyio.fail_after(120):
        out = await anyio.run_process([sys.executable, "-c", RERUN, *args], check=False)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert json.loads(out.stdout) == {
        "stored": [True, True, True],
        "streamed": [[0, True]],
        "litellm": False,
    }
