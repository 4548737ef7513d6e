"""Misspelt hosted kwargs: a name one or two edits from a known parameter, not itself known.

Known: LiteLLM's parameter names (generated into `_litellm_providers`) and our own kwargs.
A name near nothing known (`top_k`, `safety_settings`) is a provider's own and passes.
"""

from __future__ import annotations

from functools import lru_cache

from model_registry._litellm_providers import LITELLM_PARAMS

__all__ = ["OUR_KWARGS", "edit_distance", "kwarg_typo_warning", "near_kwarg"]

#: Kwargs of ours that are no LiteLLM parameter (they never reach the provider as written).
OUR_KWARGS = frozenset(
    {
        "api_base",
        "api_key",
        "concurrency",
        "extra_body",
        "extra_headers",
        "fallbacks",
        "limits",
        "progress",
        "reasoning_effort",
        "response_format",
        "results_db",
        "return_exceptions",
        "strict",
        "timeout",
    }
)
#: Providers' own sampling parameters that LiteLLM passes through without naming them.
_PROVIDER_PARAMS = frozenset({"top_a", "min_p", "typical_p", "repetition_penalty", "random_seed"})
_KNOWN = LITELLM_PARAMS | OUR_KWARGS | _PROVIDER_PARAMS
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
