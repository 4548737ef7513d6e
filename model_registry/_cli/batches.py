"""`batches`: the provider batch jobs a result store holds, with their status at the
provider; `--cancel` cancels those still running."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import model_registry
from model_registry._cli.interrupts import run_async
from model_registry._cli.layout import columns, terminal_width
from model_registry._cli.output import echo_lines, fail, safe

__all__ = ["show_batches"]


def show_batches(db: Path, *, cancel: bool) -> None:
    """Print one row per job of `db` (id, name, requests, state in the store, status at the
    provider with its counts); with `cancel`, cancel the running ones first."""
    if not db.is_file():
        fail(f"{db} does not exist: give the results db of a batch run (RESULTS.jsonl.sqlite)")
    jobs = model_registry.batch_jobs(db)
    if not jobs:
        echo_lines([f"no batch jobs in {db}"])
        return
    statuses = run_async(_statuses(jobs, cancel))
    rows = [("job", "name", "requests", "submitted", "in store", "at provider")]
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
        shown = statuses.get(job.job_id or "", "-")
        rows.append(
            (
                job.job_id or "(not accepted)",
                safe(job.name),
                str(len(job.keys)),
                when,
                job.state,
                shown,
            )
        )
    lines = list(columns(rows, terminal_width()))
    if cancel:
        lines.append("cancelled the running jobs; the same run command collects what they finished")
    echo_lines(lines)


async def _statuses(jobs: list[model_registry.BatchJob], cancel: bool) -> dict[str, str]:
    """Each job id -> its status at the provider, grouped by the name it was sent for."""
    shown: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for job in jobs:
        if job.job_id is not None and job.state != "collected":
            by_name.setdefault(job.name, []).append(job.job_id)
    for name, ids in by_name.items():
        async with model_registry.get_client(name) as client:
            for status in await client.batch_status(ids, cancel=cancel):
                shown[status.job_id] = _status_text(status)
    return shown


def _status_text(status: Any) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in status.counts.items())
    return f"{status.status}" + (f" ({counts})" if counts else "")
