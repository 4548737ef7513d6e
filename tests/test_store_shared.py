"""Many processes, one store: claims with leases, read-only stores, batches run by several
processes at once against the fake server (each prompt sent once in total)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_registry import get_client
from model_registry.store import ResultStore, ResultStoreError
from model_registry.testing import FakeOpenAIServer, run_openai_server
from tests.fixtures.store_writer import record

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with run_openai_server() as running:
        yield running


def _python(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _claims(path: Path) -> list[tuple[str, int]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT key, pid FROM claims ORDER BY key").fetchall()


# --- claims --------------------------------------------------------------------------------


def test_a_key_claimed_by_one_store_is_skipped_by_another(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as first, ResultStore(path) as second:
        assert first.claim(["a#0", "b#0"], "batch") == ["a#0", "b#0"]
        assert second.claim(["a#0", "b#0", "c#0"], "batch") == ["c#0"]
        assert first.claim(["a#0"], "batch") == ["a#0"]  # a holder may claim again


def test_a_claim_ends_when_its_result_or_error_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as first, ResultStore(path) as second:
        first.claim(["a#0", "b#0"], "batch")
        first.put_result("a#0", 0, record(0))
        first.put_error("b#0", 1, "APIError", "boom", 500)
        first.flush()
        assert _claims(path) == []
        # an answered key is never claimed again; a failed one is (errors are retried)
        assert second.claim(["a#0", "b#0"], "batch") == ["b#0"]


def test_released_claims_are_those_of_the_batch_and_not_yet_stored(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as store:
        store.claim(["a#0", "b#0"], "one")
        store.claim(["c#0"], "two")
        store.put_result("a#0", 0, record(0))
        store.release_claims("one")
        store.flush()
        assert _claims(path) == [("c#0", os.getpid())]
    assert _claims(path) == []  # closing ends every claim of the store


_CLAIM_AND_WAIT = (
    "import sys, time\nfrom model_registry.store import ResultStore\n"
    "store = ResultStore(sys.argv[1], lease_s=float(sys.argv[2]))\n"
    "print(store.claim(['a#0', 'b#0'], 'batch'), flush=True)\ntime.sleep(600)\n"
)


@pytest.mark.parametrize("lease_s", [0.5, 2.0])
def test_a_claim_is_renewed_while_its_holder_lives_and_taken_over_once_it_is_killed(
    tmp_path: Path, lease_s: float
) -> None:
    path = tmp_path / "run.sqlite"
    holder = _python(_CLAIM_AND_WAIT, path, lease_s)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "['a#0', 'b#0']", holder.stderr
        with ResultStore(path, lease_s=lease_s) as other:
            time.sleep(lease_s * 2)  # well past one lease: the holder's renewals keep it
            assert other.claim(["a#0", "b#0"], "batch") == []
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            deadline = time.monotonic() + lease_s + 30
            taken: list[str] = []
            while not taken and time.monotonic() < deadline:
                time.sleep(lease_s / 5)
                taken = other.claim(["a#0", "b#0"], "batch")
            assert taken == ["a#0", "b#0"]
    finally:
        holder.kill()
        holder.wait()


def test_lease_s_must_be_a_positive_number(tmp_path: Path) -> None:
    for bad in (0, -1, "30", True):
        with pytest.raises(ValueError, match=rf"lease_s={bad!r} is not a number of seconds > 0"):
            ResultStore(tmp_path / "run.sqlite", lease_s=bad)  # type: ignore[arg-type]


# --- several processes, one file -----------------------------------------------------------

_WRITE = (
    "import sys\nfrom model_registry.store import ResultStore\n"
    "from tests.fixtures.store_writer import record\n"
    "with ResultStore(sys.argv[1]) as store:\n"
    "    for i in range(300):\n"
    "        store.put_result(f'{sys.argv[2]}-{i}#0', i, record(i))\n"
    "        if i % 50 == 0:\n            store.flush()\n"
)


def test_processes_that_open_one_new_store_at_once_all_write_to_it(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    writers = [_python(_WRITE, path, f"w{n}") for n in range(4)]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    with ResultStore(path, readonly=True) as store:
        assert store.summary().results == 1200


# --- read-only -----------------------------------------------------------------------------


def test_a_readonly_store_reads_and_refuses_writes_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as store:
        store.put_result("a#0", 0, record(0))
    with ResultStore(path, readonly=True) as reader:
        assert list(reader.lookup(["a#0"])) == ["a#0"]
        assert reader.summary().results == 1
        for write in (
            lambda: reader.put_result("b#0", 1, record(1)),
            lambda: reader.put_error("b#0", 1, "APIError", "boom", 500),
            lambda: reader.claim(["b#0"], "batch"),
        ):
            with pytest.raises(ResultStoreError, match=r"opened with readonly=True.*without"):
                write()


def test_a_readonly_store_never_makes_a_file(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with pytest.raises(ResultStoreError, match="readonly=True opens an existing store only"):
        ResultStore(path, readonly=True)
    path.touch()
    with pytest.raises(ResultStoreError, match="is empty: there is no result store to read yet"):
        ResultStore(path, readonly=True)
    assert [p.name for p in tmp_path.iterdir()] == ["run.sqlite"]
    assert path.read_bytes() == b""


def test_a_readonly_store_reading_all_along_never_blocks_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    ResultStore(path).close()
    stop, reads = threading.Event(), []
    with ResultStore(path, readonly=True) as reader:

        def read() -> None:
            while not stop.is_set():
                reads.append(reader.summary().results)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            with ResultStore(path) as writer:
                for i in range(2_000):
                    writer.put_result(f"k{i}#0", i, record(i))
                    if i % 100 == 0:
                        writer.flush()
        finally:
            stop.set()
            thread.join()
        assert reader.summary().results == 2_000
    assert len(reads) > 1 and reads == sorted(reads)


# --- batches sharing a store ---------------------------------------------------------------


def _share(
    path: Path, server: FakeOpenAIServer, model: str, n: int, lease_s: float = 30
) -> list[list[str]]:
    """Two batches over the same `n` prompts at once, each with its own store of one file."""
    prompts = [f"prompt {i}" for i in range(n)]

    async def one() -> list[str]:
        client = get_client(f"openai:{model}", api_base=server.url, api_key="sk-fake")
        async with client:
            with ResultStore(path, lease_s=lease_s) as store:
                results = await client.generate_many(prompts, results_db=store, concurrency=8)
        return [g.text for g in results]

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(one(), one()))

    return asyncio.run(both())


def test_two_batches_on_two_stores_of_one_file_send_each_prompt_once(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path, model = tmp_path / "run.sqlite", "shared-in-process"
    server.configure(model, delay=0.05)
    for texts in _share(path, server, model, 200):
        assert texts == [f"echo: prompt {i}" for i in range(200)]
    assert server.stats(model).requests == 200
    assert _claims(path) == []


def test_with_a_short_lease_calls_longer_than_it_are_still_sent_once(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path, model = tmp_path / "run.sqlite", "shared-short-lease"
    server.configure(model, delay=2.5)  # each call lasts two leases: only renewals keep it
    for texts in _share(path, server, model, 40, lease_s=1.2):
        assert texts == [f"echo: prompt {i}" for i in range(40)]
    assert server.stats(model).requests == 40


def test_a_batch_on_a_readonly_store_is_refused_before_any_call(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path, model = tmp_path / "run.sqlite", "shared-readonly-batch"
    ResultStore(path).close()

    async def batch() -> None:
        client = get_client(f"openai:{model}", api_base=server.url, api_key="sk-fake")
        async with client:
            with ResultStore(path, readonly=True) as store:
                await client.generate_many(["a", "b"], results_db=store)

    with pytest.raises(ResultStoreError, match=r"opened with readonly=True"):
        asyncio.run(batch())
    assert server.stats(model).requests == 0


def _start(path: Path, server: FakeOpenAIServer, model: str, n: int, lease_s: float) -> list:
    args = (str(path), server.url, model, str(n), str(lease_s))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.shared_batch", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for run in runs:
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready", run.stderr and run.stderr.read()
    for run in runs:
        assert run.stdin is not None
        run.stdin.write("go\n")
        run.stdin.flush()
    return runs


def _finish(run: subprocess.Popen[str]) -> dict[str, int]:
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_four_processes_share_one_batch_and_finish_the_claims_of_one_killed_mid_run(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path, model, n = tmp_path / "run.sqlite", "shared-four", 2_000
    ResultStore(path).close()  # the watcher's store exists before the processes start
    runs = _start(path, server, model, n, lease_s=6)
    killed = runs[0]
    try:
        with ResultStore(path, readonly=True) as watcher:  # read-only, all through the run
            deadline = time.monotonic() + 300
            while watcher.summary().results < 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(killed.pid, signal.SIGKILL)
            killed.wait(timeout=30)
            in_flight = sum(pid == killed.pid for _, pid in _claims(path))
            finished = [_finish(run) for run in runs[1:]]
            assert watcher.summary().results == n
    finally:
        for run in runs:
            run.kill()
            run.wait()
    for done in finished:
        assert done["answers"] == n and done["wrong"] == 0
        assert 0 < done["from_store"] < n  # some of each came from the other processes
    assert n <= server.stats(model).requests <= n + in_flight
    assert _claims(path) == []
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM results WHERE ok = 1").fetchone() == (n,)
