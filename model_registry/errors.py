"""Every error model-registry raises, in one tree.

    ModelRegistryError
    ├── AliasConfigError          (also ValueError) an alias file is broken
    ├── UnknownModelError         (also ValueError) a name resolves to nothing
    ├── InvalidParameterError     (also ValueError) a kwarg the backend cannot take
    ├── ModelPathNotFoundError    (also FileNotFoundError) a local model path is missing
    ├── MissingCredentialsError   a hosted provider has no API key
    ├── BackendNotInstalledError  litellm / vllm missing; says what to install
    ├── EngineStartError          the local engine could not start (model id, cause, hint)
    ├── ClientClosedError         a call on a client after aclose()
    ├── ResultStoreError          a results_db file is not ours, damaged, in use, or a write failed
    ├── BudgetExceededError       a prompt not sent: it would pass the batch's max_cost
    └── ModelCallError            a call reached the model and failed
        ├── AuthenticationError       401, bad or revoked key
        ├── PermissionDeniedError     403
        ├── NotFoundError             404, unknown model id or endpoint
        ├── BadRequestError           400 / 422, the request itself is wrong
        │   ├── ContextWindowExceededError
        │   └── ContentFilteredError
        ├── RateLimitError            429
        ├── RequestTimeoutError       the call ran past its timeout
        ├── ServiceUnavailableError   the server answered 5xx (503, 502, 500...)
        ├── APIConnectionError        no response came: refused, reset, DNS (status_code None)
        ├── OutputValidationError     a structured answer that does not validate (.text: the raw answer)
        └── APIError                  anything else the provider reported

User mistakes (the first seven) are kept apart from failures of a call
(`ModelCallError`), so a pipeline can retry the latter and fix the former.
`TRANSIENT_ERRORS` are the failures worth another try (a retry, the next fallback).
"""

from __future__ import annotations

__all__ = [
    "TRANSIENT_ERRORS",
    "APIConnectionError",
    "APIError",
    "AliasConfigError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "BudgetExceededError",
    "ClientClosedError",
    "ContentFilteredError",
    "ContextWindowExceededError",
    "EngineStartError",
    "InvalidParameterError",
    "MissingCredentialsError",
    "ModelCallError",
    "ModelPathNotFoundError",
    "ModelRegistryError",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResultStoreError",
    "ServiceUnavailableError",
    "UnknownModelError",
]


class ModelRegistryError(Exception):
    """Root of every error raised by model-registry."""


class AliasConfigError(ModelRegistryError, ValueError):
    """An alias file is not valid: names the file, the alias and the key at fault."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        alias: str | None = None,
        key: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.path = path
        self.alias = alias
        self.key = key
        self.problems = problems or (message,)


class UnknownModelError(ModelRegistryError, ValueError):
    """A model name matched no alias, provider or naming rule."""

    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.suggestions = suggestions


class InvalidParameterError(ModelRegistryError, ValueError):
    """A keyword argument the backend does not accept (or not at this point)."""


class ModelPathNotFoundError(ModelRegistryError, FileNotFoundError):
    """A local model's path does not exist."""


class MissingCredentialsError(ModelRegistryError):
    """A hosted provider needs an API key and none was found."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        env_var: str | None,
        env_vars: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.env_var = env_var
        #: Every variable that is missing (`env_var` is the first of them).
        self.env_vars = env_vars or ((env_var,) if env_var else ())


class BackendNotInstalledError(ModelRegistryError, ImportError):
    """The package a backend needs (litellm, vllm) is not installed."""


class EngineStartError(ModelRegistryError, RuntimeError):
    """The local engine could not start; the message names the model id, the cause and a fix."""


class ClientClosedError(ModelRegistryError, RuntimeError):
    """The client was closed with aclose(); make a new one with get_client()."""


class ResultStoreError(ModelRegistryError):
    """A result store cannot be used: not ours, damaged, held by another run, or a failed
    write. The message names the file and what to do."""


class BudgetExceededError(ModelRegistryError):
    """A prompt of a batch was not sent: its call could pass the batch's `max_cost`.

    `max_cost` is the cap and `spent` what was spent when it was refused (the results_db's
    recorded cost included), both in USD. It is never stored, so a rerun with a higher cap
    sends the prompt."""

    def __init__(self, message: str, *, max_cost: float, spent: float) -> None:
        super().__init__(message)
        self.max_cost = max_cost
        self.spent = spent


class ModelCallError(ModelRegistryError):
    """A call to a model failed; carries provider, model, status code and the provider's message.

    `status_code` is the HTTP status the server answered with, or None when no response
    came (or none that said one). `cause_type` names the backend's own exception class
    (e.g. "litellm.AuthenticationError"): the backend's exception itself is not chained,
    since its text and attributes may hold credentials. `retry_after` is the wait in
    seconds a 429 or 503 asked for (`Retry-After`, `retry-after-ms`), None when it asked
    for none.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status_code: int | None = None,
        cause_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.message = message
        self.cause_type = cause_type
        self.retry_after = retry_after
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{provider} model '{model}'{status}: {message}")


class AuthenticationError(ModelCallError):
    """The provider rejected the API key (HTTP 401)."""


class PermissionDeniedError(ModelCallError):
    """The key is valid but may not use this model or endpoint (HTTP 403)."""


class NotFoundError(ModelCallError):
    """The model id or endpoint does not exist (HTTP 404)."""


class BadRequestError(ModelCallError):
    """The provider rejected the request as malformed (HTTP 400/422)."""


class ContextWindowExceededError(BadRequestError):
    """The prompt plus max_tokens does not fit the model's context window."""


class ContentFilteredError(BadRequestError):
    """The provider's content policy blocked the prompt or the answer."""


class RateLimitError(ModelCallError):
    """Too many requests or tokens (HTTP 429); back off and retry."""


class RequestTimeoutError(ModelCallError):
    """The call ran past its timeout."""


class ServiceUnavailableError(ModelCallError):
    """The provider answered with a server error (HTTP 5xx)."""


class APIConnectionError(ModelCallError):
    """No response came from the server (refused, reset, DNS); `status_code` is None."""


class OutputValidationError(ModelCallError):
    """An answer asked for with `response_format` does not validate against its schema.

    `text` holds the raw answer and `validation_message` what did not validate.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        text: str,
        validation_message: str,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, status_code=status_code)
        self.text = text
        self.validation_message = validation_message


class APIError(ModelCallError):
    """Any other error the provider reported."""


TRANSIENT_ERRORS: tuple[type[ModelCallError], ...] = (
    RateLimitError,
    ServiceUnavailableError,
    APIConnectionError,
    RequestTimeoutError,
)
"""The failures another attempt may fix (out of capacity or out of reach): the ones retried
and the ones a fallback takes over; any other error is raised at once."""
