"""`run --batch-api`: what is particular to a run through a provider's batch API (its jobs'
own counts in the progress; submit without waiting; what Ctrl-C leaves at the provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

import model_registry
from model_registry._cli.interrupts import run_async
from model_registry._cli.output import echo_lines_err
from model_registry._cli.progress import RunProgress
from model_registry._cli.run_input import RunInput, record_ids

__all__ = ["batch_jobs_left", "batch_options", "submit_only"]


def batch_options(progress: RunProgress) -> dict[str, Any]:
    """`iter_many`'s kwargs of a `--batch-api` run: its jobs' own counts go to `progress`."""
    return {"batch_api": True, "on_batch_status": JobCounts(progress)}


class JobCounts:
    """Each job's status and counts as the provider reports them at each poll, shown by the
    run's progress when they change: the running jobs (`job ID STATUS (COUNTS)`), else the
    last one polled, and how many of the jobs have ended."""

    def __init__(self, progress: RunProgress) -> None:
        self.progress = progress
        self.shown: dict[str, str] = {}
        self.ended: set[str] = set()

    def __call__(self, status: Any) -> None:
        text = str(status)
        if self.shown.get(status.job_id) == text:
            return
        self.shown[status.job_id] = text
        if status.done:
            self.ended.add(status.job_id)
        running = [shown for job, shown in self.shown.items() if job not in self.ended]
        parts = running[:3] or [text]
        if len(self.shown) > 1:
            parts.append(f"{len(self.ended)} of {len(self.shown)} jobs ended")
        self.progress.note("; ".join(parts))


def submit_only(
    name: str,
    kwargs: dict[str, Any],
    whole: RunInput,
    store: model_registry.ResultStore,
    max_cost: float | None = None,
) -> NoReturn:
    """`--no-wait`: submit what is neither stored nor pending (and fits `max_cost`), keep the
    inputs and their ids as the store's latest batch (`results` shows them unanswered until
    the collecting run), say how to collect, exit 0 (3 when `max_cost` left prompts out)."""

    async def submit() -> Any:
        async with model_registry.get_client(name, **kwargs) as client:
            return await client.submit_batch(whole.prompts, results_db=store, max_cost=max_cost)

    try:
        done = run_async(submit())
        record_ids(store, whole.ids)
    finally:
        store.close()
    jobs = ", ".join(done.job_ids) or "none"
    echo_lines_err(
        [
            f"{done.submitted} prompts submitted, {done.pending} already in a pending job, "
            f"{done.stored} answered in the store; batch jobs: {jobs}",
            "collect the answers with the same command without --no-wait (it waits for the "
            f"jobs); list or cancel them with: model-registry batches {store.path} [--cancel]",
        ]
    )
    if done.not_sent:
        echo_lines_err(
            [
                f"{done.not_sent} prompts not sent: their requests could have passed --max-cost "
                f"${max_cost:.6f}; run the same command with a higher --max-cost to send them"
            ]
        )
        raise typer.Exit(3)
    raise typer.Exit(0)


def batch_jobs_left(db: Path) -> list[str]:
    """What Ctrl-C leaves at the provider, and how to collect or cancel it."""
    return [
        "the batch jobs keep running at the provider: the same command collects their "
        f"answers (no job is submitted twice); cancel them with: model-registry batches {db} "
        "--cancel"
    ]
