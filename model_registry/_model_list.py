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


class ModelList:
    """Model ids by LiteLLM provider, from LiteLLM's bundled list."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self.keys = frozenset(entries)
        by_provider: dict[str, set[str]] = {}
        for key, entry in entries.items():
            provider = entry.litellm_provider
            if not isinstance(provider, str) or key == "sample_spec":
                continue
            bare = key.removeprefix(f"{provider}/")
            by_provider.setdefault(provider, set()).add(bare)
        self._by_provider = {p: frozenset(ids) for p, ids in by_provider.items()}

    def has_models(self, provider: str) -> bool:
        """True when the list names any model of `provider` (else its names go unchecked)."""
        return provider in self._by_provider

    def is_listed(self, provider: str, model_id: str) -> bool:
        """True when `provider/model_id` or the bare id under that provider is listed."""
        return f"{provider}/{model_id}" in self.keys or model_id in self._by_provider.get(
            provider, ()
        )

    def closest(self, provider: str, model_id: str, n: int = 2) -> list[str]:
        """The listed ids of `provider` closest to `model_id`, best first."""
        ids = self._by_provider.get(provider, frozenset())
        lowered = model_id.lower()
        exact_case = [i for i in ids if i.lower() == lowered]
        if exact_case:
            return exact_case[:n]
        # prefer the plain names (no dated snapshot, no region prefix) when they tie
        ranked = sorted(ids, key=lambda i: (i.count(".") + i.count("/"), len(i), i))
        return difflib.get_close_matches(model_id, ranked, n=n, cutoff=0.6)


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
