"""`on_batch_status=`: each batch job's own status and counts, as the provider reports them
at each poll, handed to a function of the caller's (the fake server's OpenAI Batches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_registry import InvalidParameterError, get_client
from model_registry.testing import FakeOpenAIServer
from tests.hosted.conftest import model_name


async def test_each_poll_hands_the_jobs_own_counts_to_on_batch_status(
    server: FakeOpenAIServer, provider: str, tmp_path: Path
) -> None:
    server.configure_batches(polls=3)  # the job ends at its 3rd poll
    seen: list[Any] = []
    async with get_client(f"{provider}:{model_name()}") as client:
        results = [
            result
            async for result in client.iter_many(
                [f"p{i}" for i in range(30)],
                batch_api=True,
                results_db=tmp_path / "r.db",
                on_batch_status=seen.append,
            )
        ]
    assert len(results) == 30
    assert len(seen) >= 3 and len({s.job_id for s in seen}) == 1
    assert [s.done for s in seen] == [False] * (len(seen) - 1) + [True]
    completed = [s.counts["completed"] for s in seen]
    assert completed == sorted(completed) and 0 < completed[0] < 30 and completed[-1] == 30
    assert seen[-1].status == "completed" and seen[-1].counts["failed"] == 0
    assert str(seen[-1]) == f"job {seen[-1].job_id} completed (completed 30, failed 0)"


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"batch_api": True, "on_batch_status": "print"}, "must be a function"),
        ({"on_batch_status": print}, "pass batch_api=True too"),
    ],
)
async def test_on_batch_status_is_checked_before_anything_is_sent(
    server: FakeOpenAIServer, provider: str, tmp_path: Path, kwargs: dict[str, Any], said: str
) -> None:
    async with get_client(f"{provider}:{model_name()}") as client:
        with pytest.raises(InvalidParameterError, match=said):
            await client.generate_many(["a"], results_db=tmp_path / "r.db", **kwargs)
    assert server.batch_stats("openai").files_uploaded == 0
