"""Resolution with a very large alias file: an unknown name is refused at once, with its
did-you-mean."""

from __future__ import annotations

import time
from types import MappingProxyType

import pytest

from model_registry import UnknownModelError
from model_registry.aliases import Alias, Registry
from model_registry.providers import BUILTIN_PROVIDERS
from model_registry.resolve import resolve_in


def _registry(count: int) -> Registry:
    names = sorted(f"team-model-{i}" for i in range(count))
    aliases = {
        n: Alias(n, "openai", "gpt-4.1", "openai/gpt-4.1", MappingProxyType({}), "", "big.toml")
        for n in names
    }
    return Registry(MappingProxyType(BUILTIN_PROVIDERS), MappingProxyType(aliases), ("big.toml",))


@pytest.fixture(scope="module")
def big() -> Registry:
    return _registry(100_000)


@pytest.mark.parametrize(
    ("name", "first_suggestion"),
    [
        ("team-modle-77", "team-model-77"),  # a swap in the middle: the end is intact
        ("taem-model-77", "team-model-77"),  # a swap at the start
        ("team-model-77x", "team-model-77"),  # one character too many at the end
        ("xteam-model-5", "team-model-5"),
        ("nothing-like-it", None),
    ],
)
def test_an_unknown_name_among_100_000_aliases_is_refused_within_2_s_with_its_did_you_mean(
    big: Registry, name: str, first_suggestion: str | None
) -> None:
    resolve_in(big, "gpt-4o", {})  # the registry is in use already
    started = time.perf_counter()
    with pytest.raises(UnknownModelError) as caught:
        resolve_in(big, name, {})
    took = time.perf_counter() - started
    assert took < 2.0, f"{took:.2f} s to refuse {name!r}"
    assert (caught.value.suggestions[:1] or (None,))[0] == first_suggestion


def test_the_typo_guard_names_close_aliases_of_a_large_registry_at_once(big: Registry) -> None:
    started = time.perf_counter()
    resolution = resolve_in(big, "team-model-77", {})  # an alias
    assert resolution.alias == "team-model-77"
    unlisted = resolve_in(big, "gpt-4o-minii", {})
    assert time.perf_counter() - started < 2.0
    assert unlisted.warnings
