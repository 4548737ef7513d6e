"""`run`: every prompt of a JSONL file through one model, each answer kept in a result store
as it arrives (a rerun resumes), the results written whole at the end, and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

import model_registry
from model_registry._cli import interrupts
from model_registry._cli.interrupts import EXIT_INTERRUPTED, run_async
from model_registry._cli.output import (
    echo_lines_err,
    fail,
    print_traceback,
    state,
)
from model_registry._cli.progress import RunProgress, Tally, money
from model_registry._cli.run_batch import batch_jobs_left, batch_options, submit_only
from model_registry._cli.run_input import (
    RunInput,
    check_run_input,
    read_run_input,
    record_ids,
    run_input,
)
from model_registry._cli.run_output import write_output
from model_registry._cli.run_ray import RayOptions, run_on_ray
from model_registry._cli.run_story import RunStory

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
    max_cost: float | None = None,
    ray: RayOptions | None = None,
    batch_api: bool = False,
    no_wait: bool = False,
    log_json: Path | None = None,
) -> None:
    """Send every prompt of `prompts_file` to `name`, keeping each answer in the store, then
    write `out` and a summary; exit 1 when a prompt failed, 3 when `max_cost` left prompts
    unsent (3 wins), 130 on Ctrl-C. With `batch_api` the prompts go through the provider's
    batch API (`no_wait`: submitted, not waited for)."""
    state.call = (name, kwargs)
    _check_options(max_cost, ray, batch_api, no_wait)
    db = results_db if results_db is not None else out.with_name(out.name + ".sqlite")
    _check_run_paths(prompts_file, out, db)
    count = check_run_input(prompts_file)
    resolution = model_registry.resolve(name, **kwargs)  # an unknown name fails here
    with _results_db_hint():
        store = model_registry.ResultStore(db)
    report = _Report(Tally(count), store, out, max_cost)
    report.batch_api = batch_api
    # Ray and batch jobs take the prompts whole; a run of ours reads them as it goes.
    whole = read_run_input(prompts_file) if ray is not None or batch_api else None
    if no_wait and whole is not None:
        submit_only(name, kwargs, whole, store, max_cost)
    interrupts.set_last_words(report.interrupted)
    story = RunStory(log_json)  # what the events saw (run_story.py)
    results: list[Any] | None = None
    try:
        with _results_db_hint(), warnings.catch_warnings():
            # LiteLLM's coroutines cancelled by Ctrl-C before they ran: nothing to report
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            send = (resolution.kind, prompts_file, whole, store, concurrency, report)
            results = _send(name, kwargs, *send, ray)
    except KeyboardInterrupt:
        interrupts.report(report.interrupted)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except model_registry.ResultStoreError as exc:  # a write failed: a full disk
        report.stopped(exc)
    finally:
        story.close()
        with contextlib.suppress(model_registry.ResultStoreError):  # reported above
            store.close()
    interrupts.set_last_words(None)
    parsed = resolution.params.get("response_format") is not None
    write_output(out, db, whole, results, report, parsed)
    echo_lines_err([*report.summary(), *story.summary(), f"wrote {out} (store: {db})"])
    _exit_status(report, out)


def _send(
    name: str,
    kwargs: dict[str, Any],
    kind: str,
    prompts_file: Path,
    whole: RunInput | None,
    store: model_registry.ResultStore,
    concurrency: int | None,
    report: _Report,
    ray: RayOptions | None,
) -> list[Any] | None:
    """The run's results (None: the output is written from the store): through Ray (`whole`:
    the prompts read whole), or a batch here (through the batch API: read whole), which reads
    the prompts file as it goes; either records its inputs, and their ids, in the store."""
    if ray is not None and whole is not None:
        return run_on_ray(name, kwargs, whole, store, concurrency, report, ray)
    source = whole.prompts if whole is not None else _prompts(prompts_file)
    results = run_async(_run_prompts(name, kind, kwargs, source, store, concurrency, report))
    # the batch recorded its inputs in the store: its latest batch
    record_ids(store, whole.ids if whole is not None else _ids(prompts_file))
    return results


def _prompts(prompts_file: Path) -> Iterator[Any]:
    return (prompt for _, prompt in run_input(prompts_file))


def _ids(prompts_file: Path) -> Iterator[Any]:
    return (output_id for output_id, _ in run_input(prompts_file))


def _exit_status(report: _Report, out: Path) -> None:
    """Exit 3 when --max-cost left prompts unsent (3 wins), 1 when a prompt failed."""
    tally = report.tally
    noun = "prompt" if tally.prompts == 1 else "prompts"
    failed = (
        f"{tally.failed} of {tally.prompts} {noun} failed; their lines in {out} have "
        '"error"; run the same command again to retry them'
    )
    if report.not_sent:
        fail(f"{failed}\n{report.over_budget()}" if tally.failed else report.over_budget(), 3)
    if tally.failed:
        fail(failed)


def _check_options(
    max_cost: float | None, ray: RayOptions | None, batch_api: bool, no_wait: bool
) -> None:
    """Refuse, before anything is read or sent, options that do not go together."""
    if no_wait and not batch_api:
        raise typer.BadParameter("--no-wait goes with --batch-api", param_hint="'--no-wait'")
    if ray is not None and batch_api:
        fail("--batch-api and --ray do not go together: the provider's batch API needs no workers")


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


class _Report:
    """A run's summaries: at the end, on Ctrl-C (counted from the store, which holds every
    answer that finished) and when the store or the results file cannot be written."""

    def __init__(
        self, tally: Tally, store: model_registry.ResultStore, out: Path, max_cost: float | None
    ) -> None:
        self.tally, self.store, self.out = tally, store, out
        self.batch_api = False
        self.started = time.monotonic()
        self.before = store.summary()
        self.max_cost = max_cost
        #: Prompts not sent: their call could have passed max_cost (their indexes, and the
        #: error of the first, which each of their output lines shows).
        self.not_sent = 0
        self.unsent: set[int] = set()
        self.unsent_error: BaseException | None = None

    def summary(self) -> Iterator[str]:
        tally = self.tally
        seconds = time.monotonic() - self.started
        done = f"{tally.done} of " if tally.done < tally.prompts else ""
        yield (
            f"{done}{tally.prompts} prompts in {seconds:.1f} s: {tally.called} calls made, "
            f"{tally.from_store} from the store, {tally.failed} failed"
        )
        paid = f" (this run's calls: {money(tally.paid_by_calls())})" if tally.from_store else ""
        yield (
            f"tokens: {tally.prompt_tokens} prompt + {tally.completion_tokens} completion; "
            f"cost: {money(tally.cost)}{paid}"
        )
        if self.max_cost is not None:
            spent = (self.before.cost or 0.0) + (tally.paid_by_calls() or 0.0)
            yield (
                f"spent: {money(spent)} of --max-cost {money(self.max_cost)} (the store's "
                f"earlier answers included); {self.not_sent} prompts not sent"
            )

    def over_budget(self) -> str:
        """What exit 3 says: the cap stopped the run, and how to go on."""
        noun = "prompt was" if self.not_sent == 1 else "prompts were"
        return (
            f"{self.not_sent} {noun} not sent: their calls could have passed --max-cost "
            f"{money(self.max_cost)}; their lines in {self.out} have a BudgetExceededError; "
            "run the same command with a higher --max-cost to send them (answers kept in "
            f"{self.store.path} are not paid for again)"
        )

    def _stored_summary(self) -> Iterator[str]:
        """What this run did, from the store (the tally misses answers that came as it
        stopped)."""
        tally, before = self.tally, self.before
        try:
            after = self.store.summary()
        except model_registry.ResultStoreError:
            yield from self.summary()
            return
        new = after.results - before.results
        answered = min(tally.prompts, tally.from_store + new)
        yield (
            f"{answered} of {tally.prompts} prompts answered in "
            f"{time.monotonic() - self.started:.1f} s: {tally.from_store} from the store, "
            f"{new} by this run's calls, {tally.failed} failed"
        )
        cost = None if after.cost is None else after.cost - (before.cost or 0.0)
        yield (
            f"tokens of this run's calls: {after.prompt_tokens - before.prompt_tokens} prompt + "
            f"{after.completion_tokens - before.completion_tokens} completion; "
            f"cost: {money(0.0 if new == 0 else cost)}"
        )

    def interrupted(self) -> None:
        """Ctrl-C: what was done and paid, and that the same command finishes the run."""
        echo_lines_err(
            [
                "",
                "cancelled",
                *self._stored_summary(),
                f"the finished answers are kept in {self.store.path}; run the same command "
                f"again to finish ({self.out} was not written)",
                *(batch_jobs_left(self.store.path) if self.batch_api else ()),
            ]
        )

    def stopped(self, exc: model_registry.ResultStoreError) -> NoReturn:
        """The store could not be written (a full disk): what was done and kept, exit 1."""
        if state.debug:
            print_traceback(exc, chain=False)
        echo_lines_err(["stopped", *self.summary()])
        fail(
            f"{exc}\nthe answers committed before it are kept in {self.store.path}: the same "
            "command, run again once it can write there, does not pay for them again"
        )

    def unwritable(self, reason: str) -> NoReturn:
        """The results file could not be written: every answer is in the store, exit 1."""
        echo_lines_err(self.summary())
        db = self.store.path
        fail(
            f"cannot write the results to {self.out}: {reason}\nevery answer is kept in {db}: "
            f"run the same command with another --out and --results-db {db} to write them "
            "without paying again"
        )


async def _run_prompts(
    name: str,
    kind: str,
    kwargs: dict[str, Any],
    prompts: Iterable[Any],
    store: model_registry.ResultStore,
    concurrency: int | None,
    report: _Report,
) -> list[Any] | None:
    """Every prompt's Generation or error in input order, for prompts given as a list (else
    None: the output is written from the store); each result is counted in the report's
    tally as it completes (and kept in `store` by the library)."""
    results: list[Any] | None = [None] * report.tally.prompts if isinstance(prompts, list) else None
    tally = report.tally
    progress = RunProgress(name, kind, tally)
    ticker = asyncio.ensure_future(progress.tick())
    client = model_registry.get_client(name, **kwargs)
    try:
        # closed here, so its calls stop at once when this one stops
        batch = client.iter_many(
            prompts,
            concurrency=concurrency,
            return_exceptions=True,
            results_db=store,
            max_cost=report.max_cost,
            **(batch_options(progress) if report.batch_api else {}),
        )
        async with contextlib.aclosing(batch) as completed:
            async for index, result in completed:
                if results is not None:
                    results[index] = result
                if isinstance(result, model_registry.BudgetExceededError):
                    report.not_sent += 1  # no call: not in the tally
                    report.unsent.add(index)
                    report.unsent_error = report.unsent_error or result
                    continue
                tally.add(result)
                progress.update()
    finally:
        ticker.cancel()
        progress.close()
        await client.aclose()
    return results


# --- the output file ------------------------------------------------------------------------
