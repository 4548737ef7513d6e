"""A request the running engine refuses is one of our typed errors, raised after one try."""

from __future__ import annotations

from typing import Any

import pytest

from model_registry.errors import (
    TRANSIENT_ERRORS,
    BadRequestError,
    ContextWindowExceededError,
    InvalidParameterError,
    ServiceUnavailableError,
)
from model_registry.types import Generation

pytestmark = pytest.mark.local

#: Far over the tiny model's 512-token context window.
LONG = "hello " * 2000
CONTEXT = r"maximum context length is 512 tokens"


@pytest.fixture
def submissions(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The request ids the tiny client hands its engine, in order."""
    engine = tiny.engine
    seen: list[str] = []
    real = engine.generate

    def counted(prompt: Any, params: Any, request_id: str, **kwargs: Any) -> Any:
        seen.append(request_id)
        return real(prompt, params, request_id, **kwargs)

    monkeypatch.setattr(engine, "generate", counted)
    return seen


async def test_a_prompt_over_the_context_window_is_context_window_exceeded(
    tiny: Any, submissions: list[str]
) -> None:
    with pytest.raises(ContextWindowExceededError, match=CONTEXT) as caught:
        await tiny.generate(LONG, max_tokens=4)
    error = caught.value
    assert not isinstance(error, TRANSIENT_ERRORS)
    assert (error.provider, error.cause_type) == ("local", "vllm.exceptions.VLLMValidationError")
    assert "reduce the length of the input prompt" in str(error)
    assert len(submissions) == 1
    with pytest.raises(ContextWindowExceededError, match=CONTEXT):
        await tiny.generate(LONG, max_tokens=4, raw=True)
    assert len(submissions) == 2
    assert (await tiny.generate("hi", max_tokens=2)).usage.completion_tokens == 2


async def test_a_streamed_prompt_over_the_context_window_is_context_window_exceeded(
    tiny: Any, submissions: list[str]
) -> None:
    pieces = []
    with pytest.raises(ContextWindowExceededError, match=CONTEXT):
        async for piece in tiny.stream(LONG, max_tokens=4):
            pieces.append(piece)
    assert pieces == []
    assert len(submissions) == 1


async def test_an_option_the_engine_refuses_is_a_bad_request(
    tiny: Any, submissions: list[str]
) -> None:
    # vLLM checks the logprobs asked for against the engine's max_logprobs (20) on submit.
    with pytest.raises(BadRequestError, match=r"Requested sample logprobs of 50") as caught:
        await tiny.generate("hi", max_tokens=2, logprobs=True, top_logprobs=50)
    assert type(caught.value) is BadRequestError
    assert str(caught.value).startswith("local model")
    assert "vLLM rejected the request" in str(caught.value)
    assert not isinstance(caught.value, TRANSIENT_ERRORS)
    assert len(submissions) == 1
    with pytest.raises(BadRequestError, match=r"allowed_token_ids contains out-of-vocab"):
        async for _ in tiny.stream("hi", max_tokens=2, allowed_token_ids=[5000]):
            pass
    assert len(submissions) == 2


async def test_a_sampling_param_vllm_refuses_is_an_invalid_parameter_error(
    tiny: Any, submissions: list[str]
) -> None:
    with pytest.raises(InvalidParameterError, match=r"temperature must be non-negative"):
        await tiny.generate("hi", max_tokens=2, temperature=-1)
    with pytest.raises(InvalidParameterError, match=r"min_tokens must be less than or equal"):
        await tiny.generate("hi", max_tokens=2, min_tokens=5)
    assert submissions == []


async def test_generate_many_puts_the_typed_error_in_its_prompts_place(
    tiny: Any, submissions: list[str]
) -> None:
    results = await tiny.generate_many(["hi", LONG, "hi"], max_tokens=2, return_exceptions=True)
    assert isinstance(results[0], Generation) and isinstance(results[2], Generation)
    assert isinstance(results[1], ContextWindowExceededError)
    assert results[1].index == 1
    assert len(submissions) == 3
    with pytest.raises(ContextWindowExceededError, match=CONTEXT):
        await tiny.generate_many([LONG], max_tokens=2)


def test_an_engine_too_busy_to_admit_is_service_unavailable() -> None:
    from vllm.exceptions import QueueOverflowError

    from model_registry.clients._vllm_errors import call_error

    error = call_error(QueueOverflowError(), provider="local", model="m", engine_args={})
    assert isinstance(error, ServiceUnavailableError)
    assert "busy" in str(error)


def test_a_refused_request_never_shows_an_engine_arg_secret() -> None:
    from vllm.exceptions import VLLMValidationError

    from model_registry.clients._vllm_errors import call_error

    secret = "hf_sEcReT1234567890"
    exc = VLLMValidationError(f"bad request near {secret}", parameter="x", value=secret)
    error = call_error(exc, provider="local", model="m", engine_args={"hf_token": secret})
    assert isinstance(error, BadRequestError)
    assert secret not in str(error) and secret not in repr(error)
