"""Every LiteLLM exception maps, in one place, to one of ours (`map_litellm_error`)."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from model_registry import errors
from model_registry.clients.litellm import LITELLM_ERROR_MAP, map_litellm_error

EXPECTED = {
    "AuthenticationError": errors.AuthenticationError,
    "CallerCredentialAuthenticationError": errors.AuthenticationError,
    "PermissionDeniedError": errors.PermissionDeniedError,
    "NotFoundError": errors.NotFoundError,
    "BadRequestError": errors.BadRequestError,
    "InvalidRequestError": errors.BadRequestError,
    "UnprocessableEntityError": errors.BadRequestError,
    "UnsupportedParamsError": errors.BadRequestError,
    "ContextWindowExceededError": errors.ContextWindowExceededError,
    "ContentPolicyViolationError": errors.ContentFilteredError,
    "RejectedRequestError": errors.ContentFilteredError,
    "RateLimitError": errors.RateLimitError,
    "CallerCredentialRateLimitError": errors.RateLimitError,
    "Timeout": errors.RequestTimeoutError,
    "InternalServerError": errors.ServiceUnavailableError,
    "ServiceUnavailableError": errors.ServiceUnavailableError,
    "BadGatewayError": errors.ServiceUnavailableError,
    "APIConnectionError": errors.APIConnectionError,
    "APIError": errors.APIError,
}


def _litellm_exception_classes(litellm: ModuleType) -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(litellm.exceptions).values()
        if inspect.isclass(obj) and issubclass(obj, Exception)
    ]


def _instance(cls: type[BaseException], message: str) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.message = message  # type: ignore[attr-defined]
    return exc


def test_every_litellm_exception_class_is_mapped(litellm: ModuleType) -> None:
    classes = _litellm_exception_classes(litellm)
    assert len(classes) > 30
    unmapped = sorted({cls.__name__ for cls in classes} - set(LITELLM_ERROR_MAP))
    assert unmapped == [], f"add these LiteLLM exceptions to LITELLM_ERROR_MAP: {unmapped}"


def test_each_litellm_exception_becomes_a_model_call_error(litellm: ModuleType) -> None:
    for cls in _litellm_exception_classes(litellm):
        mapped = map_litellm_error(_instance(cls, "boom"), provider="openai", model="m")
        assert isinstance(mapped, errors.ModelCallError), cls
        assert type(mapped) is LITELLM_ERROR_MAP[cls.__name__], cls
        assert (mapped.provider, mapped.model) == ("openai", "m")


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_litellm_exception_maps_to(
    litellm: ModuleType, name: str, expected: type[errors.ModelCallError]
) -> None:
    cls = getattr(litellm.exceptions, name)
    assert type(map_litellm_error(_instance(cls, "x"), provider="p", model="m")) is expected


def test_most_specific_class_wins_over_its_litellm_base(litellm: ModuleType) -> None:
    exc = litellm.exceptions.ContextWindowExceededError(
        message="prompt is too long", model="gpt-4.1", llm_provider="openai"
    )
    assert isinstance(exc, litellm.exceptions.BadRequestError)
    mapped = map_litellm_error(exc, provider="openai", model="gpt-4.1")
    assert type(mapped) is errors.ContextWindowExceededError
    assert isinstance(mapped, errors.BadRequestError)
    assert mapped.status_code == 400


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (429, errors.RateLimitError),
        (502, errors.ServiceUnavailableError),
        (418, errors.APIError),
    ],
)
def test_generic_api_error_is_refined_by_its_status_code(
    litellm: ModuleType, status: int, expected: type[errors.ModelCallError]
) -> None:
    exc = litellm.exceptions.APIError(
        status_code=status, message="nope", llm_provider="openai", model="m"
    )
    mapped = map_litellm_error(exc, provider="openai", model="m")
    assert type(mapped) is expected
    assert mapped.status_code == status


def test_litellm_prefixes_are_stripped_and_secrets_scrubbed(litellm: ModuleType) -> None:
    exc = litellm.exceptions.AuthenticationError(
        message="AuthenticationError: OpenAIException - Incorrect API key provided: sk-secret-123",
        llm_provider="openai",
        model="gpt-4.1",
    )
    mapped = map_litellm_error(exc, provider="openai", model="gpt-4.1", secrets=["sk-secret-123"])
    assert mapped.message == "Incorrect API key provided: ***"
    assert str(mapped) == "openai model 'gpt-4.1' (HTTP 401): Incorrect API key provided: ***"


def test_timeout_has_no_made_up_status(litellm: ModuleType) -> None:
    exc = litellm.exceptions.Timeout(message="Request timed out.", model="m", llm_provider="openai")
    mapped = map_litellm_error(exc, provider="openai", model="m")
    assert type(mapped) is errors.RequestTimeoutError
    assert mapped.status_code is None
