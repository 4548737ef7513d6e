"""model-registry: turn a model name into a ready async client.

    client = await get_client("my-reasoning-model", reasoning_effort="low")
    generation = await client.generate("Write three distractors for: ...")

Hosted providers go through LiteLLM, local weights through vLLM's async engine;
both load on first use, so importing this package stays cheap.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from model_registry._embeddings import Embeddings
from model_registry.aliases import Alias, Registry
from model_registry.api import (
    fallback_chain,
    get_client,
    limits_in_force,
    list_available_models,
    list_providers,
)
from model_registry.errors import (
    TRANSIENT_ERRORS,
    AliasConfigError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BackendNotInstalledError,
    BadRequestError,
    BudgetExceededError,
    ClientClosedError,
    ContentFilteredError,
    ContextWindowExceededError,
    EngineStartError,
    InvalidParameterError,
    MissingCredentialsError,
    ModelCallError,
    ModelPathNotFoundError,
    ModelRegistryError,
    NotFoundError,
    OutputValidationError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResultStoreError,
    ServiceUnavailableError,
    UnknownModelError,
)
from model_registry.providers import register_provider, unregister_provider
from model_registry.resolve import alias_warnings, load_registry, resolve, validate_files
from model_registry.types import (
    Generation,
    GenerationStream,
    Message,
    ProviderSpec,
    Resolution,
    TokenLogprob,
    ToolCall,
    Usage,
    redact,
    secret_values,
)

if _TYPE_CHECKING:
    # Loaded on first use (see `__getattr__`): the one client type (what get_client
    # returns) under the name users annotate with, with the clients; the names of `_LAZY`.
    from model_registry._result_record import result_record
    from model_registry._store_jobs import BatchJob, batch_jobs
    from model_registry.clients.base import BaseClient as ModelClient
    from model_registry.events import off, on
    from model_registry.otel import instrument, uninstrument
    from model_registry.store import ResultStore, StoreSummary

#: The distribution name, whose metadata holds the version (pyproject.toml's).
_DISTRIBUTION = "model-registry-llm"


#: Names loaded on first use (and kept), with their modules: the store's (with sqlite3 when
#: a store opens), the event handlers' and OpenTelemetry's switches, `result_record`.
_LAZY = {
    "ResultStore": "model_registry.store",
    "StoreSummary": "model_registry.store",
    "BatchJob": "model_registry._store_jobs",
    "batch_jobs": "model_registry._store_jobs",
    "on": "model_registry.events",
    "off": "model_registry.events",
    "instrument": "model_registry.otel",
    "uninstrument": "model_registry.otel",
    "result_record": "model_registry._result_record",
}

#: Public modules that load on first use, still reachable as attributes of the package.
_SUBMODULES = frozenset({"events", "limits", "otel"})


def __getattr__(name: str) -> _Any:
    """What loads on first use (and is kept): `ModelClient`, with the clients (and anyio),
    the names of `_LAZY`, and `__version__`, read from the installed package's metadata."""
    if name == "ModelClient":
        from model_registry.clients.base import BaseClient

        globals()["ModelClient"] = BaseClient
        return BaseClient
    if (module_name := _LAZY.get(name)) is not None or name in _SUBMODULES:
        import importlib

        if module_name is None:  # `model_registry.events` without importing it first
            return importlib.import_module(f"model_registry.{name}")
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value
        return value
    if name != "__version__":
        raise AttributeError(f"module 'model_registry' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version(_DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found


__all__ = [
    "TRANSIENT_ERRORS",
    "APIConnectionError",
    "APIError",
    "Alias",
    "AliasConfigError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "BatchJob",
    "BudgetExceededError",
    "ClientClosedError",
    "ContentFilteredError",
    "ContextWindowExceededError",
    "Embeddings",
    "EngineStartError",
    "Generation",
    "GenerationStream",
    "InvalidParameterError",
    "Message",
    "MissingCredentialsError",
    "ModelCallError",
    "ModelClient",
    "ModelPathNotFoundError",
    "ModelRegistryError",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "ProviderSpec",
    "RateLimitError",
    "Registry",
    "RequestTimeoutError",
    "Resolution",
    "ResultStore",
    "ResultStoreError",
    "ServiceUnavailableError",
    "StoreSummary",
    "TokenLogprob",
    "ToolCall",
    "UnknownModelError",
    "Usage",
    "__version__",
    "alias_warnings",
    "batch_jobs",
    "fallback_chain",
    "get_client",
    "instrument",
    "limits_in_force",
    "list_available_models",
    "list_providers",
    "load_registry",
    "off",
    "on",
    "redact",
    "register_provider",
    "resolve",
    "result_record",
    "secret_values",
    "uninstrument",
    "unregister_provider",
    "validate_files",
]
