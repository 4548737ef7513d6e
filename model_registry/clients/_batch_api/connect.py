"""Which clients can use a provider's batch API, and the endpoints of one that can: the
api_base and key the client's calls would use, in headers that are never shown."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from model_registry.clients._batch_api.providers import AnthropicJobs, OpenAIJobs, ProviderJobs
from model_registry.clients._batch_api.wire import Wire
from model_registry.clients._litellm_params import call_secrets
from model_registry.errors import InvalidParameterError, MissingCredentialsError
from model_registry.types import Resolution

__all__ = ["batch_provider", "connect"]

logger = logging.getLogger("model_registry")

#: Each request's limit when no `timeout` is given (LiteLLM's default for a call).
DEFAULT_TIMEOUT_S = 600.0
_DEFAULT_BASES = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
_KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def batch_provider(resolution: Resolution, kind: str) -> str:
    """The LiteLLM provider whose batch API serves `resolution` ("openai", "anthropic");
    InvalidParameterError, before anything is sent, for any other."""
    name = resolution.name
    if kind != "hosted" or resolution.route is None:
        raise InvalidParameterError(
            f"batch_api=True: {name!r} is a local model, which has no provider batch API "
            "(its engine batches prompts itself): call generate_many without batch_api "
            "(nothing was sent)"
        )
    prefix = resolution.route.split("/", 1)[0]
    if prefix not in _DEFAULT_BASES:
        raise InvalidParameterError(
            f"batch_api=True: {name!r} goes to LiteLLM provider {prefix!r}, whose batch API "
            "model-registry does not drive; it drives OpenAI's (also at any OpenAI-compatible "
            "api_base, e.g. 'openai:MODEL' with api_base=...) and Anthropic's. Call "
            "generate_many without batch_api (nothing was sent)"
        )
    return prefix


def connect(resolution: Resolution, provider: str, params: Mapping[str, Any]) -> ProviderJobs:
    """The batch endpoints for a call with `params` (the hosted client's merged params)."""
    spec = resolution.spec
    variable = spec.api_key_env or _KEY_VARIABLES[provider]
    key = params.get("api_key") or os.environ.get(variable)
    if not key:
        raise MissingCredentialsError(
            f"no API key for provider {spec.name!r}: set {variable} or pass api_key=...",
            provider=spec.name,
            env_var=variable,
        )
    base = str(params.get("api_base") or _DEFAULT_BASES[provider])
    headers = {str(k): str(v) for k, v in (params.get("extra_headers") or {}).items()}
    if provider == "anthropic":
        base = base.rstrip("/").removesuffix("/messages").removesuffix("/v1")
        headers.update({"x-api-key": str(key), "anthropic-version": "2023-06-01"})
    else:
        headers["Authorization"] = f"Bearer {key}"
    wire = Wire(
        base,
        headers,
        timeout=params.get("timeout") or DEFAULT_TIMEOUT_S,
        provider=resolution.provider,
        model=resolution.model_id,
        secrets=[str(key), *call_secrets(spec, params)],
    )
    return AnthropicJobs(wire) if provider == "anthropic" else OpenAIJobs(wire)
