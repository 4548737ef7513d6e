"""Misspelt hosted kwargs: a name one or two edits from a known parameter, not itself known.

Known: LiteLLM's parameter names (generated into `_litellm_providers`), our own kwargs and
the local-only ones (refused by name, not as misspelt).
A name near nothing known (`top_k`, `safety_settings`) is a provider's own and passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from model_registry._litellm_providers import LITELLM_PARAMS
from model_registry._options import CALL_OPTIONS, LOCAL_ONLY, OWN_KWARGS
from model_registry.errors import InvalidParameterError

__all__ = ["OUR_KWARGS", "edit_distance", "kwarg_typo_warning", "kwarg_warnings", "near_kwarg"]

#: Kwargs of ours that are no LiteLLM parameter (they never reach the provider as written).
OUR_KWARGS = (
    frozenset(OWN_KWARGS)
    | CALL_OPTIONS
    | {"api_base", "api_key", "extra_body", "extra_headers", "reasoning_effort", "response_format"}
)
#: Providers' own sampling parameters that LiteLLM passes through without naming them.
_PROVIDER_PARAMS = frozenset({"top_a", "min_p", "typical_p", "repetition_penalty", "random_seed"})
_KNOWN = LITELLM_PARAMS | OUR_KWARGS | _PROVIDER_PARAMS | frozenset(LOCAL_ONLY)
_MAX_EDITS = 2
_MIN_LENGTH = 4  # shorter names are one or two edits from too many others ("n", "seed")


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of `a` and `b`, or `limit + 1` once it is known to exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        if min(current) > limit:
            return limit + 1
        previous = current
    return min(previous[-1], limit + 1)


@lru_cache(maxsize=4096)
def near_kwarg(key: str) -> str | None:
    """The known parameter `key` is a misspelling of (None when `key` is known or near none)."""
    if key in _KNOWN or len(key) < _MIN_LENGTH:
        return None
    scored = []
    for known in _KNOWN:
        if len(known) >= _MIN_LENGTH:
            distance = edit_distance(key.lower(), known.lower(), _MAX_EDITS)
            if distance <= _MAX_EDITS:
                scored.append((distance, known))
    return min(scored)[1] if scored else None


def kwarg_typo_warning(key: str, where: str = "") -> str | None:
    """A warning for a kwarg that looks like a misspelt known parameter, else None.

    `where` says whose kwarg it is ("alias 'x' defaults"); the text says how to send a
    provider's own parameter of that spelling anyway.
    """
    near = near_kwarg(key)
    if near is None:
        return None
    at = f" ({where})" if where else ""
    return (
        f"kwarg {key!r}{at} is not a known parameter; did you mean {near!r}? It is sent as "
        f"written; to send a provider's own parameter of that name, put it in extra_body"
    )


def kwarg_warnings(kwargs: Mapping[str, Any], strict: bool, where: str = "") -> tuple[str, ...]:
    """Warnings for hosted kwargs that look misspelt (`where`: whose they are, e.g. an
    alias's defaults); under `strict` the first one raises InvalidParameterError."""
    found = tuple(w for key in kwargs if (w := kwarg_typo_warning(key, where)) is not None)
    if found and strict:
        key = next(key for key in kwargs if near_kwarg(key) is not None)
        at = f" ({where})" if where else ""
        raise InvalidParameterError(
            f"kwarg {key!r}{at} is not a known parameter; did you mean {near_kwarg(key)!r}? "
            "Strict mode refuses a kwarg that looks misspelt: correct it, put a provider's "
            "own parameter of that name in extra_body, or pass strict=False"
        )
    return found
