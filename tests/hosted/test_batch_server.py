"""Batch APIs against the real fake server (`model_registry.testing`): OpenAI Files +
Batches at an OpenAI-compatible api_base, Anthropic Message Batches, splitting, failures and
reruns, counted by the server."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
import pytest

from model_registry import ServiceUnavailableError, get_client
from model_registry.clients._batch_api.providers import OpenAIJobs
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import SERVER_KEY, declare, model_name


async def test_a_few_hundred_prompts_come_back_in_order_from_jobs_of_batch_size(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    server.configure_batches(results_order="reversed")  # answers matched by custom id
    prompts = [f"prompt {i}" for i in range(300)]
    model = model_name()
    async with get_client(f"{provider}:{model}") as client:
        results = await client.generate_many(
            prompts, batch_api=True, batch_size=100, results_db=tmp_path / "r.db"
        )
    assert [g.text for g in results] == [f"echo: prompt {i}" for i in range(300)]
    ids = [g.batch_id for g in results]
    assert len(set(ids)) == 3 and ids[0] == ids[99] != ids[100]
    stats = server.batch_stats("openai")
    assert (stats.jobs_created, stats.files_uploaded, stats.requests) == (3, 3, 300)
    assert server.stats(model).requests == 0  # nothing went out one request at a time


async def test_failed_and_expired_requests_are_errors_and_a_rerun_sends_only_them(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    server.configure_batches(fail_prompts=["p1"], expire_prompts=["p2"], polls=2)
    prompts = ["p0", "p1", "p2", "p3"]
    db = tmp_path / "r.db"
    async with get_client(f"{provider}:{model_name()}") as client:
        first = await client.generate_many(
            prompts, batch_api=True, results_db=db, return_exceptions=True
        )
        assert isinstance(first[1], ServiceUnavailableError) and first[1].status_code == 500
        assert "batch_expired" in str(first[2]) and first[2].status_code is None
        assert [first[0].text, first[3].text] == ["echo: p0", "echo: p3"]
        server.configure_batches()
        last = await client.generate_many(prompts, batch_api=True, results_db=db)
    assert [g.text for g in last] == [f"echo: p{i}" for i in range(4)]
    assert [g.from_store for g in last] == [True, False, False, True]
    stats = server.batch_stats("openai")
    assert (stats.jobs_created, stats.requests) == (2, 6)


async def test_submit_then_collect_makes_one_job_and_cancel_stops_a_running_one(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    server.configure_batches(polls=1000)  # runs until cancelled
    db = tmp_path / "r.db"
    async with get_client(f"{provider}:{model_name()}") as client:
        submitted = await client.submit_batch(["a", "b"], results_db=db)
        again = await client.submit_batch(["a", "b"], results_db=db)
        assert again.job_ids == submitted.job_ids and again.pending == 2
        (status,) = await client.batch_status(submitted.job_ids, cancel=True)
        assert status.status in ("cancelling", "cancelled")
        results = await client.generate_many(
            ["a", "b"], batch_api=True, results_db=db, return_exceptions=True
        )
        assert all("batch_cancelled" in str(r) for r in results)
        server.configure_batches()
        last = await client.generate_many(["a", "b"], batch_api=True, results_db=db)
    assert [g.text for g in last] == ["echo: a", "echo: b"]
    assert server.batch_stats("openai").jobs_created == 2


async def test_anthropic_message_batches_on_the_fake_server(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    name = "anthropic:claude-3-5-haiku-20241022"
    prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]]
    prompts += [f"prompt {i}" for i in range(20)]
    async with get_client(
        name, api_base=server.anthropic_url, api_key=SERVER_KEY, max_tokens=20
    ) as client:
        results = await client.generate_many(
            prompts, batch_api=True, results_db=tmp_path / "r.db", batch_size=8
        )
    assert [g.text for g in results[1:]] == [f"echo: prompt {i}" for i in range(20)]
    assert results[0].text == "echo: hi" and results[0].batch_id
    jobs = server.batch_jobs("anthropic")
    assert len(jobs) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", c) for j in jobs for c in j["custom_ids"])


async def test_declared_rpm_and_tpm_do_not_pace_a_batch_job(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    # one request a minute and 40 tokens: paced, 20 calls (15 tokens each with max_tokens 8)
    # would take over 7 minutes (the second call alone about 2); a provider queues a batch
    # job apart from its calls, so the batch goes as one job at once
    declare(tmp_path, server, provider, f'[limits."{provider}"]\nrpm = 1\ntpm = 40\n')
    prompts = [f"prompt {i}" for i in range(20)]
    model = model_name()
    async with get_client(f"{provider}:{model}", max_tokens=8) as client:
        with anyio.fail_after(30):
            results = await client.generate_many(
                prompts, batch_api=True, results_db=tmp_path / "r.db"
            )
        assert server.stats(model).requests == 0  # nothing went out one request at a time
        with anyio.move_on_after(3) as paced:  # the same limits pace calls: two take minutes
            await client.generate_many(prompts[:2])
    assert [g.text for g in results] == [f"echo: {p}" for p in prompts]
    assert len({g.batch_id for g in results}) == 1
    stats = server.batch_stats("openai")
    assert (stats.jobs_created, stats.requests) == (1, 20)
    assert paced.cancelled_caught and server.stats(model).requests <= 1


async def test_jobs_are_split_within_the_providers_bytes_per_file(
    server: FakeOpenAIServer, provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 2_000  # OpenAI's 200 MB per file, lowered (so is the server's: it refuses more)
    monkeypatch.setattr(OpenAIJobs, "max_bytes", cap)
    server.configure_batches(openai_max_bytes=cap)
    prompts = [f"prompt {i:02d} " + "x" * (i % 5 * 60) for i in range(30)]  # lines of 5 sizes
    async with get_client(f"{provider}:{model_name()}") as client:
        results = await client.generate_many(prompts, batch_api=True, results_db=tmp_path / "r.db")
    assert [g.text for g in results] == [f"echo: {p}" for p in prompts]
    jobs = [job["id"] for job in server.batch_jobs("openai")]
    stats = server.batch_stats("openai")
    assert len(jobs) == stats.jobs_created == stats.files_uploaded > 2  # 50,000 requests a job
    files = await _input_files(server, jobs)
    assert all(len(file) <= cap for file in files)
    # each file holds as many lines as fit: the next job's first line did not
    firsts = [file.splitlines(keepends=True)[0] for file in files[1:]]
    assert all(len(file) + len(first) > cap for file, first in zip(files, firsts, strict=False))
    # in input order: the jobs hold consecutive runs of the prompts
    runs = [len(file.splitlines()) for file in files]
    assert [g.batch_id for g in results] == [
        job for job, n in zip(jobs, runs, strict=True) for _ in range(n)
    ]


async def _input_files(server: FakeOpenAIServer, jobs: list[str]) -> list[bytes]:
    """The JSONL file each OpenAI batch job was created from, as the server received it."""
    headers = {"Authorization": f"Bearer {SERVER_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        files = []
        for job in jobs:
            batch = (await http.get(f"/batches/{job}")).raise_for_status().json()
            content = await http.get(f"/files/{batch['input_file_id']}/content")
            files.append(content.raise_for_status().content)
    return files
