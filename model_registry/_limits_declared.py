"""Declared limits (`[limits."NAME"]`, `get_client(limits=)`): their fields, their checks,
and the part of them the limiters count (see `limits`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from model_registry.errors import InvalidParameterError

__all__ = [
    "LIMIT_KEYS",
    "UNREACHABLE_RPM",
    "UNREACHABLE_TPM",
    "Limits",
    "counted",
    "limit_problems",
    "validate_limits",
]

LIMIT_KEYS = ("rpm", "tpm", "concurrency")

#: Rates no process reaches (a million requests, ten billion tokens a second): a bucket
#: of such a rate never holds a request back, so it is not kept (see `Limiter.counted`).
UNREACHABLE_RPM = 6e7
UNREACHABLE_TPM = 6e11


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Declared limits: requests started per minute, tokens per minute, calls in flight."""

    rpm: float | None = None
    tpm: float | None = None
    concurrency: int | None = None


# -- validation ---------------------------------------------------------------------------

_UNITS = {
    "rpm": "requests started per minute, e.g. rpm = 600",
    "tpm": "tokens per minute (prompt + completion), e.g. tpm = 200000",
    "concurrency": "calls in flight, e.g. concurrency = 8",
}


def limit_problems(value: object) -> list[tuple[str | None, str]]:
    """Every problem in a limits table, as (key or None, message naming the key and the fix)."""
    if not isinstance(value, Mapping):
        return [
            (None, f"limits must be a table of {', '.join(LIMIT_KEYS)}, got {type(value).__name__}")
        ]
    problems: list[tuple[str | None, str]] = []
    for key, item in value.items():
        if key not in LIMIT_KEYS:
            problems.append((str(key), _unknown_key(key)))
        elif item is not None and (message := _value_problem(key, item)):
            problems.append((key, message))
    return problems


def validate_limits(value: Mapping[str, object] | Limits, where: str) -> Limits:
    """A checked `Limits`; InvalidParameterError (a ValueError) names `where`, each key, the fix."""
    if isinstance(value, Limits):
        value = msgspec.structs.asdict(value)
    problems = limit_problems(value)
    if problems:
        raise InvalidParameterError("; ".join(f"{where}: {message}" for _, message in problems))
    rpm, tpm, concurrency = (value.get(key) for key in LIMIT_KEYS)
    return Limits(
        rpm=None if rpm is None else float(rpm),  # type: ignore[arg-type]
        tpm=None if tpm is None else float(tpm),  # type: ignore[arg-type]
        concurrency=concurrency,  # type: ignore[arg-type]
    )


def _unknown_key(key: object) -> str:
    import difflib  # here: loaded by a mistake, not at import

    close = difflib.get_close_matches(str(key), LIMIT_KEYS, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key {str(key)!r}{hint}; the keys are {', '.join(LIMIT_KEYS)}"


def _value_problem(key: str, item: object) -> str | None:
    if key == "concurrency":
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            return f"'concurrency' must be a whole number >= 1 ({_UNITS[key]}), got {item!r}"
        return None
    if isinstance(item, bool) or not isinstance(item, int | float):
        return f"{key!r} must be a number ({_UNITS[key]}), got {type(item).__name__} {item!r}"
    if not math.isfinite(item) or item <= 0:
        return f"{key!r} must be a positive finite number ({_UNITS[key]}), got {item!r}"
    return None


def counted(limits: Limits) -> Limits:
    """`limits` without an `rpm` or `tpm` at or above the unreachable rates."""
    rpm, tpm = limits.rpm, limits.tpm
    if (rpm is None or rpm < UNREACHABLE_RPM) and (tpm is None or tpm < UNREACHABLE_TPM):
        return limits
    return Limits(
        rpm=None if rpm is None or rpm >= UNREACHABLE_RPM else rpm,
        tpm=None if tpm is None or tpm >= UNREACHABLE_TPM else tpm,
        concurrency=limits.concurrency,
    )
