"""Structured output, log-probabilities and chat-template options on the real local engine.

The tiny model has random weights: only grammar-constrained decoding can make it write
valid JSON, so a valid parsed object on every prompt proves the grammar is applied. Every
test here uses the session's shared engine (`tiny`), whose engine args include our default
structured-output settings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pytest
from pydantic import BaseModel, Field

from model_registry import Generation, OutputValidationError, get_client
from model_registry.types import TokenLogprob
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

PROMPTS = [f"Label item {i}: a {word}" for i, word in enumerate(["cat", "dog"] * 10)]
MAX_TOKENS = 200


class Verdict(BaseModel):
    """An enum, an integer range and a list of short strings."""

    label: Literal["good", "bad", "unsure"]
    score: int = Field(ge=1, le=5)
    reasons: list[Annotated[str, Field(max_length=8)]] = Field(max_length=3)


class VerdictStruct(msgspec.Struct):
    label: Literal["good", "bad", "unsure"]
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    reasons: Annotated[list[Annotated[str, msgspec.Meta(max_length=8)]], msgspec.Meta(max_length=3)]


VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"enum": ["good", "bad", "unsure"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reasons": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
    },
    "required": ["label", "score", "reasons"],
}


def _fields(parsed: Any) -> tuple[str, int, list[str]]:
    if isinstance(parsed, dict):
        return parsed["label"], parsed["score"], parsed["reasons"]
    return parsed.label, parsed.score, parsed.reasons


def _assert_valid(generation: Generation, kind: type | None) -> None:
    parsed = generation.parsed
    if kind is not None:
        assert isinstance(parsed, kind), generation.text
    label, score, reasons = _fields(parsed)
    assert label in ("good", "bad", "unsure")
    assert isinstance(score, int) and 1 <= score <= 5
    assert len(reasons) <= 3 and all(isinstance(r, str) and len(r) <= 8 for r in reasons)
    assert json.loads(generation.text) == msgspec.to_builtins(
        parsed.model_dump() if isinstance(parsed, BaseModel) else parsed
    )


FORMATS = [
    pytest.param(Verdict, Verdict, id="pydantic"),
    pytest.param(VerdictStruct, VerdictStruct, id="struct"),
    pytest.param(VERDICT_SCHEMA, dict, id="schema-dict"),
]


@pytest.mark.parametrize(("response_format", "kind"), FORMATS)
async def test_generate_gives_a_valid_object_for_every_prompt(
    tiny: Any, response_format: Any, kind: type
) -> None:
    for prompt in PROMPTS:
        generation = await tiny.generate(
            prompt, response_format=response_format, max_tokens=MAX_TOKENS
        )
        _assert_valid(generation, kind)


async def test_stream_parses_its_answer_at_the_end(tiny: Any) -> None:
    for prompt in PROMPTS:
        stream = tiny.stream(prompt, response_format=Verdict, max_tokens=MAX_TOKENS)
        deltas = [delta async for delta in stream]
        assert stream.result is not None
        assert "".join(deltas) == stream.result.text
        _assert_valid(stream.result, Verdict)


async def test_generate_many_parses_every_answer(tiny: Any) -> None:
    results = await tiny.generate_many(
        PROMPTS, response_format=VERDICT_SCHEMA, max_tokens=MAX_TOKENS
    )
    assert len(results) == len(PROMPTS)
    for generation in results:
        _assert_valid(generation, dict)


async def test_an_answer_cut_at_max_tokens_raises_with_the_raw_text(tiny: Any) -> None:
    with pytest.raises(OutputValidationError) as caught:
        await tiny.generate(PROMPTS[0], response_format=Verdict, max_tokens=3)
    error = caught.value
    assert error.text and error.text.startswith("{")
    assert error.validation_message
    assert "cut at max_tokens" in str(error)
    assert (error.provider, error.model) == ("local", tiny.model_id)


async def test_top_logprobs_give_each_token_its_alternatives_and_greedy_picks_the_best(
    tiny: Any,
) -> None:
    generation = await tiny.generate(PROMPTS[0], logprobs=True, top_logprobs=3, max_tokens=12)
    logprobs = generation.logprobs
    assert logprobs is not None
    assert len(logprobs) == generation.usage.completion_tokens == 12
    for token in logprobs:
        assert isinstance(token, TokenLogprob)
        assert len(token.top_logprobs) == 3
        values = [lp for _, lp in token.top_logprobs]
        assert values == sorted(values, reverse=True)
        # temperature 0: the chosen token is a most likely one; random weights can tie
        # several tokens at the top, and then any of them may be listed first
        assert token.logprob == pytest.approx(values[0])
        if token.logprob > values[-1]:
            assert (token.token, token.logprob) in token.top_logprobs
        assert token.logprob <= 0.0


async def test_logprobs_without_top_logprobs_give_the_chosen_tokens_only(tiny: Any) -> None:
    generation = await tiny.generate(PROMPTS[0], logprobs=True, max_tokens=5)
    assert generation.logprobs is not None
    assert len(generation.logprobs) == 5
    assert all(t.top_logprobs == () for t in generation.logprobs)
    plain = await tiny.generate(PROMPTS[0], max_tokens=5)
    assert plain.logprobs is None


async def test_stream_logprobs_equal_generate_logprobs(tiny: Any) -> None:
    generation = await tiny.generate(PROMPTS[1], logprobs=True, top_logprobs=2, max_tokens=8)
    stream = tiny.stream(PROMPTS[1], logprobs=True, top_logprobs=2, max_tokens=8)
    _ = [delta async for delta in stream]
    assert stream.result is not None
    assert [t.token for t in stream.result.logprobs] == [t.token for t in generation.logprobs]


async def test_logprobs_under_a_grammar_stay_valid_json(tiny: Any) -> None:
    generation = await tiny.generate(
        PROMPTS[2], response_format=Verdict, logprobs=True, top_logprobs=3, max_tokens=MAX_TOKENS
    )
    assert generation.logprobs is not None
    assert len(generation.logprobs) == generation.usage.completion_tokens
    # after the grammar's mask: forced tokens show 0.0, masked alternatives -inf
    assert any(t.logprob == 0.0 for t in generation.logprobs)
    assert any(lp == -math.inf for t in generation.logprobs for _, lp in t.top_logprobs)
    text = json.dumps(generation.to_dict(), allow_nan=False)  # -inf would raise here
    data = json.loads(text)
    assert data["parsed"] == generation.parsed.model_dump()
    for token, shown in zip(generation.logprobs, data["logprobs"], strict=True):
        assert shown["logprob"] == (token.logprob if math.isfinite(token.logprob) else None)
        for (_, lp), (_, shown_lp) in zip(token.top_logprobs, shown["top_logprobs"], strict=True):
            assert shown_lp == (lp if math.isfinite(lp) else None)


async def test_stored_results_parse_the_same_way_on_resume(tiny: Any, tmp_path: Path) -> None:
    db = tmp_path / "run.sqlite"
    options: dict[str, Any] = {
        "response_format": Verdict,
        "logprobs": True,
        "top_logprobs": 2,
        "max_tokens": MAX_TOKENS,
    }
    first = await tiny.generate_many(PROMPTS[:4], results_db=db, **options)
    again = await tiny.generate_many(PROMPTS[:4], results_db=db, **options)
    assert all(g.from_store for g in again)
    for old, new in zip(first, again, strict=True):
        assert isinstance(new.parsed, Verdict)
        assert new.parsed == old.parsed
        assert new.logprobs == old.logprobs  # -inf and all, as they were
    assert any(lp == -math.inf for g in again for t in g.logprobs for _, lp in t.top_logprobs)


async def test_chat_template_kwargs_reach_the_template(tiny: Any, tiny_name: str) -> None:
    plain = await tiny.generate("hello", max_tokens=1)
    no_thinking = await tiny.generate(
        "hello", max_tokens=1, chat_template_kwargs={"enable_thinking": False}
    )
    assert plain.usage.prompt_tokens is not None and no_thinking.usage.prompt_tokens is not None
    assert no_thinking.usage.prompt_tokens > plain.usage.prompt_tokens
    # as a client (alias) default, on the same engine: it is no engine arg
    async with get_client(
        tiny_name, temperature=0.0, chat_template_kwargs={"enable_thinking": False}, **ENGINE_KWARGS
    ) as client:
        default = await client.generate("hello", max_tokens=1)
        assert client.engine is tiny.engine
    assert default.usage.prompt_tokens == no_thinking.usage.prompt_tokens


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_logprobs": 3}, "top_logprobs needs logprobs=True"),
        ({"chat_template_kwargs": {"tokenize": True}}, "cannot set 'tokenize'"),
        ({"chat_template_kwargs": ["enable_thinking"]}, "must be a table"),
        ({"response_format": {"type": "object", "properties": 3}}, "not a valid JSON Schema"),
        ({"response_format": int}, "neither a pydantic model nor a msgspec.Struct"),
    ],
)
async def test_caller_mistakes_are_named_before_any_request(
    tiny: Any, kwargs: dict[str, Any], message: str
) -> None:
    from model_registry import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=message):
        await tiny.generate("hello", max_tokens=1, **kwargs)
