"""`run --ray`: the same run through Ray actors (`model_registry.ray.run`), the store and
the results file as without Ray. Ray is imported here, inside the command, only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

import model_registry

if TYPE_CHECKING:  # progress imports asyncio, which 'list' and '--help' do not load
    from model_registry._cli.progress import Tally
    from model_registry._cli.run_input import RunInput

RayOption = Annotated[bool, typer.Option("--ray", help="Run through Ray actors (the 'ray' extra).")]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDRESS",
        help="With --ray: 'auto' or 'ray://HOST:PORT' joins a cluster (default: a local Ray).",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="With --ray: actors (default: 2 hosted, 1 per GPU local)."
    ),
]


class RunReport(Protocol):
    """What `run_on_ray` counts in: each call's result, and the prompts --max-cost left."""

    tally: Tally
    max_cost: float | None
    not_sent: int


@dataclass(frozen=True)
class RayOptions:
    """`--ray-address` (None: this process's Ray or a new local one) and `--workers`."""

    address: str | None
    workers: int | None


def ray_options(ray: bool, address: str | None, workers: int | None) -> RayOptions | None:
    """The Ray options of `run`, or None without `--ray` (then the others are a usage error)."""
    if ray:
        return RayOptions(address, workers)
    if address is not None or workers is not None:
        raise typer.BadParameter("--ray-address and --workers go with --ray", param_hint="'--ray'")
    return None


def run_on_ray(
    name: str,
    kwargs: dict[str, Any],
    whole: RunInput,
    store: model_registry.ResultStore,
    concurrency: int | None,
    report: RunReport,
    options: RayOptions,
) -> list[Any]:
    """Every prompt's Generation or error in input order, each kept in `store` as it comes
    back, the run's inputs and their ids too (the store's latest batch, as without Ray);
    `concurrency` is the whole run's, split across the workers like the limits, and
    `report.max_cost` the whole run's spend (a prompt it left unsent: BudgetExceededError)."""
    import model_registry.ray
    from model_registry._cli.run_input import record_ids

    if concurrency is not None:
        own = dict(kwargs.get("limits") or {})
        own["concurrency"] = min(concurrency, own.get("concurrency") or concurrency)
        kwargs = {**kwargs, "limits": own}
    results = model_registry.ray.run(
        name,
        whole.prompts,
        results_db=store,
        workers=options.workers,
        address=options.address,
        max_cost=report.max_cost,
        **kwargs,
    )
    record_ids(store, whole.ids)
    for result in results:
        if isinstance(result, model_registry.BudgetExceededError):
            report.not_sent += 1  # no call: not in the tally
        else:
            report.tally.add(result)
    return results
