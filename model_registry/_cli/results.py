"""`results`: what a result store holds, without SQL: its totals, its failed requests
(`--failed`), or its latest batch exported in `run`'s output format (`--export`)."""

from __future__ import annotations

from pathlib import Path

import model_registry
from model_registry._cli.output import echo_lines, fail, print_json, safe
from model_registry._cli.progress import money

__all__ = ["show_results"]


def show_results(db: Path, *, failed: bool, export: Path | None, as_json: bool) -> None:
    """Print `db`'s totals, or its failed requests, or export its latest batch to `export`."""
    if not db.is_file():
        fail(f"{db} does not exist: give the results db of a run (RESULTS.jsonl.sqlite)")
    if export is not None and export.resolve() == db.resolve():
        fail(f"{export} is the results db itself; give the export another file name")
    with model_registry.ResultStore(db, readonly=True) as store:  # never blocks a run
        if export is not None:
            _export(store, export, as_json)
        elif failed:
            _failed(store, as_json)
        else:
            _totals(store, as_json)


def _totals(store: model_registry.ResultStore, as_json: bool) -> None:
    totals = store.summary()
    if as_json:
        print_json(
            {
                "answered": totals.results,
                "failed": totals.failed,
                "prompt_tokens": totals.prompt_tokens,
                "completion_tokens": totals.completion_tokens,
                "cost": totals.cost,
            }
        )
        return
    echo_lines(
        [
            f"{totals.results} answered, {totals.failed} failed",
            f"tokens: {totals.prompt_tokens} prompt + {totals.completion_tokens} completion; "
            f"cost: {money(totals.cost)}",
        ]
    )


def _failed(store: model_registry.ResultStore, as_json: bool) -> None:
    failures = store.failed()
    if as_json:
        print_json(
            [
                {
                    "index": f.index,
                    "class": f.error_class,
                    "status_code": f.status_code,
                    "message": f.message,
                }
                for f in failures
            ]
        )
        return
    if not failures:
        echo_lines([f"no failed requests in {safe(store.path)}"])
        return
    echo_lines(
        f"{f.index}\t{safe(f.error_class)}\t{f.status_code if f.status_code is not None else '-'}"
        f"\t{safe(f.message)}"
        for f in failures
    )


def _export(store: model_registry.ResultStore, out: Path, as_json: bool) -> None:
    try:
        lines = store.export(out)
    except OSError as exc:
        fail(f"cannot write the export to {out}: {exc.strerror or exc}")
    if as_json:
        print_json({"exported": lines, "path": str(out)})
    else:
        echo_lines([f"wrote {lines} requests of the latest batch to {safe(out)}"])
