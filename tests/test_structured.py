"""response_format handling without a backend: what schema goes out, how an answer is
validated, and how logprobs are shown and kept (no network, no engine)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from model_registry import Generation, InvalidParameterError, OutputValidationError, Usage
from model_registry.clients._asked import openai_logprobs, vllm_logprobs
from model_registry.clients._batch import _generation, _record
from model_registry.clients._structured import output_schema, strict_schema
from model_registry.types import TokenLogprob


class Point(msgspec.Struct):
    x: int
    y: int = 0


class Path2(msgspec.Struct):
    points: list[Point]
    kind: Literal["open", "closed"]


NESTED = {
    "type": "object",
    "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "integer"}}},
        "c": {"type": "array", "items": {"type": "object", "properties": {"d": {}}}},
        "e": {"anyOf": [{"type": "object", "properties": {}}, {"type": "null"}]},
        "f": {"type": "object", "additionalProperties": True, "properties": {}},
    },
    "$defs": {"G": {"type": "object", "properties": {"h": {"type": "string"}}}},
}


def test_every_object_with_properties_is_closed_unless_it_says_otherwise() -> None:
    closed = strict_schema(NESTED)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["a"]["additionalProperties"] is False
    assert closed["properties"]["c"]["items"]["additionalProperties"] is False
    assert closed["properties"]["e"]["anyOf"][0]["additionalProperties"] is False
    assert closed["properties"]["f"]["additionalProperties"] is True
    assert closed["$defs"]["G"]["additionalProperties"] is False
    assert "additionalProperties" not in NESTED  # a copy: the caller's dict is untouched


def test_a_struct_schema_has_an_object_at_its_root() -> None:
    schema = output_schema(Path2)
    assert schema is not None and schema.kind == "struct"
    root = schema.json_schema
    assert root["type"] == "object" and "$ref" not in root
    assert root["required"] == ["points", "kind"]
    assert root["additionalProperties"] is False
    assert root["$defs"]["Point"]["additionalProperties"] is False
    assert schema.wire["json_schema"]["name"] == "Path2"


def test_a_struct_answer_becomes_the_struct() -> None:
    schema = output_schema(Path2)
    assert schema is not None
    parsed = schema.parse('{"points":[{"x":1}],"kind":"open"}', provider="p", model="m")
    assert parsed == Path2(points=[Point(x=1)], kind="open")


@pytest.mark.parametrize(
    "value",
    [None, {"type": "json_object"}, {"type": "text"}],
)
def test_openais_plain_formats_pass_through_unparsed(value: Any) -> None:
    assert output_schema(value) is None


def test_openais_json_schema_form_is_understood() -> None:
    schema = output_schema(
        {"type": "json_schema", "json_schema": {"name": "n 1", "schema": NESTED, "strict": True}}
    )
    assert schema is not None
    assert schema.name == "n_1"
    assert schema.json_schema == strict_schema(NESTED)


def test_a_path_given_in_code_is_refused_with_where_schema_files_go(tmp_path: Path) -> None:
    # schema files are read once, when the alias file that names them loads
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps({"type": "object"}))
    for value in (path, str(path)):
        with pytest.raises(InvalidParameterError) as caught:
            output_schema(value)
        assert str(caught.value) == (
            f"response_format is a path ({str(path)!r}): a JSON Schema file is named in alias "
            'defaults (response_format = "schemas/x.json", read when the file loads); in code '
            "pass the schema itself (a dict, as json.load gives it) or a class"
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"type": "object", "properties": 3}, "is not a valid JSON Schema"),
        ([1, 2], "must be a pydantic model class"),
        (dict, "neither a pydantic model nor a msgspec.Struct"),
    ],
)
def test_a_response_format_that_is_no_schema_is_refused(value: Any, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        output_schema(value)


def test_a_cut_answer_says_to_raise_max_tokens() -> None:
    schema = output_schema({"type": "object"})
    assert schema is not None
    with pytest.raises(OutputValidationError, match="raise max_tokens") as caught:
        schema.parse('{"a": ', provider="local", model="m", finish_reason="length")
    assert caught.value.text == '{"a": '
    assert caught.value.validation_message.startswith("not JSON")


def test_importing_the_package_and_the_schema_module_imports_no_pydantic() -> None:
    code = (
        "import sys, model_registry, model_registry.clients._structured, "
        "model_registry.clients._asked; print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


LOGPROBS = [
    TokenLogprob("{", 0.0, (("{", 0.0), ("a", -math.inf))),
    TokenLogprob("x", -1.5, (("x", -1.5), ("y", -2.0))),
]


def _generation_with(**fields: Any) -> Generation:
    return Generation(
        text='{"a": 1}',
        finish_reason="stop",
        usage=Usage(3, 2, 5),
        model="m",
        provider="p",
        latency_s=0.1,
        **fields,
    )


def test_to_dict_is_valid_json_with_masked_tokens_as_null() -> None:
    data = _generation_with(logprobs=LOGPROBS, parsed=Point(x=1), reasoning="why").to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["logprobs"][0] == {
        "token": "{",
        "logprob": 0.0,
        "top_logprobs": [["{", 0.0], ["a", None]],
    }
    assert back["parsed"] == {"x": 1, "y": 0}
    assert back["reasoning"] == "why"


def test_a_plain_generation_shows_none_of_the_new_fields() -> None:
    generation = _generation_with()
    assert {"parsed", "logprobs", "reasoning"}.isdisjoint(generation.to_dict())
    assert "parsed" not in repr(generation) and "reasoning" not in repr(generation)


def test_a_stored_generation_keeps_logprobs_and_reasoning_and_parses_again() -> None:
    original = _generation_with(logprobs=LOGPROBS, reasoning="why", parsed={"a": 1})
    record = _record(original)
    from model_registry._store_values import decode_extra, encode_extra

    stored = msgspec.structs.replace(record, extra=decode_extra(encode_extra(record.extra)))
    back = _generation(stored, output_schema({"type": "object"}))
    assert back.logprobs == LOGPROBS  # -inf kept
    assert back.reasoning == "why"
    assert back.parsed == {"a": 1}
    assert back.from_store


def test_openai_logprobs_read_objects_and_dicts_alike() -> None:
    content = {
        "content": [
            {"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "a", "logprob": -0.5}]}
        ]
    }
    assert openai_logprobs(content) == [TokenLogprob("a", -0.5, (("a", -0.5),))]
    assert openai_logprobs(None) is None
    assert openai_logprobs({"content": None}) is None


class _Logprob(msgspec.Struct):
    """The fields of vLLM's Logprob that we read."""

    logprob: float
    rank: int | None
    decoded_token: str | None


def test_vllm_logprobs_keep_the_top_k_by_rank_and_the_chosen_token() -> None:
    # the chosen token (7) ranks 3rd with k=2: vLLM adds it; it is no top-2 alternative
    position = {
        7: _Logprob(-2.0, 3, "c"),
        5: _Logprob(-0.5, 1, "a"),
        6: _Logprob(-1.0, 2, "b"),
    }
    assert vllm_logprobs([7], [position], 2) == [
        TokenLogprob("c", -2.0, (("a", -0.5), ("b", -1.0)))
    ]
    assert vllm_logprobs([7], [{7: _Logprob(-2.0, 3, "c")}], 0) == [TokenLogprob("c", -2.0)]
