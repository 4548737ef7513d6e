"""The files of a result store: the WAL that holds its last commits, what may stand at its
path, and an import that loads no SQLite. Real files, real processes killed with SIGKILL."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_registry._store_values import local_model_key
from model_registry.store import ResultStore, ResultStoreError
from tests.fixtures.store_writer import record

REPO = Path(__file__).resolve().parent.parent


def _crashed_writer(path: Path, at_least: int = 3000) -> int:
    """Run the store writer at `path`, SIGKILL it once it reported `at_least` committed
    results; how many it reported."""
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.store_writer", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    committed, deadline = 0, time.monotonic() + 60
    while committed < at_least and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        committed = int(line)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert committed >= at_least, f"the writer did not report {at_least} results in 60 s"
    return committed


def _results_in_file_alone(path: Path, tmp_path: Path) -> int:
    """How many results the database file holds without the files beside it (a copy of the
    file alone, as a user who moves only it would have)."""
    alone = tmp_path / "alone" / path.name
    alone.parent.mkdir()
    shutil.copyfile(path, alone)
    db = sqlite3.connect(f"{alone.as_uri()}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM results WHERE ok = 1").fetchone()
    finally:
        db.close()
    return int(count)


# --- the WAL -------------------------------------------------------------------------------


def test_a_database_moved_without_its_wal_is_refused_and_the_wal_is_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    committed = _crashed_writer(path)
    wal, shm = tmp_path / "run.sqlite-wal", tmp_path / "run.sqlite-shm"
    assert wal.stat().st_size > 0  # the crash left the last commits there
    kept = wal.read_bytes()
    moved = tmp_path / "moved.sqlite"
    path.rename(moved)

    with pytest.raises(ResultStoreError) as caught:
        ResultStore(path)
    message = str(caught.value)
    assert f"'{wal}' and '{shm}' hold the last results" in message
    assert f"whose database '{path}' is missing" in message
    assert "move run.sqlite, run.sqlite-wal and run.sqlite-shm together" in message
    assert not path.exists()  # no new, empty store in its place
    assert wal.read_bytes() == kept
    with pytest.raises(ResultStoreError, match="is empty"):  # an empty file there: the same
        path.touch()
        ResultStore(path)
    assert wal.read_bytes() == kept

    moved.replace(path)  # put back beside its WAL: every committed result is there
    with ResultStore(path) as store:
        assert len(store.lookup(f"k{i}#0" for i in range(committed))) == committed


def test_a_store_opened_after_a_crash_moves_the_recovered_results_into_its_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    committed = _crashed_writer(path)
    with ResultStore(path) as store:
        # the database file alone now holds them, while the store is still open
        assert _results_in_file_alone(path, tmp_path) >= committed
        assert store.summary().results >= committed


_KILLED_IN_ITS_FIRST_TRANSACTION = """
import os, sqlite3, sys
from model_registry._store_open import APPLICATION_ID
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # pages reach the file before the commit
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE results (x)")
db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
db.executemany("INSERT INTO results VALUES (?)", [("y" * 200,)] * 2000)
os.kill(os.getpid(), 9)
"""


def test_a_store_whose_creator_was_killed_mid_transaction_opens_as_a_new_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    code = _KILLED_IN_ITS_FIRST_TRANSACTION
    killed = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert path.with_name("run.sqlite-journal").stat().st_size > 0  # a hot journal
    with pytest.raises(ResultStoreError, match="not readonly"):
        ResultStore(path, readonly=True)
    with ResultStore(path) as store:  # SQLite rolled the transaction back: a new store
        assert store.summary().results == 0
        store.put_result("k0#0", 0, record(0))
    with ResultStore(path, readonly=True) as store:
        assert store.summary().results == 1


def test_closing_a_store_puts_its_results_into_the_file_while_another_reader_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.sqlite"
    ResultStore(path).close()
    reader = sqlite3.connect(path)
    reader.execute("SELECT COUNT(*) FROM results").fetchone()
    try:  # the reader, idle, is open: SQLite's own checkpoint at the last close is not due
        with ResultStore(path) as store:
            for i in range(200):
                store.put_result(f"k{i}#0", i, record(i))
        assert _results_in_file_alone(path, tmp_path) == 200
    finally:
        reader.close()


def test_a_closed_store_leaves_no_wal_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ResultStore(path) as store:
        store.put_result("a#0", 0, record(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sqlite"]


# --- what stands at the path ---------------------------------------------------------------


def _names_beside(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir() if p.name.startswith(path.name)}


@pytest.mark.parametrize(
    ("make", "kind"),
    [(lambda p: p.mkdir(), "a directory"), (os.mkfifo, "a named pipe (FIFO)")],
    ids=["directory", "fifo"],
)
def test_a_directory_or_a_fifo_is_refused_naming_it_and_nothing_is_made_beside_it(
    tmp_path: Path, make: object, kind: str
) -> None:
    path = tmp_path / "results.sqlite"
    make(path)  # type: ignore[operator]
    # In another process: a FIFO opened as a file would block the test forever.
    code = (
        "import sys\nfrom model_registry.store import ResultStore, ResultStoreError\n"
        "try:\n    ResultStore(sys.argv[1]).close()\n"
        "except ResultStoreError as e:\n    print(e)\n    sys.exit(3)\n"
    )
    try:
        opened = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"opening a store at {kind} hung")
    assert opened.returncode == 3, opened.stderr
    assert f"results_db '{path}' is {kind}, not a file" in opened.stdout
    assert _names_beside(path) == {"results.sqlite"}


def test_dev_null_is_refused_and_no_file_is_made_beside_it() -> None:
    before = _names_beside(Path(os.devnull))
    with pytest.raises(ResultStoreError, match=r"results_db '/dev/null' is a character device"):
        ResultStore(os.devnull)
    assert _names_beside(Path(os.devnull)) == before


# --- import cost ---------------------------------------------------------------------------


def test_importing_the_package_does_not_import_sqlite3() -> None:
    code = (
        "import sys, model_registry, model_registry.store\n"
        "assert 'sqlite3' not in sys.modules, 'sqlite3 was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr


# --- a local model's key -------------------------------------------------------------------


def _model_dir(path: Path, weights: bytes) -> Path:
    """A model directory as vLLM reads one: config, weight index, weights, tokenizer, readme."""
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}')
    (path / "model.safetensors.index.json").write_text('{"weight_map": {"w": "model.safetensors"}}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}"}')
    (path / "README.md").write_text("# a model\n")
    return path


def _weights(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("size", [600_000, 20 << 20], ids=["small", "large"])
def test_a_model_directory_is_keyed_by_its_files_not_its_path_or_times(
    tmp_path: Path, size: int
) -> None:
    model = _model_dir(tmp_path / "model", _weights(size))
    key = local_model_key(str(model))
    assert key is not None and key.startswith("local-files:")

    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    for file in copy.iterdir():
        os.utime(file, (1, 1))  # other modification times: the same model
    (copy / "README.md").write_text("# notes on the copy\n")
    assert local_model_key(str(copy)) == key

    retrained = bytearray(_weights(size, seed=1))  # same size, other values
    (copy / "model.safetensors").write_bytes(bytes(retrained))
    assert local_model_key(str(copy)) not in (None, key)

    (copy / "model.safetensors").write_bytes(_weights(size))
    (copy / "config.json").write_text('{"model_type": "llama", "hidden_size": 128}')
    assert local_model_key(str(copy)) not in (None, key)

    shutil.copyfile(model / "config.json", copy / "config.json")
    (copy / "tokenizer_config.json").write_text('{"chat_template": "{{ other }}"}')
    assert local_model_key(str(copy)) not in (None, key)


def test_one_changed_value_in_small_weights_changes_the_key(tmp_path: Path) -> None:
    weights = bytearray(_weights(600_000))
    key = local_model_key(str(_model_dir(tmp_path / "a", bytes(weights))))
    weights[300_001] ^= 1
    assert local_model_key(str(_model_dir(tmp_path / "b", bytes(weights)))) != key


@pytest.mark.parametrize(
    "location", ["Qwen/Qwen3-4B-Instruct-2507", "/nowhere/model", "./no-such-model"]
)
def test_a_hub_id_or_a_path_not_readable_here_has_no_files_key(location: str) -> None:
    assert local_model_key(location) is None
