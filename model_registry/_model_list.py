"""LiteLLM's bundled model list, read as data (never by importing LiteLLM).

LiteLLM ships `model_prices_and_context_window_backup.json` inside its package: every
model id it prices, with its `litellm_provider`. The typo guard reads it once per
process, lazily, and only for names that resolve by heuristic or route.
"""

from __future__ import annotations

import difflib
import importlib.util
import threading
from functools import cache
from pathlib import Path

import msgspec

__all__ = ["ModelList", "model_list"]

_FILE = "model_prices_and_context_window_backup.json"


class _Entry(msgspec.Struct):
    litellm_provider: str | None = None
    mode: str | None = None


# A bare id routes by the providers of its chat and embedding models, and suggestions are
# for `generate` or `embed`: ids of image or audio models are neither routed nor offered.
_CHAT_MODES = frozenset({"chat", "responses", "completion", None})
_SUGGESTED_MODES = _CHAT_MODES | {"embedding"}
# LiteLLM files some of a provider's models under a related `litellm_provider`
# ("vertex_ai-anthropic_models", "bedrock_converse"): they count as the provider's.
_RELATED = {"bedrock": ("bedrock_converse", "bedrock_mantle"), "cohere": ("cohere_chat",)}
# Route segments LiteLLM reads as options, not as part of the model id.
_ROUTE_OPTIONS = {"bedrock": ("converse/", "invoke/")}


class ModelList:
    """Model ids by LiteLLM provider, from LiteLLM's bundled list."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self.keys = frozenset(entries)
        by_provider: dict[str, set[str]] = {}
        suggested: dict[str, set[str]] = {}
        families: dict[str, str] = {}
        # a bare id that is itself a key: LiteLLM routes the bare name to its provider
        self._keyed_bare: dict[str, str] = {}
        for key, entry in entries.items():
            provider = entry.litellm_provider
            if not isinstance(provider, str) or key == "sample_spec":
                continue
            family = families.get(provider)
            if family is None:
                family = families[provider] = _family(provider)
            provider = family
            bare = key.removeprefix(f"{provider}/")
            by_provider.setdefault(provider, set()).add(bare)
            if entry.mode in _SUGGESTED_MODES:
                suggested.setdefault(provider, set()).add(bare)
                if bare == key:
                    self._keyed_bare[key] = provider
        self._by_provider = {p: frozenset(ids) for p, ids in by_provider.items()}
        self._suggested = {p: frozenset(ids) for p, ids in suggested.items()}
        self._owners: dict[str, frozenset[str]] | None = None

    def has_models(self, provider: str) -> bool:
        """True when the list names any model of `provider` (else its names go unchecked)."""
        return provider in self._by_provider

    def is_listed(self, provider: str, model_id: str) -> bool:
        """True when `provider/model_id` or the bare id under that provider is listed."""
        for option in _ROUTE_OPTIONS.get(provider, ()):
            model_id = model_id.removeprefix(option)
        return f"{provider}/{model_id}" in self.keys or model_id in self._by_provider.get(
            provider, ()
        )

    def providers_of(self, model_id: str) -> frozenset[str]:
        """The providers whose chat or embedding models include the bare id `model_id`."""
        if self._owners is None:
            owners: dict[str, set[str]] = {}
            for provider, ids in self._suggested.items():
                for i in ids:
                    owners.setdefault(i, set()).add(provider)
            self._owners = {i: frozenset(p) for i, p in owners.items()}
        return self._owners.get(model_id, frozenset())

    def keyed_bare(self, model_id: str) -> str | None:
        """The provider whose entry is keyed by the bare id itself (LiteLLM's own route for
        the bare name: `text-embedding-3-small` -> openai), None when every key has a prefix."""
        return self._keyed_bare.get(model_id)

    def closest(self, provider: str, model_id: str, n: int = 2) -> list[str]:
        """The listed chat and embedding ids of `provider` closest to `model_id`, best first."""
        ids = self._suggested.get(provider, frozenset())
        lowered = model_id.lower()
        exact_case = sorted(i for i in ids if i.lower() == lowered)
        if exact_case:
            return exact_case[:n]
        matcher = difflib.SequenceMatcher(b=model_id)
        scored = []
        for candidate in ids:
            matcher.set_seq1(candidate)
            if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
                score = matcher.ratio()
                if score >= 0.6:
                    # on a tie, the plain name (no dated snapshot, no region prefix) first
                    plain = candidate.count(".") + candidate.count("/")
                    scored.append((-score, plain, len(candidate), candidate))
        return [c for *_, c in sorted(scored)[:n]]


def _family(provider: str) -> str:
    """The provider a `litellm_provider` value belongs to ("vertex_ai-anthropic_models" ->
    "vertex_ai")."""
    head = provider.partition("-")[0]
    if head != provider and head in ("vertex_ai", "fireworks_ai"):
        return head
    for owner, related in _RELATED.items():
        if provider in related:
            return owner
    return provider


_lock = threading.Lock()


def _path() -> Path | None:
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / _FILE
        if candidate.is_file():
            return candidate
    return None


@cache
def _load() -> ModelList | None:
    path = _path()
    if path is None:
        return None
    try:
        entries = msgspec.json.decode(path.read_bytes(), type=dict[str, _Entry])
    except (OSError, msgspec.DecodeError):
        return None
    return ModelList(entries)


def model_list() -> ModelList | None:
    """LiteLLM's model list, loaded on first use (None when LiteLLM is not installed)."""
    with _lock:
        return _load()
