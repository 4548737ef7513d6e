"""Cached and reasoning tokens in the result store: kept per result, summed by `summary()`,
and store files written before they existed still open and read back (real SQLite files)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from model_registry.store import ResultStore, StoredResult, StoreSummary

#: The store file as model-registry wrote it before cached and reasoning tokens were kept
#: (schema version 1), spelled out here so that the test holds whatever the code becomes.
V1_SCHEMA = """
CREATE TABLE results (key TEXT PRIMARY KEY NOT NULL, idx INTEGER NOT NULL, ok INTEGER NOT NULL,
text TEXT, finish_reason TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,
total_tokens INTEGER, cost REAL, latency_s REAL, model TEXT, provider TEXT, name TEXT,
extra TEXT, error_class TEXT, error_message TEXT, status_code INTEGER, updated_at REAL NOT NULL);
PRAGMA application_id = 1297240659;
PRAGMA user_version = 1;
"""
V1_ROWS = [
    ("a#0", 0, 1, "old answer", "stop", 10, 5, 15, 0.5, 0.2, "gpt-4o-mini", "openai", "mini",
     "{}", None, None, None, 1.0),
    ("b#0", 1, 1, "with reasoning", "stop", 20, 7, 27, None, 0.3, "m", "openai", "m",
     '{"reasoning": "why", "logprobs": [{"token": "a", "logprob": {"$float": "-inf"},'
     ' "top_logprobs": []}]}', None, None, None, 1.0),
    ("c#0", 2, 0, None, None, None, None, None, None, None, None, None, None, None,
     "RateLimitError", "429", 429, 1.0),
]  # fmt: skip


def result(text: str, **fields: object) -> StoredResult:
    values: dict[str, object] = {
        "text": text,
        "finish_reason": "stop",
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "total_tokens": 110,
        "cost": 0.25,
        "latency_s": 0.5,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "name": "mini",
        **fields,
    }
    return StoredResult(**values)  # type: ignore[arg-type]


def _write_v1_store(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript(f"BEGIN; {V1_SCHEMA} COMMIT;")
        db.executemany(f"INSERT INTO results VALUES ({', '.join('?' * 18)})", V1_ROWS)


def test_cached_and_reasoning_tokens_round_trip_and_are_summed(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        store.put_result("a#0", 0, result("a", cached_tokens=64, reasoning_tokens=12))
        store.put_result("b#0", 1, result("b", cached_tokens=0, extra={"reasoning": "r"}))
        store.put_result("c#0", 2, result("c"))
        store.flush()
        found = store.lookup(["a#0", "b#0", "c#0"])
        summary = store.summary()

    assert found["a#0"] == result("a", cached_tokens=64, reasoning_tokens=12)
    assert found["b#0"] == result("b", cached_tokens=0, extra={"reasoning": "r"})
    assert found["c#0"] == result("c")
    assert summary == StoreSummary(
        results=3,
        failed=0,
        prompt_tokens=300,
        completion_tokens=30,
        cost=0.75,
        cached_tokens=64,
        reasoning_tokens=12,
    )


def test_a_store_without_any_cached_or_reasoning_counts_sums_them_to_none(
    tmp_path: Path,
) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        store.put_result("a#0", 0, result("a", cost=None))
        store.put_error("b#0", 1, "APIError", "boom", 500)
        summary = store.summary()
    assert (summary.cached_tokens, summary.reasoning_tokens) == (None, None)


def test_a_store_file_written_before_these_counts_opens_reads_and_takes_new_results(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    _write_v1_store(path)

    with ResultStore(path) as store:
        found = store.lookup(["a#0", "b#0", "c#0"])
        before = store.summary()
        store.put_result("d#0", 3, result("new", cached_tokens=32, reasoning_tokens=4))
        after = store.summary()

    assert sorted(found) == ["a#0", "b#0"]
    assert found["a#0"] == result(
        "old answer",
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        cost=0.5,
        latency_s=0.2,
    )
    old = found["b#0"]
    assert (old.cached_tokens, old.reasoning_tokens) == (None, None)
    assert old.extra["reasoning"] == "why"
    assert old.extra["logprobs"][0]["logprob"] == -float("inf")
    assert before == StoreSummary(2, 1, 30, 12, 0.5, None, None)
    assert after == StoreSummary(3, 1, 130, 22, 0.75, 32, 4)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)  # no migration was needed


@pytest.mark.parametrize("counts", [(7, None), (None, 3)])
def test_the_counts_live_in_the_extra_json_that_older_versions_ignore(
    tmp_path: Path, counts: tuple[int | None, int | None]
) -> None:
    path = tmp_path / "run.sqlite"
    cached, reasoning = counts
    with ResultStore(path) as store:
        store.put_result("a#0", 0, result("a", cached_tokens=cached, reasoning_tokens=reasoning))
    with contextlib.closing(sqlite3.connect(path)) as db:
        (extra,) = db.execute("SELECT extra FROM results").fetchone()
    expected = {"cached_tokens": cached, "reasoning_tokens": reasoning}
    assert json.loads(extra) == {k: v for k, v in expected.items() if v is not None}
