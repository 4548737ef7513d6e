"""Redaction: credentials print as `***` wherever our values are shown.

One rule for every repr, `to_dict`, listing and error message (`redact` for values,
`redact_text` for a message built from them), and the helpers (`shown_repr`, `shown_dict`) through which the value types show themselves.
Part of the bottom layer: it imports nothing of ours.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import msgspec

__all__ = [
    "REDACTED",
    "is_secret_key",
    "redact",
    "redact_text",
    "secret_values",
    "shown_dict",
    "shown_fields",
    "shown_repr",
]

REDACTED = "***"

# A key names a credential when, lower-cased with "-", "." and spaces read as "_", it ends
# with one of these. A suffix match (not a word match) on purpose: "apikey", "accesstoken"
# and "privatekey" are caught, at the price of a false positive like "monkey"; a value
# hidden for nothing costs less than a key shown.
_SECRET_SUFFIXES = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "credentials",
    "authorization",
    "auth",
    "cookie",
    "signature",
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# scheme://userinfo@ : the userinfo (user, or user:password) is hidden whole, since a
# token often sits in the user part (https://ghp_xxx@github.com).
# Tried first: an authority-only userinfo (an "@" in the password included); then, for a
# password with a raw "/", anything up to the last "@" of the URL.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/?#]+@|\S+@)")
# ?name=value or &name=value in a URL, where the name is a credential (Gemini's ?key=...)
_URL_QUERY_PARAM = re.compile(r"([?&;])([^=&#;\s]+)=([^&#;\s]*)")
# "Bearer sk-...", "Basic dXNlcjpwYXNz": the scheme stays, the credential goes
# (a credential-like word: 8+ characters with a digit, so "Basic facts" stays)
_AUTH_SCHEME = re.compile(r"(?i)^\s*(bearer|basic|token)\s+(?=\S*\d)([\w.~+/=:-]{8,})\s*$")
# Ends like a credential but is not one: OpenAI's cache routing hint.
_NOT_SECRETS = frozenset({"prompt_cache_key"})


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a key's value is a credential: a name ending in key, token, secret, password,
    credentials, authorization, auth or cookie, in any case and with `_`, `-` or `.`
    (`api_key`, `x-api-key`, `hf_token`, `Authorization`, `vertex_credentials`); not
    `max_tokens` or `stop_token_ids`."""
    name = _CAMEL_BOUNDARY.sub("_", key).lower().rstrip("_- .")
    return name.endswith(_SECRET_SUFFIXES) and name not in _NOT_SECRETS


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `params` with every credential replaced by `***`, at any depth.

    Hidden: the values of keys named like a credential (see `is_secret_key`; header names
    under `extra_headers` or `headers` included), URL userinfo (`https://user:pass@host` ->
    `https://***@host`), credential query parameters (`?key=...`) and the credential of an
    `Authorization`-style string (`Bearer ***`) in any string value. Dicts, lists and tuples
    are walked; other objects are kept as they are.
    """
    return {k: _redact_item(k, v, set()) for k, v in params.items()}


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` (a message of ours) with each of `secrets` (longest first, as `secret_values`
    gives them) and any URL credential or `Bearer ...` token replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _redact_string(text)


def _redact_item(key: object, value: Any, active: set[int]) -> Any:
    # a flag (`litellm_reads_key=True`) says whether there is a credential, it is not one
    if (
        isinstance(key, str)
        and is_secret_key(key)
        and value is not None
        and not isinstance(value, bool)
    ):
        return REDACTED
    return _redact_value(value, active)


def _redact_value(value: Any, active: set[int]) -> Any:
    if isinstance(value, str):
        return _redact_string(value)
    if not isinstance(value, Mapping | list | tuple):
        return value
    if id(value) in active:  # a container that holds itself
        return "[...]"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {k: _redact_item(k, v, active) for k, v in value.items()}
        items = [_redact_value(v, active) for v in value]
        return items if isinstance(value, list) else tuple(items)
    finally:
        active.discard(id(value))


def _redact_string(text: str) -> str:
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    if "=" in text and ("?" in text or "&" in text or ";" in text):
        text = _URL_QUERY_PARAM.sub(_redact_query_param, text)
    return _AUTH_SCHEME.sub(rf"\1 {REDACTED}", text)


def _redact_query_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    return f"{sep}{name}={REDACTED}" if value and is_secret_key(name) else match.group(0)


_MIN_SECRET_LENGTH = 4


def secret_values(params: Mapping[str, Any]) -> list[str]:
    """Every credential string in `params` (what `redact` hides), longest first.

    For scrubbing free text such as an error message: replace each with `***`, in this
    order. Covers values under credential keys at any depth (each string inside, when the
    value is a table, a list or a JSON object), the token of a `Bearer ...` value, URL
    userinfo and credential query parameters. Strings shorter than 4 characters are left
    out: they are no credential, and scrubbing them would garble the text.
    """
    found: set[str] = set()
    _collect_secrets(params, False, found, set())
    return sorted((s for s in found if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def _collect_secrets(value: Any, secret: bool, found: set[str], active: set[int]) -> None:
    if isinstance(value, str):
        if secret:
            found.update(_parts_of_secret(value, active))
        else:
            found.update(_secrets_in_string(value))
        return
    if not isinstance(value, Mapping | list | tuple) or id(value) in active:
        return
    active.add(id(value))
    if isinstance(value, Mapping):
        for k, v in value.items():
            _collect_secrets(v, secret or (isinstance(k, str) and is_secret_key(k)), found, active)
    else:
        for v in value:
            _collect_secrets(v, secret, found, active)
    active.discard(id(value))


def _parts_of_secret(value: str, active: set[int]) -> set[str]:
    """A credential, and the pieces of it an echo may show: the token after "Bearer", the
    strings of a JSON credential (a service-account file's private key)."""
    parts = {value, value.strip()}
    if value.lstrip().startswith("{"):
        import json  # here: loaded by a JSON credential, not at import

        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        _collect_secrets(decoded, True, parts, active)
    elif len(words := value.split()) > 1:
        parts.add(words[-1])
    return parts


def _secrets_in_string(text: str) -> list[str]:
    if _redact_string(text) == text:
        return []
    out: list[str] = []
    for match in _URL_USERINFO.finditer(text):
        userinfo = text[match.end(1) : match.end() - 1]
        out.append(userinfo)
        out.extend(part for part in userinfo.split(":", 1) if len(part) >= 4)
    for match in _URL_QUERY_PARAM.finditer(text):
        if match.group(3) and is_secret_key(match.group(2)):
            out.append(match.group(3))
    auth = _AUTH_SCHEME.match(text)
    if auth:
        out.append(auth.group(2))
    return out


def shown_fields(
    obj: object, names: Iterable[str], redacted: Collection[str] = ()
) -> dict[str, Any]:
    """The named attributes of `obj`, in order; those named in `redacted` pass through the
    redaction rule (a mapping walked at any depth, a string's URL credentials hidden)."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = _redact_item(name, value, set()) if name in redacted else value
    return out


def shown_repr(
    obj: object,
    names: Iterable[str],
    redacted: Collection[str] = (),
    *,
    formats: Mapping[str, str] | None = None,
    unless_empty: Collection[str] = (),
) -> str:
    """`Type(name=value, ...)` of the named attributes, credentials redacted.

    `formats` gives a format spec per name (`{"latency_s": ".3f"}`) instead of `repr`;
    names in `unless_empty` are left out while their value is empty.
    """
    formats = formats or {}
    parts = [
        f"{name}={format(value, formats[name]) if name in formats else repr(value)}"
        for name, value in shown_fields(obj, names, redacted).items()
        if value or name not in unless_empty
    ]
    return f"{type(obj).__name__}({', '.join(parts)})"


def shown_dict(obj: object, names: Iterable[str], redacted: Collection[str] = ()) -> dict[str, Any]:
    """Plain data for JSON of the named attributes, credentials redacted: a struct inside
    becomes a dict, a tuple a list."""
    return {name: _plain(value) for name, value in shown_fields(obj, names, redacted).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    if isinstance(value, tuple):
        return list(value)
    return value
