"""The same run on a Ray cluster: a Ray Data processor and a driver that keeps every answer
in one store.

    ds = ds.map_batches(ModelProcessor, fn_constructor_kwargs={"name": NAME, "workers": 2},
                        concurrency=2, batch_size=16)
    results = model_registry.ray.run(NAME, prompts, results_db="run.sqlite", workers=2)

Each actor holds one client (`get_client`) and answers a batch with `generate_many`; the
declared rpm/tpm/concurrency are for the whole run, so each of `workers` actors enforces
1/workers of each. Ray is imported only by `run` and `build_processor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import model_registry
from model_registry import _ray_rows as rows
from model_registry.clients._remote import (
    BudgetKeeper,
    StoredRun,
    check_max_cost,
    check_prices,
    spent_calls,
    worker_spending,
)
from model_registry.clients.base import BaseClient
from model_registry.types import Generation

__all__ = ["DEFAULT_BATCH_SIZE", "ModelProcessor", "build_processor", "gpus_per_actor", "run"]

#: Prompts per Ray Data batch: answers done in an actor but not back at the driver are in
#: flight (a killed driver pays for them again), so batches stay small.
DEFAULT_BATCH_SIZE = 16
#: Batches an actor of `build_processor` works on at once (the batch size does not cap the
#: calls in flight; the declared concurrency does).
BATCHES_PER_ACTOR = 4


class ModelProcessor:
    """A Ray Data callable class: one client per actor, a batch of rows answered with
    `generate_many(..., return_exceptions=True)`; rows keep their columns and gain `id`,
    `text`, `finish_reason`, `usage`, `cost`, `error` (and `parsed` with a response_format)."""

    def __init__(
        self,
        name: str,
        *,
        workers: int = 1,
        _packed: bool = False,
        _budget: tuple[Any, float] | None = None,
        **kwargs: Any,
    ):
        self._packed = _packed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = model_registry.get_client(name, **rows.limits_share(name, kwargs, workers))
        # set in the call or in the alias file's defaults
        self._parsed = self._client.params.get("response_format") is not None
        #: The run's max_cost budget, held by the driver's BudgetKeeper actor.
        self._spending = None if _budget is None else _worker_spending(self._client, *_budget)

    def __call__(self, batch: Any) -> Any:
        import pyarrow

        table = rows.rows_of(batch)
        results = self._answer([_prompt_or_error(row) for row in table])
        if self._packed:  # the driver's rows: its index and the result, as bytes
            packed = zip(table, results, strict=True)
            return pyarrow.Table.from_pylist(
                [{"id": row["id"], "_result": rows.pack(result)} for row, result in packed]
            )
        out = []
        for row, result in zip(table, results, strict=True):
            record = model_registry.result_record(result, parsed=self._parsed)
            out.append({**row, "id": row.get("id"), **record})
        return pyarrow.Table.from_pylist(out)

    def _answer(self, prompts: list[Any]) -> list[Generation | BaseException]:
        """Every prompt's Generation or error (a row without a prompt: its error)."""
        todo = [i for i, p in enumerate(prompts) if not isinstance(p, BaseException)]
        coroutine = (
            self._client.generate_many(
                [prompts[i] for i in todo], return_exceptions=True, concurrency=max(1, len(todo))
            )
            if self._spending is None
            else spent_calls(self._client, self._spending, [prompts[i] for i in todo])
        )
        answers = asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        results: list[Any] = list(prompts)
        for i, answer in zip(todo, answers, strict=True):
            results[i] = answer
        return results

    def __del__(self) -> None:
        loop = getattr(self, "_loop", None)
        if loop is None or not loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)


def _worker_spending(client: BaseClient, keeper: Any, max_cost: float) -> Any:
    """This actor's side of the run's budget; the reservations an earlier life of this
    actor left open (Ray restarted it) are kept as spent."""
    import ray

    owner = ray.get_runtime_context().get_actor_id() or f"pid {os.getpid()}"
    ray.get(keeper.orphaned.remote(owner))
    return worker_spending(client, keeper, owner, max_cost)


def _prompt_or_error(row: dict[str, Any]) -> Any:
    try:
        return rows.prompt_of(row)
    except model_registry.InvalidParameterError as exc:
        return exc


def build_processor(
    name: str,
    *,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_gpus: float | None = None,
    **kwargs: Any,
) -> Callable[[Any], Any]:
    """The dataset-to-dataset function: `workers` actors of `ModelProcessor` over `name`
    (kwargs as `get_client`'s), `batch_size` rows a batch, `num_gpus` per actor (None: as
    `gpus_per_actor` says, for the cluster the dataset runs on)."""
    _check_workers(workers)

    def process(dataset: Any) -> Any:
        import ray
        from ray.data import ActorPoolStrategy

        gpus = _default_gpus(ray, name, kwargs) if num_gpus is None else num_gpus

        # several batches at once per actor, all on the actor's one event loop
        pool = ActorPoolStrategy(
            size=workers,
            max_tasks_in_flight_per_actor=BATCHES_PER_ACTOR,
            max_concurrent_calls_per_actor=BATCHES_PER_ACTOR,
            enable_true_multi_threading=True,
        )
        return dataset.map_batches(
            ModelProcessor,
            fn_constructor_kwargs={"name": name, "workers": workers, **kwargs},
            compute=pool,
            batch_size=batch_size,
            batch_format="pyarrow",
            num_gpus=gpus,
        )

    return process


def _check_workers(workers: Any) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise model_registry.InvalidParameterError(
            f"workers must be a whole number of Ray actors, 1 or more, got {workers!r}"
        )


def run(
    name: str,
    prompts: Sequence[Any],
    *,
    results_db: str | os.PathLike[str] | model_registry.ResultStore,
    workers: int | None = None,
    address: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_gpus: float | None = None,
    max_cost: float | None = None,
    **kwargs: Any,
) -> list[Generation | BaseException]:
    """Every prompt through `workers` Ray actors, results (Generations and exceptions) in
    input order, as `generate_many(..., return_exceptions=True)` gives them.

    Prompts whose answer is in `results_db` are not sent; each answer is written there as it
    comes back, so a killed run, run again, pays only for what was in flight; the prompts
    are the store's latest batch (its inputs in order, as generate_many's). `address`:
    None (the Ray of this process, or a new local one), "auto" or "ray://..." (a cluster).
    `max_cost` (USD) caps the run's spend as generate_many's does, in one budget for all.
    `workers` (None: 2 for a hosted name, one per engine's GPUs for a local one) and
    `num_gpus` per actor (None: `gpus_per_actor`'s) are read from the cluster.
    """
    prompts = list(_prompt_list(prompts))
    max_cost = check_max_cost(max_cost)
    ray = _ray(address)
    if workers is None:
        workers = _default_workers(ray, name, kwargs)
    _check_workers(workers)
    store, opened = _open_store(results_db)
    try:
        client = model_registry.get_client(name, **kwargs)
        keeper = StoredRun(client, prompts, {}, store)
        keeper.record_inputs()
        results: list[Any] = [None] * len(prompts)
        for index, generation in keeper.stored().items():
            results[index] = generation
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:
            process = build_processor(
                name,
                workers=workers,
                batch_size=batch_size,
                num_gpus=num_gpus,
                _packed=True,
                _budget=None if max_cost is None else _budget(ray, client, store, max_cost),
                **kwargs,
            )
            items = [{"id": i, "_prompt": pickle.dumps(prompts[i])} for i in todo]
            _collect(process(ray.data.from_items(items)), results, keeper)
    finally:
        if opened:
            store.close()
        else:
            store.flush()
    return results


def _budget(
    ray: Any, client: BaseClient, store: model_registry.ResultStore, max_cost: float
) -> tuple[Any, float]:
    """The run's budget, one actor (the store's recorded cost spent already), and its cap;
    InvalidParameterError for a local name or a name with no known price."""
    check_prices(client)
    spent = store.summary().cost or 0.0
    keeper = ray.remote(BudgetKeeper).options(num_cpus=0).remote(max_cost, spent)
    return keeper, max_cost


def _open_store(
    results_db: str | os.PathLike[str] | model_registry.ResultStore,
) -> tuple[model_registry.ResultStore, bool]:
    """The run's store and whether the run opened it (then it closes it)."""
    if isinstance(results_db, model_registry.ResultStore):
        return results_db, False
    return model_registry.ResultStore(results_db), True


def _collect(dataset: Any, results: list[Any], keeper: StoredRun) -> None:
    """Each answer into `results` and the store as its batch comes back."""
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.select(["id", "_result"]).to_pylist():
            index, result = row["id"], rows.unpack(row["_result"])
            results[index] = result
            keeper.keep(index, result)
        keeper.store.flush()


def _prompt_list(prompts: Any) -> Iterable[Any]:
    if isinstance(prompts, str | bytes):
        raise model_registry.InvalidParameterError(
            "model_registry.ray.run takes a list of prompts, got a single string: pass [prompt]"
        )
    return cast(Iterable[Any], prompts)


def _ray(address: str | None) -> Any:
    """Ray, joined to `address` (or the instance this process has, or a new local one)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise model_registry.BackendNotInstalledError(
            "model_registry.ray needs Ray Data: pip install 'model-registry-llm[ray]' "
            "(in a checkout: uv sync --extra ray)"
        ) from None
    if not ray.is_initialized():
        ray.init(address=address)
    return ray


def gpus_per_actor(name: str, **kwargs: Any) -> float | None:
    """The GPUs an actor of `name` asks Ray for (`map_batches(..., num_gpus=...)`): for a
    local name on a cluster with GPUs, its `tensor_parallel_size` times its
    `pipeline_parallel_size` (1 each by default); None (no GPU) otherwise. Ray must be
    initialised (it reads the cluster's resources)."""
    import ray

    return _gpus_for(name, kwargs, ray.cluster_resources().get("GPU", 0))


def _engine_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What `resolve` takes of a run's kwargs (not `limits`, not the driver's own)."""
    return {k: v for k, v in kwargs.items() if k != "limits" and not k.startswith("_")}


def _gpus_of_engine(name: str, kwargs: dict[str, Any]) -> int | None:
    """The GPUs one engine of `name` spans (None: a hosted name)."""
    resolution = model_registry.resolve(name, **_engine_kwargs(kwargs))
    if resolution.kind != "local":
        return None
    params = resolution.params
    tensor = int(params.get("tensor_parallel_size") or 1)
    return tensor * int(params.get("pipeline_parallel_size") or 1)


def _workers_for(name: str, kwargs: dict[str, Any], cluster_gpus: float) -> int:
    """2 for a hosted name; one per engine's GPUs on the cluster for a local one (1 or more)."""
    engine = _gpus_of_engine(name, kwargs)
    return 2 if engine is None else max(1, int(cluster_gpus) // engine)


def _gpus_for(name: str, kwargs: dict[str, Any], cluster_gpus: float) -> float | None:
    """GPUs per actor: the engine's for a local name on a cluster with GPUs, else None."""
    engine = _gpus_of_engine(name, kwargs)
    return None if engine is None or not cluster_gpus else float(engine)


def _default_workers(ray: Any, name: str, kwargs: dict[str, Any]) -> int:
    return _workers_for(name, kwargs, ray.cluster_resources().get("GPU", 0))


def _default_gpus(ray: Any, name: str, kwargs: dict[str, Any]) -> float | None:
    return _gpus_for(name, kwargs, ray.cluster_resources().get("GPU", 0))
