"""`run`: every prompt of a JSONL file through one model, each answer kept in a result store
as it arrives (a rerun resumes), the results written whole at the end, and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer

import model_registry
from model_registry._cli.output import (
    EXIT_INTERRUPTED,
    echo_lines_err,
    fail,
    print_traceback,
    printable_answer,
    safe,
    scrubber,
    state,
)
from model_registry._cli.run_input import read_run_input

#: Where the library's store errors say "results_db", the CLI user's word for it.
_RESULTS_DB_HINT = "(model-registry run: use --results-db PATH)"


def run_prompts_file(
    name: str,
    kwargs: dict[str, Any],
    prompts_file: Path,
    *,
    out: Path,
    results_db: Path | None,
    concurrency: int | None,
) -> None:
    """Send every prompt of `prompts_file` to `name`, keeping each answer in the store, then
    write `out` and a summary; exit 1 when a prompt failed, 130 on Ctrl-C."""
    state.call = (name, kwargs)
    db = results_db if results_db is not None else out.with_name(out.name + ".sqlite")
    _check_run_paths(prompts_file, out, db)
    run_input = read_run_input(prompts_file)
    model_registry.resolve(name, **kwargs)  # an unknown name fails before the store is made
    with _results_db_hint():
        store = model_registry.ResultStore(db)
    tally = _Tally(len(run_input.prompts))
    started = time.monotonic()
    try:
        with _results_db_hint(), warnings.catch_warnings():
            # LiteLLM's coroutines cancelled by Ctrl-C before they ran: nothing to report
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            batch = _run_prompts(name, kwargs, run_input.prompts, store, concurrency, tally)
            results = asyncio.run(batch)
    except KeyboardInterrupt:
        _interrupted(tally, time.monotonic() - started, db, out)
    finally:
        store.close()
    _write_results(out, run_input.ids, results)
    echo_lines_err([*_run_summary(tally, time.monotonic() - started), f"wrote {out} (store: {db})"])
    if tally.failed:
        noun = "prompt" if tally.prompts == 1 else "prompts"
        fail(
            f"{tally.failed} of {tally.prompts} {noun} failed; their lines in {out} have "
            '"error"; run the same command again to retry them'
        )


@contextmanager
def _results_db_hint() -> Iterator[None]:
    """A store error that tells to pass another `results_db` gets the CLI's option name."""
    try:
        yield
    except model_registry.ResultStoreError as exc:
        if "results_db" not in str(exc):
            raise
        if state.debug:
            print_traceback(exc, chain=False)
        fail(f"{exc}\n{_RESULTS_DB_HINT}")


def _interrupted(tally: _Tally, seconds: float, db: Path, out: Path) -> NoReturn:
    echo_lines_err(["", "cancelled", *_run_summary(tally, seconds)])
    typer.echo(
        safe(
            f"the finished answers are kept in {db}; run the same command again to finish "
            f"({out} was not written)"
        ),
        err=True,
    )
    raise typer.Exit(EXIT_INTERRUPTED) from None


def _check_run_paths(prompts_file: Path, out: Path, results_db: Path) -> None:
    """Refuse, before any call, outputs that would overwrite the input or the store, or that
    cannot be written."""
    for other, what in ((prompts_file, "the prompts file"), (results_db, "the results db")):
        if out.resolve() == other.resolve():
            raise typer.BadParameter(
                f"{out} is {what}; give the results another file name", param_hint="'--out'"
            )
    if out.is_dir():
        fail(f"cannot write the results to {out}: it is a folder; give a file name to --out")
    folder = out.parent
    if not folder.is_dir():
        fail(f"cannot write the results to {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        fail(f"cannot write the results to {out}: the folder {folder} is not writable")


# --- the batch ----------------------------------------------------------------------------


@dataclass
class _Tally:
    """What a run did so far: for the progress bar, the summary and an interrupted run."""

    prompts: int
    called: int = 0
    from_store: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    paid: float | None = None  # the cost of this run's own calls

    @property
    def done(self) -> int:
        return self.called + self.from_store

    def add(self, result: object) -> None:
        if isinstance(result, BaseException):
            self.called += 1
            self.failed += 1
            return
        generation = result
        if getattr(generation, "from_store", False):
            self.from_store += 1
        else:
            self.called += 1
        usage = getattr(generation, "usage", None)
        self.prompt_tokens += getattr(usage, "prompt_tokens", None) or 0
        self.completion_tokens += getattr(usage, "completion_tokens", None) or 0
        cost = getattr(generation, "cost", None)
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
            if not generation.from_store:  # type: ignore[attr-defined]
                self.paid = (self.paid or 0.0) + cost


def _money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"


class _RunProgress:
    """A rich progress bar on stderr (only when stderr is a terminal): done, failed, cost."""

    def __init__(self, name: str, tally: _Tally) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        self._tally = tally
        self._progress: Any = None
        if not console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed  cost {task.fields[cost]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(safe(name), total=tally.prompts, failed=0, cost="-")
        self._progress.start()

    def update(self) -> None:
        if self._progress is not None:
            tally = self._tally
            cost = _money(tally.cost) if tally.cost is not None else "-"
            self._progress.update(self._task, completed=tally.done, failed=tally.failed, cost=cost)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


async def _run_prompts(
    name: str,
    kwargs: dict[str, Any],
    prompts: list[Any],
    store: model_registry.ResultStore,
    concurrency: int | None,
    tally: _Tally,
) -> list[Any]:
    """Every prompt's Generation or error, in input order; each result is counted in `tally`
    as it completes (and kept in `store` by the library)."""
    results: list[Any] = [None] * len(prompts)
    bar = _RunProgress(name, tally)
    client = model_registry.get_client(name, **kwargs)
    try:
        # closed here, so its calls stop at once when this one stops
        batch = client.iter_many(
            prompts, concurrency=concurrency, return_exceptions=True, results_db=store
        )
        async with contextlib.aclosing(batch) as completed:
            async for index, result in completed:
                results[index] = result
                tally.add(result)
                bar.update()
    finally:
        bar.close()
        await client.aclose()
    return results


def _run_summary(tally: _Tally, seconds: float) -> Iterator[str]:
    done = f"{tally.done} of " if tally.done < tally.prompts else ""
    yield (
        f"{done}{tally.prompts} prompts in {seconds:.1f} s: {tally.called} calls made, "
        f"{tally.from_store} from the store, {tally.failed} failed"
    )
    paid_cost = 0.0 if tally.called == 0 else tally.paid
    paid = f" (this run's calls: {_money(paid_cost)})" if tally.from_store else ""
    yield (
        f"tokens: {tally.prompt_tokens} prompt + {tally.completion_tokens} completion; "
        f"cost: {_money(tally.cost)}{paid}"
    )


# --- the output file ------------------------------------------------------------------------


def _write_results(out: Path, ids: list[Any], results: list[Any]) -> None:
    if any(result is None for result in results):  # pragma: no cover - a library bug
        raise RuntimeError("the batch ended without a result for every prompt")
    scrub = scrubber()
    lines = (
        _output_line(output_id, result, scrub)
        for output_id, result in zip(ids, results, strict=True)
    )
    try:
        _write_atomically(out, lines)
    except OSError as exc:
        fail(f"cannot write the results to {out}: {exc.strerror or exc}")


def _output_line(output_id: Any, result: Any, scrub: Callable[[str], str]) -> str:
    """One output line: the result of one prompt as a JSON object (`error` null on success)."""
    record: dict[str, Any] = {"id": output_id}
    if isinstance(result, BaseException):
        status = getattr(result, "status_code", None)
        record |= {"text": None, "finish_reason": None, "usage": None, "cost": None}
        record["error"] = {
            "class": type(result).__name__,
            "message": scrub(str(result)),
            "status_code": status if isinstance(status, int) else None,
        }
    else:
        usage = result.usage
        cost = result.cost
        record |= {
            "text": printable_answer(result.text),
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "cost": cost if cost is None or math.isfinite(cost) else None,
            "error": None,
        }
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
