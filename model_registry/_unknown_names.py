"""The errors for names that resolve to nothing: the reason, and what the user may have meant.

Used by `resolve`; kept apart so the resolution order reads on its own.
"""

from __future__ import annotations

from itertools import compress, repeat

from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry.aliases import Registry, provider_of
from model_registry.errors import UnknownModelError

__all__ = [
    "close_aliases",
    "empty_model",
    "stray_characters",
    "unknown",
    "unknown_prefix",
]

_MAX_LISTED_ALIASES = 20


def unknown_prefix(registry: Registry, name: str, prefix: str, rest: str) -> UnknownModelError:
    known = sorted({*registry.providers, *LITELLM_PROVIDERS})
    by_case = {p.lower(): p for p in known}
    match = by_case.get(prefix.strip().lower())
    if match is None:
        import difflib  # here: loaded by a name that resolves to nothing, not at import

        close = difflib.get_close_matches(prefix.strip().lower(), known, n=1, cutoff=0.6)
        match = close[0] if close else None
    reason = f"'{prefix}' is not a known provider (ours or LiteLLM's)"
    if match is None:
        return unknown(registry, name, reason)
    fixed = f"{match}:{rest}"
    return unknown(registry, name, f"{reason}; did you mean {fixed!r}?", suggestions=(fixed,))


def _cleaned(name: str, registry: Registry) -> str:
    """`name` without unprintable characters, outer whitespace, or whitespace after
    "provider:" or "provider/"."""
    text = "".join(c for c in name if c.isprintable()).strip()
    for sep in (":", "/"):
        head, found, tail = text.partition(sep)
        if found and provider_of(registry, head.strip()) is not None:
            text = f"{head.strip()}{sep}{tail.strip()}" if tail.strip() else head.strip()
    return text


def stray_characters(registry: Registry, name: str) -> UnknownModelError:
    odd = next((c for c in name if not c.isprintable()), None)
    if odd is not None:
        what = f"an unprintable character (U+{ord(odd):04X})"
    elif name != name.strip():
        what = "leading or trailing whitespace"
    else:
        what = "whitespace next to the provider name"
    cleaned = _cleaned(name, registry)
    reason = f"the name has {what}"
    if cleaned and cleaned != name:
        reason += f"; did you mean {cleaned!r}?"
        return unknown(registry, name, reason, suggestions=(cleaned,))
    return unknown(registry, name, reason + "; check where the name came from", suggestions=())


def empty_model(registry: Registry, name: str, prefix: str) -> UnknownModelError:
    provider = prefix[:-1]
    spec = provider_of(registry, provider)
    assert spec is not None  # only called for a known provider
    reason = f"nothing after '{prefix}'; write '{provider}:<model id>'"
    if spec.default_model is None:
        return unknown(registry, name, reason, suggestions=())
    reason += f", or {provider!r} for its default model ({spec.default_model})"
    return unknown(registry, name, reason, suggestions=(provider,))


def unknown(
    registry: Registry,
    name: str,
    reason: str | None,
    suggestions: tuple[str, ...] | None = None,
) -> UnknownModelError:
    """The error for a name that resolves to nothing; `suggestions` (when given) replace the
    close matches and are named in `reason` already."""
    said = suggestions is not None
    if suggestions is None:
        suggestions = _close_matches(registry, name)
    aliases = list(registry.aliases)
    listed = ", ".join(aliases[:_MAX_LISTED_ALIASES])
    if len(aliases) > _MAX_LISTED_ALIASES:
        listed += f", ... ({len(aliases) - _MAX_LISTED_ALIASES} more: run 'model-registry list')"
    lines = [
        f"unknown model {name!r}: " + (reason or "no alias, provider or naming rule matches it")
    ]
    if suggestions and not said:
        lines.append("  did you mean: " + ", ".join(repr(s) for s in suggestions) + "?")
    lines.append(f"  known aliases ({len(aliases)}): {listed or '(none)'}")
    lines.append(
        f"  known providers: {', '.join(sorted(registry.providers))}, and LiteLLM's "
        f"{len(LITELLM_PROVIDERS)} chat and embedding providers by name "
        "('groq:<model id>', 'ollama/...', 'voyage/...')"
    )
    lines.append(
        "  hint: name the provider explicitly, as in 'openai:gpt-4.1' or "
        "'local:Qwen/Qwen3-4B-Instruct-2507'"
    )
    return UnknownModelError("\n".join(lines), name=name, suggestions=suggestions)


def _close_matches(registry: Registry, name: str) -> tuple[str, ...]:
    import difflib

    candidates = [p for p in registry.providers if p != name]
    suggestions = [*close_aliases(registry, name, 3), *difflib.get_close_matches(name, candidates)]
    suggestions = [s for s in sorted(set(suggestions), key=suggestions.index) if s != name]
    by_case = {c.lower(): c for c in candidates}
    same = by_case.get(name.lower())
    if same is not None and same not in suggestions:
        suggestions.insert(0, same)
    return tuple(suggestions[:3])


# Up to this many aliases, every one is compared; a larger registry (tens of thousands) is
# searched among the aliases next to the name in sorted order (same start) and those with
# the same last characters, so the search stays a few milliseconds.
_FULL_SEARCH = 2_000
_NEIGHBOURS = 50


def close_aliases(registry: Registry, name: str, n: int) -> list[str]:
    """Up to `n` alias names close to `name` (difflib's ratio 0.6 or more), best first."""
    import bisect
    import difflib
    import heapq

    forward = list(registry.aliases)  # sorted by the loader
    if len(forward) <= _FULL_SEARCH:
        return difflib.get_close_matches(name, [a for a in forward if a != name], n=n)
    pool: set[str] = set()
    for cut in range(3):  # the name as given, and without one or two characters too many
        at = bisect.bisect_left(forward, name[: len(name) - cut])
        pool.update(forward[max(0, at - _NEIGHBOURS) : at + _NEIGHBOURS])
    same_end = list(compress(forward, map(str.endswith, forward, repeat(name[-3:]))))
    size = len(name)
    pool.update(heapq.nsmallest(2 * _NEIGHBOURS, same_end, key=lambda a: abs(len(a) - size)))
    pool.discard(name)
    return difflib.get_close_matches(name, pool, n=n)
