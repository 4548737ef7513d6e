"""Rows in and out of `model_registry.ray`'s processor, results packed for the driver, and
each worker's share of the declared limits. Imports nothing of Ray."""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

import model_registry
from model_registry.errors import InvalidParameterError

__all__ = ["limits_share", "pack", "prompt_of", "rows_of", "unpack"]

#: The columns a processor adds to each row (`parsed` too when response_format is set).
RESULT_COLUMNS = ("id", "text", "finish_reason", "usage", "cost", "error")


def rows_of(batch: Any) -> list[dict[str, Any]]:
    """A Ray Data batch (a pyarrow Table, a pandas DataFrame or a dict of columns) as rows."""
    if hasattr(batch, "to_pylist"):
        rows: list[dict[str, Any]] = batch.to_pylist()
        return rows
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        batch = {column: batch[column].tolist() for column in batch.columns}
    columns = {key: [_plain(v) for v in values] for key, values in batch.items()}
    count = len(next(iter(columns.values()), []))
    return [{key: values[i] for key, values in columns.items()} for i in range(count)]


def _plain(value: Any) -> Any:
    """A numpy value (array, scalar) as plain Python data."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def prompt_of(row: Mapping[str, Any]) -> Any:
    """The row's prompt: its `prompt` (a string) or its `messages` (chat messages); the
    driver's rows carry it pickled (`_prompt`), whatever its shape."""
    if row.get("_prompt") is not None:
        return pickle.loads(row["_prompt"])
    messages = row.get("messages")
    if messages is not None:
        return list(messages)
    prompt = row.get("prompt")
    if prompt is None:
        raise InvalidParameterError(
            f"a row for model_registry.ray has neither 'prompt' nor 'messages' (its columns: "
            f"{', '.join(sorted(row))}): give each row a 'prompt' string or 'messages' list"
        )
    return prompt


def pack(result: Any) -> bytes:
    """A Generation or an exception as bytes for the driver (an exception by class, args and
    attributes: the library's errors take keyword-only arguments, which pickle cannot call)."""
    if isinstance(result, BaseException):
        state = {k: v for k, v in vars(result).items() if _picklable(v)}
        return pickle.dumps(("error", type(result), result.args, state))
    return pickle.dumps(("result", result))


def unpack(data: bytes) -> Any:
    """What `pack` packed."""
    packed = pickle.loads(data)
    if packed[0] == "result":
        return packed[1]
    _, cls, args, state = packed
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def limits_share(name: str, kwargs: dict[str, Any], workers: int) -> dict[str, Any]:
    """`kwargs` with `limits=` set to one worker's share (1/workers) of each limit declared for
    `name` (its provider's, its own) and of the caller's own `limits=`."""
    if workers == 1:
        return kwargs
    own = kwargs.get("limits")
    rest = {k: v for k, v in kwargs.items() if k != "limits"}
    declared = model_registry.limits_in_force(model_registry.resolve(name, **rest))
    tables: list[Mapping[str, Any]] = list(declared.values())
    if own is not None:
        tables.append(own if isinstance(own, Mapping) else _as_table(own))
    share: dict[str, Any] = {}
    for key in ("rpm", "tpm", "concurrency"):
        values = [t[key] for t in tables if t.get(key) is not None]
        if values:
            whole = min(values)
            share[key] = (
                max(1, math.floor(whole / workers)) if key == "concurrency" else whole / workers
            )
    return {**rest, "limits": share} if share else rest


def _as_table(limits: Any) -> dict[str, Any]:
    return {key: getattr(limits, key) for key in ("rpm", "tpm", "concurrency")}
