"""The result store: real SQLite files in tmp_path, real processes for locks and crashes."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from model_registry.errors import ModelRegistryError
from model_registry.store import EXCLUDED_FROM_KEY, ResultStore, ResultStoreError, StoredResult
from model_registry.store import StoreSummary as Summary

REPO = Path(__file__).resolve().parent.parent
ROUTE = "openai/gpt-4o-mini"


def result(text: str = "an answer", **fields: object) -> StoredResult:
    values: dict[str, object] = {
        "text": text,
        "finish_reason": "stop",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost": 0.25,
        "latency_s": 0.5,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "name": "mini",
    }
    values.update(fields)
    return StoredResult(**values)  # type: ignore[arg-type]


def user(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


def key_of(text: str, **params: object) -> str:
    return ResultStore.request_key(ROUTE, user(text), params)


# --- reading and writing -------------------------------------------------------------------


def test_results_and_errors_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    answer = result("Paris", extra={"reasoning": "capital", "parsed": {"city": "Paris"}})
    with ResultStore(path) as store:
        store.put_result("a#0", 0, answer)
        store.put_error("b#0", 1, "RateLimitError", "429 slow down", 429)
        store.flush()
        assert store.lookup(["a#0", "b#0", "c#0"]) == {"a#0": answer}
    with ResultStore(path) as again:
        assert again.lookup(["a#0", "b#0"]) == {"a#0": answer}  # stored errors are retried
        assert again.summary() == Summary(1, 1, 10, 5, 0.25)


def test_close_commits_what_is_still_queued(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as store:
        for i in range(500):
            store.put_result(f"k{i}#0", i, result(f"answer {i}"))
    with ResultStore(path) as again:
        found = again.lookup(f"k{i}#0" for i in range(500))
    assert [found[f"k{i}#0"].text for i in range(500)] == [f"answer {i}" for i in range(500)]


def test_a_success_replaces_an_error_and_an_error_never_replaces_a_success(
    tmp_path: Path,
) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        store.put_error("a#0", 0, "ServiceUnavailableError", "503", 503)
        store.flush()
        store.put_result("a#0", 0, result("second try"))
        store.put_result("b#0", 1, result("first try"))
        store.flush()
        store.put_error("b#0", 1, "APIConnectionError", "reset", None)
        store.flush()
        found = store.lookup(["a#0", "b#0"])
        assert {k: r.text for k, r in found.items()} == {"a#0": "second try", "b#0": "first try"}
        assert store.summary().failed == 0
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        rows = db.execute("SELECT key, ok, error_class FROM results ORDER BY key").fetchall()
    db.close()
    assert rows == [("a#0", 1, None), ("b#0", 1, None)]


def test_summary_sums_tokens_and_cost_and_counts_failures(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        assert store.summary() == Summary(0, 0, 0, 0, None)
        store.put_result("a#0", 0, result(prompt_tokens=100, completion_tokens=7, cost=0.5))
        store.put_result("b#0", 1, result(prompt_tokens=20, completion_tokens=3, cost=None))
        store.put_error("c#0", 2, "ServiceUnavailableError", "500", 500)
        store.put_error("d#0", 3, "RateLimitError", "429", 429)
        store.flush()
        store.put_result("d#0", 3, result(prompt_tokens=1, completion_tokens=1, cost=0.25))
        store.flush()
        assert store.summary() == Summary(
            results=3, failed=1, prompt_tokens=121, completion_tokens=11, cost=0.75
        )


def test_a_local_store_without_costs_sums_cost_as_none(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        store.put_result("a#0", 0, result(cost=None, provider="local"))
        store.flush()
        assert store.summary() == Summary(1, 0, 10, 5, None)


def test_non_finite_floats_in_extra_come_back_and_the_blob_stays_plain_json(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    logprobs = [{"token": "a", "logprob": -math.inf, "top": [["b", math.inf], ["c", -0.5]]}]
    with ResultStore(path) as store:
        store.put_result("a#0", 0, result(extra={"logprobs": logprobs, "x": math.nan}))
        store.flush()
        extra = store.lookup(["a#0"])["a#0"].extra
    assert extra["logprobs"] == logprobs
    assert math.isnan(extra["x"])
    (blob,) = sqlite3.connect(path).execute("SELECT extra FROM results").fetchone()

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(blob, parse_constant=refuse)["x"] == {"$float": "nan"}


class Logprob(msgspec.Struct, frozen=True):
    token: str
    logprob: float


def test_structs_in_extra_are_stored_as_objects_with_their_non_finite_floats(
    tmp_path: Path,
) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        store.put_result("a#0", 0, result(extra={"logprobs": [Logprob("a", -math.inf)]}))
        store.flush()
        extra = store.lookup(["a#0"])["a#0"].extra
    assert msgspec.convert(extra["logprobs"], list[Logprob]) == [Logprob("a", -math.inf)]


def test_extra_that_is_not_json_data_is_refused_at_put(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "run.sqlite") as store:
        with pytest.raises(ResultStoreError, match=r"prompt 7 .*not JSON data"):
            store.put_result("a#0", 7, result(extra={"parsed": object()}))
        store.put_result("b#0", 8, result())  # the store is still usable
        store.flush()
        assert list(store.lookup(["a#0", "b#0"])) == ["b#0"]


async def test_aflush_and_aclose_work_from_the_event_loop(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "run.sqlite")
    store.put_result("a#0", 0, result())
    await store.aflush()
    assert store.summary().results == 1
    await store.aclose()
    with pytest.raises(ResultStoreError, match="closed"):
        store.put_result("b#0", 1, result())


def test_a_failed_write_is_raised_by_the_next_call_naming_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    store = ResultStore(path)
    # A real SQLite failure inside the writer's transaction (as a full disk would give).
    with sqlite3.connect(path) as other:
        other.execute(
            "CREATE TRIGGER full BEFORE INSERT ON results BEGIN "
            "SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    store.put_result("a#0", 0, result())
    with pytest.raises(ResultStoreError, match=r"run\.sqlite.*disk is full.*run again"):
        store.flush()
    with pytest.raises(ResultStoreError, match="disk is full"):
        store.put_error("b#0", 1, "APIError", "x", None)
    with pytest.raises(ResultStoreError, match="disk is full"):
        store.close()
    with ResultStore(path) as again:  # closed for real: the lock was released
        assert again.summary().results == 0


# --- keys ----------------------------------------------------------------------------------


def test_repeated_identical_requests_get_distinct_keys() -> None:
    a, b = key_of("tell a joke"), key_of("a fact")
    assert ResultStore.batch_keys([a, a, b, a]) == [f"{a}#0", f"{a}#1", f"{b}#0", f"{a}#2"]


def test_a_reordered_or_grown_batch_gives_each_prompt_its_own_answer(tmp_path: Path) -> None:
    first = ["q1", "q2", "q3", "q1"]
    with ResultStore(tmp_path / "run.sqlite") as store:
        keys = ResultStore.batch_keys(key_of(p) for p in first)
        for i, (prompt, key) in enumerate(zip(first, keys, strict=True)):
            store.put_result(key, i, result(f"answer to {prompt}"))
        store.flush()
        second = ["new", "q3", "q1", "q2", "q1", "q1"]
        keys = ResultStore.batch_keys(key_of(p) for p in second)
        found = store.lookup(keys)
    answers = [found[k].text if k in found else None for k in keys]
    assert answers == [
        None,
        "answer to q3",
        "answer to q1",
        "answer to q2",
        "answer to q1",  # the second sample of q1 from the first run
        None,  # a third sample was never made
    ]


def test_credentials_and_call_options_do_not_change_a_key() -> None:
    base = key_of("hi", temperature=0.2, api_base="https://proxy.example/v1")
    same = key_of(
        "hi",
        temperature=0.2,
        api_base="https://user:s3cret@proxy.example/v1?api-key=abc123",
        api_key="sk-one",
        extra_headers={"Authorization": "Bearer xyz"},
        aws_secret_access_key="aws",
        timeout=3,
        num_retries=9,
        concurrency=256,
        results_db="x.sqlite",
        return_exceptions=True,
        metadata={"run": 1},
        stream_options={"include_usage": True},
    )
    assert same == base
    assert {"timeout", "num_retries", "results_db", "concurrency"} <= EXCLUDED_FROM_KEY


def test_route_messages_and_params_change_a_key() -> None:
    base = key_of("hi", temperature=0.2)
    assert key_of("hi", temperature=0.2) == base
    assert ResultStore.request_key(ROUTE, user("hi"), {"temperature": 0.2}) == base
    others = {
        ResultStore.request_key("anthropic/claude", user("hi"), {"temperature": 0.2}),
        ResultStore.request_key("/models/tiny", user("hi"), {"temperature": 0.2}),
        key_of("hi ", temperature=0.2),
        key_of("hi", temperature=0.3),
        key_of("hi", temperature=0.2, max_tokens=5),
        ResultStore.request_key(
            ROUTE, [{"role": "system", "content": "be brief"}, *user("hi")], {"temperature": 0.2}
        ),
    }
    assert base not in others
    assert len(others) == 6


def test_keys_of_hosted_names_and_hub_ids_stay_those_that_stores_already_hold() -> None:
    # Stores already written answer only while these stay byte for byte; an api_base leaves
    # a key as the same request has without one.
    hosted = ResultStore.request_key(
        ROUTE,
        user("hi"),
        {
            "temperature": 0.2,
            "max_tokens": 5,
            "api_base": "http://127.0.0.1:8000/v1",
            "api_key": "sk-x",
            "timeout": 3,
        },
    )
    assert hosted == "bcd876657659ada73c13142da129684c301032c632a9086dfd2acc531752a9ec"
    hub = ResultStore.request_key(
        "Qwen/Qwen3-4B-Instruct-2507", user("hi"), {"temperature": 0.0, "max_model_len": 512}
    )
    assert hub == "62a02c784c0e4bae83d341ca36b983a3175477fdf44db83f47d1d59b757f7df0"


def test_param_order_does_not_change_a_key() -> None:
    one = ResultStore.request_key(ROUTE, user("hi"), {"a": 1, "b": {"x": 1, "y": 2}})
    two = ResultStore.request_key(ROUTE, user("hi"), {"b": {"y": 2, "x": 1}, "a": 1})
    assert one == two


# --- files that are not ours ---------------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    db.close()


def _store_with_rows(path: Path) -> None:
    with ResultStore(path) as store:
        for i in range(2000):
            store.put_result(f"k{i}#0", i, result("x" * 200))


def _corrupt(path: Path) -> None:
    _store_with_rows(path)
    data = bytearray(path.read_bytes())
    data[8192:16384] = b"\xa5" * 8192  # pages 3 and 4 overwritten; the header intact
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    _store_with_rows(path)
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_foreign_sqlite, "SQLite database of another program"),
        (lambda p: p.write_text("id,text\n1,hello\n"), "not an SQLite database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20), "not an SQLite"),
        (_corrupt, "damaged"),
        (_truncate, "damaged"),
    ],
    ids=["foreign-sqlite", "text", "short-header", "corrupted", "truncated"],
)
def test_a_file_that_is_not_a_sound_store_is_refused_and_left_unchanged(
    tmp_path: Path, make: object, says: str
) -> None:
    path = tmp_path / "results.sqlite"
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    with pytest.raises(ResultStoreError, match=says) as caught:
        ResultStore(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ModelRegistryError)
    assert path.read_bytes() == before
    with pytest.raises(ResultStoreError):  # and still refused: nothing was "repaired"
        ResultStore(path)
    assert path.read_bytes() == before


def test_no_lock_file_is_left_beside_a_refused_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    _foreign_sqlite(path)
    with pytest.raises(ResultStoreError):
        ResultStore(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def test_a_store_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    ResultStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ResultStoreError, match="newer model-registry"):
        ResultStore(path)


def test_an_empty_file_is_initialised_as_a_store(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    path.touch()
    with ResultStore(path) as store:
        store.put_result("a#0", 0, result())
    with ResultStore(path) as again:
        assert list(again.lookup(["a#0"])) == ["a#0"]


def test_a_store_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultStoreError, match=r"nowhere.*folder exists"):
        ResultStore(tmp_path / "nowhere" / "run.sqlite")


# --- two processes, and a crash ------------------------------------------------------------


def _open_in_another_process(path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom model_registry.store import ResultStore, ResultStoreError\n"
        "try:\n    ResultStore(sys.argv[1]).close()\n"
        "except ResultStoreError as e:\n    print(e)\n    sys.exit(3)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )


def test_a_second_process_fails_at_once_while_the_first_holds_the_store(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as store:
        store.put_result("a#0", 0, result())
        store.flush()
        refused = _open_in_another_process(path)
        assert refused.returncode == 3, refused.stderr
        assert str(path) in refused.stdout
        assert "in use by another run" in refused.stdout
        with pytest.raises(ResultStoreError, match="in use by another run"):
            ResultStore(path)  # the same process, a second time
        assert list(store.lookup(["a#0"])) == ["a#0"]  # the first is unharmed
    assert _open_in_another_process(path).returncode == 0


def test_a_writer_killed_mid_run_leaves_a_sound_file_with_every_committed_result(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.store_writer", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    committed, deadline = 0, time.monotonic() + 60
    while committed < 20_000 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        committed = int(line)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert committed >= 20_000, "the writer did not report 20,000 committed results in 60 s"

    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    with ResultStore(path) as store:  # the dead writer's lock is gone
        found = store.lookup(f"k{i}#0" for i in range(committed))
        assert len(found) == committed
        assert found[f"k{committed - 1}#0"].text == f"answer {committed - 1}"
        assert store.summary().results >= committed


def test_ten_thousand_keys_are_found_among_a_hundred_thousand(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite"
    with ResultStore(path) as store:
        for i in range(100_000):
            store.put_result(f"{i:08d}#0", i, result(f"answer {i}", prompt_tokens=i))
    wanted = [f"{i:08d}#0" for i in range(0, 100_000, 10)] + ["absent#0", "00000000#1"]
    with ResultStore(path) as store:
        started = time.perf_counter()
        found = store.lookup(wanted)
        elapsed = time.perf_counter() - started
    assert sorted(found) == wanted[:-2]
    assert all(found[f"{i:08d}#0"].prompt_tokens == i for i in range(0, 100_000, 10))
    assert elapsed < 5, f"looking up 10,000 keys took {elapsed:.1f} s"
