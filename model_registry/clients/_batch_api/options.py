"""The batch-API options of `generate_many`/`iter_many` (`batch_api`, `batch_size`,
`on_batch_status`), checked before anything is sent, and what `submit_batch` returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from model_registry.errors import InvalidParameterError

__all__ = ["BatchSubmission", "batch_options"]


class BatchSubmission(msgspec.Struct, frozen=True):
    """What `submit_batch` did: the provider's ids of the jobs now running for the prompts
    (new and earlier ones), and how many prompts were submitted now, were already in a
    pending job, had a stored answer, or were not sent because they did not fit `max_cost`."""

    job_ids: list[str]
    submitted: int
    pending: int
    stored: int
    not_sent: int = 0


def batch_options(
    kwargs: dict[str, Any], results_db: Any, caller: str
) -> tuple[bool, int | None, Callable[[Any], object] | None]:
    """Take `batch_api`, `batch_size` and `on_batch_status` out of a batch's kwargs, checked."""
    batch_api = kwargs.pop("batch_api", False)
    batch_size = kwargs.pop("batch_size", None)
    on_status = kwargs.pop("on_batch_status", None)
    if on_status is not None and not callable(on_status):
        raise InvalidParameterError(
            f"on_batch_status of {caller} must be a function of one job status (job_id, "
            f"status, done, counts), got {on_status!r}"
        )
    if on_status is not None and not batch_api:
        raise InvalidParameterError(
            f"on_batch_status of {caller} reports the provider's batch jobs: pass "
            "batch_api=True too"
        )
    if not isinstance(batch_api, bool):
        raise InvalidParameterError(
            f"batch_api of {caller} must be True or False, got {batch_api!r}"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InvalidParameterError(
            f"batch_size of {caller} must be a whole number of requests per job, 1 or more, "
            f"got {batch_size!r}"
        )
    if batch_size is not None and not batch_api:
        raise InvalidParameterError(
            f"batch_size of {caller} sizes the provider's batch jobs: pass batch_api=True too"
        )
    if batch_api and results_db is None:
        raise InvalidParameterError(
            f"batch_api=True in {caller} needs results_db (e.g. results_db='run.sqlite'): a "
            "batch job can take up to 24 hours, and the store is where its id is kept, so "
            "that a crash or Ctrl-C does not lose it (nothing was sent)"
        )
    return batch_api, batch_size, on_status
