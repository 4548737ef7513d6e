"""The provider registry: which providers exist and how each one is reached."""

from __future__ import annotations

import difflib
import os
import re
import threading
from functools import cache

import msgspec

from model_registry._litellm_providers import LITELLM_CHAT_PROVIDERS
from model_registry.types import ClientKind, redact

__all__ = [
    "BUILTIN_PROVIDERS",
    "ProviderSpec",
    "builtin_and_registered_providers",
    "is_litellm_provider",
    "litellm_prefix_problem",
    "litellm_provider_spec",
    "register_provider",
    "registry_version",
    "unregister_provider",
]

_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ProviderSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one provider is reached.

    `kind` picks the client: "hosted" goes through LiteLLM with the route
    `"{litellm_prefix}/{model_id}"`; "local" runs the weights in vLLM's async engine.
    """

    name: str
    kind: ClientKind = "hosted"
    litellm_prefix: str | None = None
    default_model: str | None = None
    name_prefixes: tuple[str, ...] = ()
    api_key_env: str | None = None
    api_base: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not _PROVIDER_NAME.match(self.name):
            raise ValueError(
                f"provider name {self.name!r} is not valid: use letters, digits, '_', '-' or '.'"
            )
        if self.kind == "local":
            if self.litellm_prefix is not None:
                raise ValueError(f"provider {self.name!r}: a local provider has no litellm_prefix")
            return
        problem = litellm_prefix_problem(self.name, self.litellm_prefix, self.api_base)
        if problem is not None:
            raise ValueError(f"provider {self.name!r}: {problem}")

    @property
    def route_prefix(self) -> str:
        """The LiteLLM prefix of this provider's routes: `litellm_prefix` when set, else the
        provider's own name when LiteLLM knows it, else "openai" (an OpenAI-compatible
        `api_base`)."""
        if self.litellm_prefix:
            return self.litellm_prefix
        return self.name if self.name in LITELLM_CHAT_PROVIDERS else "openai"

    @property
    def api_key_set(self) -> bool | None:
        """Whether the API-key variable is set (None: the provider needs no key)."""
        if self.api_key_env is None:
            return None
        return bool(os.environ.get(self.api_key_env))

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON, credentials redacted; says whether the key is set, never its value."""
        return {**redact(msgspec.structs.asdict(self)), "api_key_set": self.api_key_set}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in redact(msgspec.structs.asdict(self)).items())
        return f"ProviderSpec({fields})"

    def route(self, model_id: str) -> str | None:
        """The LiteLLM route string for `model_id` (None for local models)."""
        if self.kind == "local":
            return None
        return f"{self.route_prefix}/{model_id}"


def is_litellm_provider(name: str) -> bool:
    """True when `name` is one of LiteLLM's chat providers (known without importing it)."""
    return name in LITELLM_CHAT_PROVIDERS


def litellm_prefix_problem(
    name: str, litellm_prefix: str | None, api_base: str | None
) -> str | None:
    """What is wrong with a hosted provider's LiteLLM prefix, or None when it is usable.

    One rule for `[providers]` tables and `register_provider()`: the prefix defaults to the
    provider's own name when LiteLLM knows it, and to "openai" only with an `api_base`.
    """
    if litellm_prefix is not None:
        if litellm_prefix in LITELLM_CHAT_PROVIDERS:
            return None
        match = difflib.get_close_matches(
            litellm_prefix, sorted(LITELLM_CHAT_PROVIDERS), n=1, cutoff=0.6
        )
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        return (
            f"litellm_prefix {litellm_prefix!r} is not a LiteLLM provider{hint}; use one of "
            "LiteLLM's providers, such as 'openai' (any OpenAI-compatible server) or 'hosted_vllm'"
        )
    if name in LITELLM_CHAT_PROVIDERS or api_base is not None:
        return None
    return (
        f"{name!r} is not a LiteLLM provider, so its routes need a prefix: set litellm_prefix "
        "(the LiteLLM provider, e.g. 'hosted_vllm'), or api_base (an OpenAI-compatible "
        "endpoint, reached as 'openai/<model id>')"
    )


@cache
def litellm_provider_spec(name: str) -> ProviderSpec | None:
    """A spec for a LiteLLM chat provider we do not build in (None for other names).

    It has no `api_key_env` of ours: LiteLLM reads the provider's own variables.
    """
    if name not in LITELLM_CHAT_PROVIDERS or not _PROVIDER_NAME.match(name):
        return None
    return ProviderSpec(
        name=name, litellm_prefix=name, description=f"LiteLLM provider {name} (routes as written)"
    )


BUILTIN_PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="openai",
            default_model="gpt-4.1",
            name_prefixes=("gpt", "o1", "o3", "o4", "chatgpt"),
            api_key_env="OPENAI_API_KEY",
            description="OpenAI chat completions",
        ),
        ProviderSpec(
            name="anthropic",
            default_model="claude-sonnet-4-5",
            name_prefixes=("claude",),
            api_key_env="ANTHROPIC_API_KEY",
            description="Anthropic messages API",
        ),
        ProviderSpec(
            name="gemini",
            default_model="gemini-2.5-flash",
            name_prefixes=("gemini",),
            api_key_env="GEMINI_API_KEY",
            description="Google Gemini through AI Studio (LiteLLM's gemini/ route)",
        ),
        ProviderSpec(
            name="deepseek",
            default_model="deepseek-chat",
            name_prefixes=("deepseek",),
            api_key_env="DEEPSEEK_API_KEY",
            description="DeepSeek chat completions",
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
