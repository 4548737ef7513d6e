"""Structured output, log-probabilities and reasoning text: one shape for both backends.

`response_format=` takes a pydantic model class, a `msgspec.Struct` type, a JSON Schema
dict, or OpenAI's own `{"type": "json_schema", "json_schema": {...}}` form (an alias's
schema file arrives in that form, read when the alias file loads). `output_schema()` turns
it into an `OutputSchema`: the JSON schema to send (every object closed with
`additionalProperties: false`, which OpenAI's strict mode requires and which keeps a
grammar from letting a local model add keys) and `parse()`, which validates an answer:

- a pydantic class: `model_validate_json` (pydantic is never imported here: the class
  brings it);
- a Struct type: `msgspec.json.decode(text, type=...)`;
- a schema dict: `json.loads`, then `jsonschema` (installed with LiteLLM and vLLM;
  imported on the first validation).

An answer that does not validate raises `OutputValidationError` with the raw text.
`{"type": "json_object"}` and `{"type": "text"}` pass through unparsed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from model_registry.errors import InvalidParameterError, OutputValidationError

__all__ = ["OutputSchema", "output_schema", "strict_schema", "validation_problem"]

SchemaKind = Literal["pydantic", "struct", "schema"]
_PASS_THROUGH = frozenset({"json_object", "text"})
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
#: Keys under which a JSON schema holds sub-schemas (one, a list, or a name -> schema table).
_ONE = ("items", "additionalItems", "not", "if", "then", "else", "contains")
_MANY = ("anyOf", "allOf", "oneOf", "prefixItems")
_TABLES = ("properties", "$defs", "definitions", "patternProperties")


class OutputSchema:
    """A response_format made usable: `json_schema` to send, `wire` for LiteLLM, `parse()`."""

    __slots__ = ("json_schema", "kind", "name", "target", "wire")

    def __init__(self, kind: SchemaKind, target: Any, name: str, json_schema: dict[str, Any]):
        self.kind = kind
        self.target = target
        self.name = name
        self.json_schema = json_schema
        self.wire: Any = (
            target  # LiteLLM sends a pydantic class as json_schema with strict: true itself
            if kind == "pydantic"
            else {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": json_schema, "strict": True},
            }
        )

    def parse(
        self, text: str, *, provider: str, model: str, finish_reason: str | None = None
    ) -> Any:
        """The validated answer (a model instance, a Struct, or plain data), or
        `OutputValidationError` carrying the raw text and what did not validate."""
        problem = self._problem(text)
        if isinstance(problem, _Valid):
            return problem.value
        cut = (
            " (the answer was cut at max_tokens: raise max_tokens)"
            if finish_reason == "length"
            else ""
        )
        excerpt = text if len(text) <= 200 else f"{text[:200]}..."
        raise OutputValidationError(
            f"the answer of {provider} model {model!r} does not validate against "
            f"response_format {self.name!r}{cut}: {problem}; answer: {excerpt!r} "
            "(the whole answer is the error's .text)",
            provider=provider,
            model=model,
            text=text,
            validation_message=problem,
        )

    def _problem(self, text: str) -> _Valid | str:
        if self.kind == "pydantic":
            try:
                return _Valid(self.target.model_validate_json(text))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                return str(exc)
        if self.kind == "struct":
            try:
                return _Valid(msgspec.json.decode(text, type=self.target))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                return str(exc)
        try:
            data = json.loads(text)
        except ValueError as exc:
            return f"not JSON: {exc}"
        error = _validator(_schema_key(self.target))(data)
        return _Valid(data) if error is None else error


class _Valid:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def output_schema(value: Any, *, where: str = "") -> OutputSchema | None:
    """The `OutputSchema` for a response_format value; None for one that passes through
    unparsed (`{"type": "json_object"}`, `{"type": "text"}`, None). A value of another
    kind, or a schema that is no JSON Schema, raises `InvalidParameterError`."""
    if value is None:
        return None
    if isinstance(value, type):
        return _for_class(value, where)
    if isinstance(value, str | os.PathLike):
        raise InvalidParameterError(
            f"response_format{where} is a path ({str(value)!r}): a JSON Schema file is named in "
            'alias defaults (response_format = "schemas/x.json", read when the file loads); '
            "in code pass the schema itself (a dict, as json.load gives it) or a class"
        )
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in _PASS_THROUGH and len(value) == 1:
            return None
        inner = value.get("json_schema")
        if kind == "json_schema" and isinstance(inner, Mapping) and "schema" in inner:
            return _for_dict(inner["schema"], where, name=str(inner.get("name") or ""))
        return _for_dict(value, where)
    raise InvalidParameterError(
        f"response_format{where} must be a pydantic model class, a msgspec.Struct type or a "
        f"JSON Schema dict, got {type(value).__name__}"
    )


@functools.lru_cache(maxsize=256)
def _for_class(cls: type, where: str) -> OutputSchema:
    if callable(getattr(cls, "model_json_schema", None)) and hasattr(cls, "model_validate_json"):
        schema = strict_schema(cls.model_json_schema())  # type: ignore[attr-defined]
        return OutputSchema("pydantic", cls, _wire_name(cls.__name__), schema)
    if issubclass(cls, msgspec.Struct):
        return OutputSchema("struct", cls, _wire_name(cls.__name__), _struct_schema(cls))
    raise InvalidParameterError(
        f"response_format{where}: {cls.__qualname__} is a class but neither a pydantic model "
        "nor a msgspec.Struct; pass one of those, or a JSON Schema dict"
    )


def _for_dict(schema: Any, where: str, name: str = "") -> OutputSchema:
    if not isinstance(schema, Mapping):
        raise InvalidParameterError(
            f"response_format{where}: a JSON Schema must be an object (a dict), got "
            f"{type(schema).__name__}"
        )
    plain = json.loads(json.dumps(schema))  # a copy of plain data, and JSON-able or an error
    problem = _schema_problem(json.dumps(plain, sort_keys=True))
    if problem is not None:
        raise InvalidParameterError(f"response_format{where} is not a valid JSON Schema: {problem}")
    strict = strict_schema(plain)
    title = name or str(plain.get("title") or "response")
    return OutputSchema("schema", strict, _wire_name(title), strict)


def _struct_schema(cls: type) -> dict[str, Any]:
    """msgspec's schema of a Struct with the root `$ref` inlined (providers want an object)."""
    schema = msgspec.json.schema(cls)
    ref = schema.get("$ref", "")
    defs = schema.get("$defs", {})
    if ref.startswith("#/$defs/") and ref[8:] in defs:
        root = dict(defs[ref[8:]])
        others = {k: v for k, v in defs.items() if k != ref[8:] or _mentions(defs, ref)}
        schema = {**root, **({"$defs": others} if others else {})}
    return strict_schema(schema)


def _mentions(defs: Mapping[str, Any], ref: str) -> bool:
    return f'"{ref}"' in json.dumps(defs)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in which every object that lists properties and says nothing of
    others gets `additionalProperties: false`."""
    out = copy.deepcopy(schema)
    _close_objects(out)
    return out


def _close_objects(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for key in _ONE:
        _close_objects(node.get(key))
    for key in _MANY:
        for item in node.get(key) or ():
            _close_objects(item)
    for key in _TABLES:
        table = node.get(key)
        if isinstance(table, dict):
            for item in table.values():
                _close_objects(item)


def _wire_name(name: str) -> str:
    """A schema name as OpenAI takes it: letters, digits, '_' and '-', 64 at most."""
    return (_NAME_CHARS.sub("_", name) or "response")[:64]


def validation_problem(schema: Mapping[str, Any], data: Any) -> str | None:
    """What in `data` does not validate against the JSON Schema `schema`; None when it does."""
    key = _schema_key(dict(schema))
    problem = _schema_problem(key)
    if problem is not None:
        return f"the schema itself is not a valid JSON Schema: {problem}"
    check: Any = _validator(key)
    return check(data)  # type: ignore[no-any-return]


def _schema_key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


@functools.lru_cache(maxsize=256)
def _schema_problem(key: str) -> str | None:
    from jsonschema import SchemaError  # type: ignore[import-untyped]
    from jsonschema.validators import validator_for  # type: ignore[import-untyped]

    schema = json.loads(key)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return None


@functools.lru_cache(maxsize=256)
def _validator(key: str) -> Any:
    """A function data -> None (valid) or what is wrong, for one schema (cached)."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
    from jsonschema.validators import validator_for

    schema = json.loads(key)
    validator = validator_for(schema)(schema)

    def check(data: Any) -> str | None:
        error = best_match(validator.iter_errors(data))
        if error is None:
            return None
        at = "".join(f"[{p!r}]" for p in error.absolute_path)
        return f"{error.message} (at $" + at + ")"

    return check
