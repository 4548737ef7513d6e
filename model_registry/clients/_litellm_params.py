"""What goes to LiteLLM with a call: kwargs checked before any network, and the key.

A key from the environment goes only to its provider's own API; a built-in provider pointed
at another server (`vllm serve`, a proxy) and a keyless OpenAI-compatible server get a
placeholder, so neither LiteLLM nor the openai SDK reaches for a provider's key variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from model_registry._kwarg_names import kwarg_typo_warning
from model_registry._options import LOCAL_ONLY, OWN_KWARGS, local_only, not_a_kwarg
from model_registry._redaction import redact_text
from model_registry.errors import InvalidParameterError, MissingCredentialsError
from model_registry.types import ProviderSpec, secret_values

__all__ = ["call_secrets", "check_params", "key_params", "log_kwarg_typos"]

logger = logging.getLogger("model_registry")

#: Route prefixes served by the openai SDK, which refuses to run without some key.
_OPENAI_SDK_PREFIXES = frozenset({"openai", "custom_openai", "text-completion-openai"})
#: Sent to keyless OpenAI-compatible servers, so the user's OPENAI_API_KEY never goes there.
NO_KEY_PLACEHOLDER = "no-key"
#: The hosts of the built-in providers' own APIs: only these get the key from the environment.
_OWN_HOSTS: Mapping[str, frozenset[str]] = {
    "openai": frozenset({"api.openai.com"}),
    "anthropic": frozenset({"api.anthropic.com"}),
    "gemini": frozenset({"generativelanguage.googleapis.com"}),
    "deepseek": frozenset({"api.deepseek.com"}),
}
#: Kwargs the client sets itself: a caller's value would clash or be silently dropped (our
#: own kwargs, `_options.OWN_KWARGS`, are refused as well).
_RESERVED = {
    "model": "the model is the client's: get_client('provider:model-id') names it",
    "messages": "the prompt is generate()'s first argument",
    "stream": "use client.stream(prompt) for a stream and client.generate(prompt) for a "
    "whole answer",
}
#: Kwargs that LiteLLM takes as Python objects, not as JSON for the wire (`tools` becomes
#: JSON in `_tools.prepare_tools`).
_OBJECT_KWARGS = frozenset({"response_format", "client", "logger_fn", "timeout", "tools"})


# --- the key ---------------------------------------------------------------------


def key_params(spec: ProviderSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The key to add to `params` (which may name api_key and api_base), if any.

    Raises MissingCredentialsError when the provider's key variable is needed and unset.
    """
    if params.get("api_key"):
        return {}
    builtin = spec.litellm_reads_key and spec.api_key_env is not None
    api_base = params.get("api_base")
    if builtin and api_base is not None and not _is_own_api(spec.name, api_base):
        # A built-in provider pointed at another server (`vllm serve`, a proxy) gets a
        # key only when api_key is given: the placeholder keeps LiteLLM and the SDK
        # from reaching for the provider's key variable and sending it there.
        return {"api_key": NO_KEY_PLACEHOLDER}
    env_value = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.api_key_env and not env_value:
        raise MissingCredentialsError(
            f"no API key for provider {spec.name!r}: set {spec.api_key_env} or pass api_key=...",
            provider=spec.name,
            env_var=spec.api_key_env,
        )
    if env_value and not builtin:
        # LiteLLM does not know this provider's variable: hand the key over ourselves.
        return {"api_key": env_value}
    if not env_value and spec.route_prefix in _OPENAI_SDK_PREFIXES:
        # a placeholder, so the SDK runs and no other provider's key is sent here
        return {"api_key": NO_KEY_PLACEHOLDER}
    return {}


def call_secrets(spec: ProviderSpec, params: Mapping[str, Any]) -> list[str]:
    """The secrets an error of a call with `params` may echo: to be scrubbed from it."""
    found = secret_values(params)
    if spec.api_key_env and os.environ.get(spec.api_key_env):
        found.append(os.environ[spec.api_key_env])
    return [s for s in found if s and s != NO_KEY_PLACEHOLDER]


def _is_own_api(provider: str, api_base: Any) -> bool:
    """Whether `api_base` is the built-in `provider`'s own API (not another server)."""
    if not isinstance(api_base, str):
        return False
    try:
        host = urlsplit(api_base).hostname
    except ValueError:
        return False
    return host is not None and host in _OWN_HOSTS.get(provider, frozenset())


# --- the kwargs ------------------------------------------------------------------


#: Per-call kwargs already warned about as misspelt: each is logged once per process.
_typos_logged: set[str] = set()


def log_kwarg_typos(kwargs: Mapping[str, Any]) -> None:
    """Log (once per key) a per-call kwarg that looks like a misspelt known parameter; it is
    still sent. Client and alias kwargs carry the same warning in `Resolution.warnings`."""
    for key in kwargs.keys() - _typos_logged:
        warning = kwarg_typo_warning(key, "a call's kwarg")
        if warning is not None:
            _typos_logged.add(key)
            logger.warning("%s", warning)


def check_params(params: Mapping[str, Any], where: str) -> None:
    """Reject, before any network, kwargs that are ours, unsendable or misleading."""
    for key, value in params.items():
        if key in _RESERVED:
            raise InvalidParameterError(f"{key!r} is not a kwarg of {where}: {_RESERVED[key]}")
        if key in OWN_KWARGS:
            raise InvalidParameterError(not_a_kwarg(key, where))
        if key in LOCAL_ONLY:
            raise InvalidParameterError(local_only(key, where))
        if key == "n" and value is not None and (value != 1 or isinstance(value, bool)):
            raise InvalidParameterError(
                f"n={value!r}: each call returns one answer; for several samples repeat the "
                "prompt in generate_many"
            )
        if key == "timeout":
            _check_timeout(value, where)
        elif key not in _OBJECT_KWARGS:
            problem = _not_json(value, key)
            if problem is not None:
                # the key and the type, never the value: it may hold a credential
                raise InvalidParameterError(
                    redact_text(
                        f"{problem} in {where}, which cannot be sent as JSON: pass strings, "
                        "numbers, true/false, lists and dicts (a date as its ISO string, e.g. "
                        "'1979-05-27')",
                        secret_values(params),
                    )
                )


def _check_timeout(value: Any, where: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        raise InvalidParameterError(
            f"'timeout' in {where} must be a positive number of seconds, got {value!r}"
        )


def _not_json(value: Any, where: str) -> str | None:
    """What in `value` (at `where`, as `extra_body['tags']`) JSON cannot hold, by its place
    and type, or None when all of it can."""
    if value is None or isinstance(value, str | int | float | type):
        return None  # a class passes: LiteLLM turns pydantic models into schemas
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{where} has a key of type {type(key).__name__}"
            problem = _not_json(item, f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _not_json(item, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    return f"{where} is of type {type(value).__name__}"
