"""What resolution makes of names that look like a slip: a provider misspelt or in the wrong
case, a hosted id under an organisation's name, a bare id of a provider without a heuristic.

Used by `resolve`; the data (organisations, families) is in `_weight_orgs`.
"""

from __future__ import annotations

from functools import lru_cache

from model_registry._kwarg_names import edit_distance
from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry._model_list import model_list
from model_registry._weight_orgs import (
    BARE_FAMILIES,
    FIRST_PARTY_PROVIDERS,
    OPEN_WEIGHT_FAMILIES,
    PUBLISHING_PROVIDERS,
    WEIGHT_ORGS,
)
from model_registry.aliases import Registry

__all__ = [
    "bare_family",
    "hosted_under_org",
    "listed_owners",
    "looks_like_org",
    "provider_in_other_case",
    "provider_near_miss",
    "publishes_weights",
]

_MIN_NEAR = 4  # a provider name this long or longer is near a segment one edit away
# Model ids of these providers are the user's own deployments: a bare id they list is
# no evidence of where a user means to send it.
_DEPLOYMENTS = frozenset({"azure", "azure_ai", "azure_text", "databricks", "sagemaker"})


def _normal(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _providers(registry: Registry) -> list[str]:
    """The hosted providers' names, ours and LiteLLM's."""
    ours = (name for name, spec in registry.providers.items() if spec.kind == "hosted")
    return sorted({*ours, *LITELLM_PROVIDERS})


def looks_like_org(head: str) -> bool:
    """True for a first segment that may be a Hugging Face organisation (not a path)."""
    return bool(head) and head not in (".", "..", "~") and head[0].isalnum()


def provider_in_other_case(registry: Registry, head: str) -> str | None:
    """The provider that `head` spells in another case (None for an organisation's name)."""
    if head in WEIGHT_ORGS or not looks_like_org(head):
        return None
    lowered = head.lower()
    return next((p for p in _providers(registry) if p.lower() == lowered and p != head), None)


def provider_near_miss(registry: Registry, head: str) -> str | None:
    """The provider `head` is a near miss of: the same name without case, "-" and "_", or
    one edit from a provider name of four letters or more (organisations excepted)."""
    if head in WEIGHT_ORGS or not looks_like_org(head):
        return None
    return _near_miss(head, tuple(_providers(registry)))


@lru_cache(maxsize=4096)
def _near_miss(head: str, providers: tuple[str, ...]) -> str | None:
    normal = _normal(head)
    same = [p for p in providers if _normal(p) == normal]
    if same:
        return same[0]
    near = [
        p
        for p in providers
        if len(_normal(p)) >= _MIN_NEAR and edit_distance(normal, _normal(p), 1) <= 1
    ]
    return near[0] if near else None


def hosted_under_org(tail: str) -> str | None:
    """The first-party provider LiteLLM lists `tail` under, when it is no open-weight model
    (`gemini-2.5-flash` -> gemini; `gemma-3-27b-it` -> None)."""
    lowered = tail.lower()
    if "/" in tail or lowered.startswith(OPEN_WEIGHT_FAMILIES):
        return None
    models = model_list()
    if models is None:
        return None
    return next((p for p in FIRST_PARTY_PROVIDERS if models.is_listed(p, tail)), None)


def bare_family(name: str) -> tuple[str, str] | None:
    """(prefix, provider) of a first-party family a bare id belongs to (`grok-3` -> xai)."""
    lowered = name.lower()
    return next(((f, p) for f, p in BARE_FAMILIES.items() if lowered.startswith(f)), None)


def listed_owners(registry: Registry, name: str) -> list[str]:
    """The providers whose chat or embedding models in LiteLLM's list include the bare id
    `name` (deployments of the user's own left out); of several, the one whose entry is
    keyed by the bare id itself, where there is one."""
    models = model_list()
    if models is None:
        return []
    known = {*registry.providers, *LITELLM_PROVIDERS} - _DEPLOYMENTS
    owners = sorted(p for p in models.providers_of(name) if p in known)
    keyed = models.keyed_bare(name)
    return [keyed] if len(owners) > 1 and keyed in owners else owners


def publishes_weights(head: str) -> bool:
    """True when a route's first segment is also an organisation publishing weights, so
    `head/...` may have been meant as a Hugging Face repo."""
    return head in WEIGHT_ORGS or head in PUBLISHING_PROVIDERS
