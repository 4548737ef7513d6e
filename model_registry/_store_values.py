"""The values a result store writes: request hashes without credentials, and the JSON of a
result's extra fields (non-finite floats kept). Pure functions; `store` is their only user."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from model_registry.types import is_secret_key

__all__ = ["content_hash", "decode_extra", "encode_extra"]

_URL = re.compile(r"(?i)[a-z][a-z0-9+.-]*://\S*")


def content_hash(target: str, messages: Any, params: Mapping[str, Any]) -> str:
    """sha256 (hex) of a request as sorted JSON, credentials left out of `params` at any
    depth: values of keys named like a credential, URL userinfo, credential query parameters."""
    content = {"target": target, "messages": messages, "params": _without_secrets(params)}
    encoded = msgspec.json.encode(content, order="sorted", enc_hook=_encode_other)
    return hashlib.sha256(encoded).hexdigest()


def encode_extra(extra: Mapping[str, Any]) -> str:
    """`extra` as JSON text, a non-finite float as `{"$float": "-inf"}`; raises TypeError or
    ValueError for what JSON cannot hold."""
    return msgspec.json.encode(_tag_floats(extra)).decode() if extra else "{}"


def decode_extra(text: str) -> Any:
    """`encode_extra` undone."""
    if text == "{}":
        return {}
    if '"$float"' not in text:
        return msgspec.json.decode(text)
    return json.loads(text, object_hook=_untag_float)


def _without_secrets(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_url(value) if _URL.fullmatch(value) else value
    if isinstance(value, list | tuple):
        return [_without_secrets(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    kept = {}
    for k, v in value.items():
        cleaned = _without_secrets(v)
        # A table that held only credentials (extra_headers={"Authorization": ...}) is as
        # good as no table.
        if not (isinstance(k, str) and is_secret_key(k)) and (cleaned or not v):
            kept[k] = cleaned
    return kept


def _clean_url(url: str) -> str:
    """`url` without userinfo and credential query parameters."""
    try:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, True) if not is_secret_key(k)]
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def _encode_other(value: Any) -> Any:
    """Params msgspec cannot encode: a class (a response_format model) by its name and JSON
    schema when it has one; anything else by its repr."""
    if isinstance(value, type):
        schema = getattr(value, "model_json_schema", None)
        return {"type": f"{value.__module__}.{value.__qualname__}", "schema": schema and schema()}
    return repr(value)


def _tag_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}  # 'inf', '-inf', 'nan'
    if isinstance(value, msgspec.Struct):  # a TokenLogprob: its floats too
        value = msgspec.structs.asdict(value)
    if isinstance(value, Mapping):
        return {k: _tag_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tag_floats(v) for v in value]
    return value


def _untag_float(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and obj.get("$float") in ("inf", "-inf", "nan"):
        return float(obj["$float"])
    return obj
