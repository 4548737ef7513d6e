"""`run`'s output file: one JSON line per prompt in input order, written whole or not at
all, from the results of prompts read whole or, for a run that read its prompts as it went,
from the store."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import model_registry
from model_registry._cli.output import scrubber
from model_registry._cli.run_input import RunInput

__all__ = ["write_output"]


def write_output(
    out: Path,
    db: Path,
    whole: RunInput | None,
    results: list[Any] | None,
    report: Any,
    parsed: bool,
) -> None:
    """The results file: from the results of prompts read whole, else from the store.
    `report` is run's: its `unsent` indexes and `unsent_error`, and `unwritable`."""
    if whole is not None and results is not None:
        _write_results(out, whole.ids, results, report, parsed)
    else:
        _write_from_store(out, db, report, parsed)


def _write_results(
    out: Path, ids: list[Any], results: list[Any], report: Any, parsed: bool = False
) -> None:
    if any(result is None for result in results):  # pragma: no cover - a library bug
        raise RuntimeError("the batch ended without a result for every prompt")
    scrub = scrubber()
    lines = (
        _output_line(output_id, result, scrub, parsed)
        for output_id, result in zip(ids, results, strict=True)
    )
    try:
        _write_atomically(out, lines)
    except OSError as exc:  # a full disk, a folder made read-only during the run
        report.unwritable(exc.strerror or str(exc))


def _write_from_store(out: Path, db: Path, report: Any, parsed: bool) -> None:
    """Write the output from the store, in input order (this run's batch is its latest),
    the run's own line for each prompt it did not send."""
    scrub = scrubber()

    def line(request: Any) -> str:
        if request.index in report.unsent:
            return _output_line(request.id, report.unsent_error, scrub, parsed)
        record = request.record()
        if record["error"] is not None:
            record["error"]["message"] = scrub(record["error"]["message"])
        if parsed:  # the stored text is the answer that validated
            record["parsed"] = _parsed(record)
        return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"

    try:
        with model_registry.ResultStore(db) as store:
            _write_atomically(out, (line(request) for request in store))
    except OSError as exc:  # a full disk, a folder made read-only during the run
        report.unwritable(exc.strerror or str(exc))


def _parsed(record: dict[str, Any]) -> Any:
    """The parsed answer of a stored success: its JSON text decoded (None for an error)."""
    if record["error"] is not None or not record["text"]:
        return None
    try:
        return json.loads(record["text"])
    except ValueError:
        return None


def _output_line(
    output_id: Any, result: Any, scrub: Callable[[str], str], parsed: bool = False
) -> str:
    """One output line: the result of one prompt as a JSON object (`error` null on success;
    `parsed` when a response_format is set)."""
    record = {"id": output_id, **model_registry.result_record(result, scrub=scrub, parsed=parsed)}
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """Write `path` whole or not at all: a temporary file in the same folder, fsync'd, then
    renamed over it (a crash leaves the old file or none, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as file:
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
