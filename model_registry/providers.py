"""The provider registry: which providers exist and how each one is reached.

`ProviderSpec` itself lives in `types` (the bottom layer, so clients can read it); it is
re-exported here for the imports that name it from this module.
"""

from __future__ import annotations

import threading
from functools import cache

from model_registry._litellm_providers import LITELLM_PROVIDERS
from model_registry.types import ProviderSpec

__all__ = ["ProviderSpec", "register_provider", "unregister_provider"]


@cache
def litellm_provider_spec(name: str) -> ProviderSpec | None:
    """A spec for a LiteLLM provider (chat or embedding) we do not build in (None for other names).

    It has no `api_key_env` of ours: LiteLLM reads the provider's own variables.
    """
    if name not in LITELLM_PROVIDERS:
        return None
    try:
        return ProviderSpec(
            name=name,
            litellm_prefix=name,
            description=f"LiteLLM provider {name} (routes as written)",
            litellm_reads_key=True,
        )
    except ValueError:  # a LiteLLM name that is no valid provider name of ours
        return None


BUILTIN_PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="openai",
            default_model="gpt-4.1",
            name_prefixes=("gpt", "o1", "o3", "o4", "chatgpt"),
            api_key_env="OPENAI_API_KEY",
            description="OpenAI chat completions",
            litellm_reads_key=True,
        ),
        ProviderSpec(
            name="anthropic",
            default_model="claude-sonnet-4-5",
            name_prefixes=("claude",),
            api_key_env="ANTHROPIC_API_KEY",
            description="Anthropic messages API",
            litellm_reads_key=True,
        ),
        ProviderSpec(
            name="gemini",
            default_model="gemini-2.5-flash",
            name_prefixes=("gemini",),
            api_key_env="GEMINI_API_KEY",
            description="Google Gemini through AI Studio (LiteLLM's gemini/ route)",
            litellm_reads_key=True,
        ),
        ProviderSpec(
            name="deepseek",
            default_model="deepseek-chat",
            name_prefixes=("deepseek",),
            api_key_env="DEEPSEEK_API_KEY",
            description="DeepSeek chat completions",
            litellm_reads_key=True,
        ),
        ProviderSpec(
            name="local",
            kind="local",
            description="local weights in vLLM's async engine (HF repo id or path)",
        ),
    )
}

_registered: dict[str, ProviderSpec] = {}
_lock = threading.Lock()
_version = 0


def registry_version() -> int:
    """A counter bumped by every (un)registration; loaded alias files are re-validated on change."""
    return _version


def builtin_and_registered_providers() -> dict[str, ProviderSpec]:
    """The built-in providers, then those added with `register_provider()`."""
    return {**BUILTIN_PROVIDERS, **_registered}


def register_provider(spec: ProviderSpec) -> None:
    """Add (or replace) a provider at run time; alias files loaded later may use it."""
    if not isinstance(spec, ProviderSpec):
        raise TypeError(f"register_provider() takes a ProviderSpec, got {type(spec).__name__}")
    global _version
    with _lock:
        _registered[spec.name] = spec
        _version += 1


def unregister_provider(name: str) -> None:
    """Remove a provider added with `register_provider()` (built-ins stay)."""
    global _version
    with _lock:
        _registered.pop(name, None)
        _version += 1
