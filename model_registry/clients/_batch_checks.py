"""The checks of a batch's arguments, made before any await, and the note that names the
prompt an error of a batch came from."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from model_registry.errors import InvalidParameterError
from model_registry.store import ResultStore
from model_registry.types import Resolution

__all__ = [
    "batch_api_prompts",
    "check_concurrency",
    "check_results_db",
    "mark_index",
    "prompt_source",
    "refuse_local",
]


def prompt_source(prompts: Any, caller: str) -> tuple[Any, int | None]:
    """The prompts to read and their number: a sequence is copied (its length known), any
    other iterable or async iterable is read as the batch goes (its length unknown)."""
    if isinstance(prompts, str | bytes):
        raise InvalidParameterError(
            f"{caller} takes a list of prompts, got a single string: pass "
            "[prompt] (or call generate(prompt) for one prompt)"
        )
    if isinstance(prompts, Sequence):
        return list(prompts), len(prompts)
    if hasattr(prompts, "__aiter__") or hasattr(prompts, "__iter__"):
        return prompts, None
    raise InvalidParameterError(
        f"{caller} takes a list (or any iterable) of prompts, got {type(prompts).__name__}"
    )


def batch_api_prompts(prompts: Any, caller: str) -> list[Any]:
    """The prompts of a `batch_api=True` batch as a list (its jobs are built whole)."""
    if hasattr(prompts, "__aiter__"):
        raise InvalidParameterError(
            f"{caller} with batch_api=True takes a list or an iterable of prompts, not an "
            "async iterable: collect the prompts into a list first"
        )
    return list(prompts)


def check_concurrency(concurrency: Any) -> None:
    if concurrency is None:
        return
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidParameterError(
            f"concurrency must be a whole number of calls, 1 or more (or None for the "
            f"client's default), got {concurrency!r}"
        )


def refuse_local(names: Sequence[Resolution]) -> None:
    """max_cost prices hosted calls only: a local name in the chain is refused."""
    for name in names:
        if name.kind == "local":
            raise InvalidParameterError(
                f"max_cost caps what hosted calls cost; {name.name!r} is a local model "
                f"(provider {name.provider!r}), whose calls have no price: drop max_cost"
            )


def check_results_db(results_db: Any) -> None:
    if results_db is None or isinstance(results_db, str | os.PathLike | ResultStore):
        return
    raise InvalidParameterError(
        f"results_db must be a file path (str or os.PathLike) or a ResultStore, got "
        f"{type(results_db).__name__}"
    )


def mark_index(exc: BaseException, index: int, total: int | None, caller: str) -> None:
    """Name the prompt an error of a batch came from: `.index` and a note (`total` None:
    prompts given as an iterable, not counted ahead)."""
    with contextlib.suppress(AttributeError):  # a few built-in exceptions take no attributes
        exc.index = index  # type: ignore[attr-defined]
    given = "prompts" if total is None else f"the {total}"
    exc.add_note(f"(prompt {index} of {given} given to {caller})")
