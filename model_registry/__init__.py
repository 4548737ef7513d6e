"""model-registry: turn a model name into a ready async client.

    client = await get_client("my-reasoning-model", reasoning_effort="low")
    generation = await client.generate("Write three distractors for: ...")

Hosted providers go through LiteLLM, local weights through vLLM's async engine;
both load on first use, so importing this package stays cheap.
"""

from model_registry.aliases import Alias, Registry, load_registry, validate_files
from model_registry.api import (
    fallback_chain,
    get_client,
    limits_in_force,
    list_available_models,
    list_providers,
)

# The one client type (what get_client returns), under the name users annotate with.
from model_registry.clients.base import BaseClient as ModelClient
from model_registry.errors import (
    TRANSIENT_ERRORS,
    AliasConfigError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BackendNotInstalledError,
    BadRequestError,
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
from model_registry.resolve import resolve
from model_registry.store import ResultStore, StoreSummary
from model_registry.types import (
    Generation,
    GenerationStream,
    Message,
    ProviderSpec,
    Resolution,
    TokenLogprob,
    Usage,
    redact,
    secret_values,
)

__version__ = "0.1.0"

__all__ = [
    "TRANSIENT_ERRORS",
    "APIConnectionError",
    "APIError",
    "Alias",
    "AliasConfigError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "ClientClosedError",
    "ContentFilteredError",
    "ContextWindowExceededError",
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
    "UnknownModelError",
    "Usage",
    "__version__",
    "fallback_chain",
    "get_client",
    "limits_in_force",
    "list_available_models",
    "list_providers",
    "load_registry",
    "redact",
    "register_provider",
    "resolve",
    "secret_values",
    "unregister_provider",
    "validate_files",
]
