"""The values a result store writes: request hashes without credentials, the key of a local
model's files, and the JSON of a result's extra fields (non-finite floats kept). Pure
functions but `local_model_key`, which reads a model's files."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from model_registry._redaction import is_secret_key

__all__ = [
    "ADDRESS_KEYS",
    "USAGE_IN_EXTRA",
    "USAGE_SUMS",
    "content_hash",
    "decode_extra",
    "encode_extra",
    "local_model_key",
    "split_extra",
]

_URL = re.compile(r"(?i)[a-z][a-z0-9+.-]*://\S*")
#: A model file up to this size is read whole; of a larger one (weights), the first
#: `_HEAD` bytes (a safetensors header: every tensor's name, shape and place) and
#: `_SAMPLES` slices of `_SLICE` bytes spread over it, the last one at its end.
_WHOLE = 8 << 20
_HEAD = 1 << 20
_SAMPLES, _SLICE = 32, 64 << 10
#: Files of a model directory that do not change its answers (compared lowercased).
_NOT_MODEL_PREFIXES = (".", "readme", "license", "notice")
#: Where a request is sent, not what it asks: the same model at another address (a test
#: server on a new port, a proxy) finds the same stored answers.
ADDRESS_KEYS = frozenset({"api_base", "base_url"})
#: Usage counts a result keeps in its extra JSON, not in columns of their own: stores written
#: before they existed open as they are, and older versions still read newer stores.
USAGE_IN_EXTRA = ("cached_tokens", "reasoning_tokens")
#: The SQL that sums each of them over the results table (NULL where no row has it).
USAGE_SUMS = ", ".join(f"SUM(json_extract(extra, '$.{name}'))" for name in USAGE_IN_EXTRA)


def content_hash(target: str, messages: Any, params: Mapping[str, Any]) -> str:
    """sha256 (hex) of a request as sorted JSON, without the address it is sent to
    (`ADDRESS_KEYS`) and credentials left out of `params` at any depth: values of keys named
    like a credential, URL userinfo, credential query parameters."""
    import hashlib  # with OpenSSL, 3.7 MiB: loaded by the first store key, not at import

    asked = {k: v for k, v in params.items() if k not in ADDRESS_KEYS}
    content = {"target": target, "messages": messages, "params": _without_secrets(asked)}
    encoded = msgspec.json.encode(content, order="sorted", enc_hook=_encode_other)
    return hashlib.sha256(encoded).hexdigest()


def local_model_key(location: str) -> str | None:
    """`local-files:<sha256>` for a model directory (or single weights file) on disk, from its
    files' names, sizes and bytes, never their times or its path: a copy keeps the key,
    weights retrained in place change it. None where nothing readable is there (a hub id)."""
    import hashlib

    root = Path(location).expanduser()
    digest = hashlib.sha256()
    try:
        if root.is_file():
            _add_bytes(digest, root)
        elif root.is_dir():
            files = sorted(p for p in root.iterdir() if _is_model_file(p))
            if not files:
                return None
            for file in files:
                digest.update(f"{file.name}\0".encode())
                _add_bytes(digest, file)
        else:
            return None
    except OSError:  # unreadable here (weights that live on other machines)
        return None
    return f"local-files:{digest.hexdigest()}"


def _is_model_file(path: Path) -> bool:
    return not path.name.lower().startswith(_NOT_MODEL_PREFIXES) and path.is_file()


def _add_bytes(digest: Any, path: Path) -> None:
    """A file's size and bytes (all of them, or a large file's head and slices) to `digest`."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        digest.update(f"{size}\0".encode())
        for offset, length in _slices(size):
            file.seek(offset)
            digest.update(file.read(length))


def _slices(size: int) -> Iterator[tuple[int, int]]:
    if size <= _WHOLE:
        yield 0, size
        return
    yield 0, _HEAD
    step = (size - _SLICE) // (_SAMPLES - 1)
    for i in range(_SAMPLES):
        yield i * step, _SLICE


def encode_extra(extra: Mapping[str, Any], counts: Iterable[int | None] = ()) -> str:
    """`extra` and the usage `counts` (in `USAGE_IN_EXTRA` order, None left out) as JSON text,
    a non-finite float as `{"$float": "-inf"}`; TypeError or ValueError for what JSON cannot
    hold."""
    given = {k: v for k, v in zip(USAGE_IN_EXTRA, counts, strict=False) if v is not None}
    extra = {**extra, **given} if given else extra
    return msgspec.json.encode(_tag_floats(extra)).decode() if extra else "{}"


def decode_extra(text: str) -> Any:
    """`encode_extra` undone."""
    if text == "{}":
        return {}
    if '"$float"' not in text:
        return msgspec.json.decode(text)
    return json.loads(text, object_hook=_untag_float)


def split_extra(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`encode_extra` undone: the extra fields, and the usage counts by name (None if absent)."""
    extra = decode_extra(text)
    return extra, {name: extra.pop(name, None) for name in USAGE_IN_EXTRA}


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
    """Params msgspec cannot encode: a class (a response_format model, a tool) by its name
    and JSON schema when it has one; a function (a tool) by its name, signature and
    docstring; anything else by its repr."""
    if isinstance(value, type):
        schema = getattr(value, "model_json_schema", None)
        return {"type": f"{value.__module__}.{value.__qualname__}", "schema": schema and schema()}
    if inspect.isfunction(value) or inspect.ismethod(value):
        return {
            "function": f"{value.__module__}.{value.__qualname__}",
            "signature": str(inspect.signature(value)),
            "doc": value.__doc__,
        }
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
