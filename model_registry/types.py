"""The data that crosses the library's boundary, and the one client protocol."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypedDict, runtime_checkable

import msgspec

from model_registry.errors import InvalidParameterError

if TYPE_CHECKING:
    from model_registry.resolve import Resolution

__all__ = [
    "REDACTED",
    "ClientKind",
    "Generation",
    "GenerationStream",
    "Message",
    "ModelClient",
    "Prompt",
    "Usage",
    "check_finite",
    "first_non_finite",
    "is_secret_key",
    "redact",
    "secret_values",
    "to_messages",
]

ClientKind = Literal["hosted", "local"]

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


def _redact_item(key: object, value: Any, active: set[int]) -> Any:
    if isinstance(key, str) and is_secret_key(key) and value is not None:
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
    return text


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


def first_non_finite(value: object) -> tuple[str, float] | None:
    """The first nan or inf inside `value` (dicts, lists and tuples walked), as
    (where inside, e.g. "" or ".scale[1]", the number); None when every number is finite."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:  # a stack, not recursion: TOML may nest deeper than Python recurses
        where, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return where, item
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def check_finite(value: object, where: str) -> None:
    """Raise InvalidParameterError when `value` holds nan or inf (at any depth).

    `where` names the value in the message, e.g. "--set temperature" or "kwarg 'extra_body'"
    (a nested one is named after it: "kwarg 'extra_body': inf is not a finite number (at a[1])").
    No parameter means anything as nan or inf, and JSON cannot carry them.
    """
    found = first_non_finite(value)
    if found is not None:
        inside, number = found
        at = f" (at {inside.lstrip('.')})" if inside else ""
        raise InvalidParameterError(
            f"{where}: {number!r} is not a finite number{at}; pass a finite number"
        )


class Message(TypedDict):
    """One chat message, in the OpenAI shape that LiteLLM speaks."""

    role: str
    content: str


Prompt = str | Sequence[Message]


class Usage(msgspec.Struct, frozen=True):
    """Token counts of one call (None where the provider did not report them)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Generation(msgspec.Struct, frozen=True):
    """The answer to one prompt. `raw` is the backend's own response object.

    `cost` is LiteLLM's own figure in USD (None where unknown, e.g. local models);
    `name` is the model name that answered (the client's, or a fallback's);
    `from_store` is True for an answer read back from a results_db instead of a call.
    """

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    provider: str
    latency_s: float
    raw: Any = None
    cost: float | None = None
    name: str | None = None
    from_store: bool = False

    def __repr__(self) -> str:
        return (
            f"Generation(text={self.text!r}, finish_reason={self.finish_reason!r}, "
            f"usage={self.usage!r}, model={self.model!r}, provider={self.provider!r}, "
            f"latency_s={self.latency_s:.3f}, cost={self.cost!r}, name={self.name!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (without `raw`)."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": msgspec.structs.asdict(self.usage),
            "model": self.model,
            "provider": self.provider,
            "latency_s": self.latency_s,
            "cost": self.cost,
            "name": self.name,
            "from_store": self.from_store,
        }


class GenerationStream:
    """Async iterator of text deltas; once exhausted, `result` holds the whole `Generation`.

    Backends feed it an async generator that yields `str` deltas and, last, the `Generation`.
    """

    def __init__(self, events: AsyncGenerator[str | Generation, None]) -> None:
        self._events = events
        self.result: Generation | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        event = await self._events.__anext__()
        if isinstance(event, Generation):
            self.result = event
            await self._events.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop the stream early; the backend request is cancelled."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@runtime_checkable
class ModelClient(Protocol):
    """What `get_client()` returns, for every provider."""

    name: str
    provider: str
    model_id: str
    kind: ClientKind

    @property
    def resolution(self) -> Resolution: ...

    @property
    def closed(self) -> bool: ...

    async def generate(self, prompt: Prompt, **kwargs: Any) -> Generation: ...

    def stream(self, prompt: Prompt, **kwargs: Any) -> GenerationStream: ...

    async def generate_many(
        self,
        prompts: Sequence[Prompt],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> list[Generation | BaseException]: ...

    async def aclose(self) -> None: ...

    def __await__(self) -> Generator[Any, None, Self]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_PROMPT_SHAPE = (
    "pass a string (one user message) or a list of chat messages, "
    "as in [{'role': 'user', 'content': 'Hello'}]"
)


def to_messages(prompt: Prompt) -> list[Message]:
    """The chat messages of a prompt: a string is one user message, a list is checked and kept.

    Raises `InvalidParameterError` (before any network) for anything else, and for text
    that is not valid Unicode (a lone surrogate), naming where it is.
    """
    if isinstance(prompt, str):
        _check_text(prompt, "prompt")
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list | tuple):
        raise InvalidParameterError(
            f"prompt must be a string or a list of messages, got {_describe(prompt)}; "
            + _PROMPT_SHAPE
        )
    if not prompt:
        raise InvalidParameterError(f"prompt is an empty list of messages; {_PROMPT_SHAPE}")
    for i, message in enumerate(prompt):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise InvalidParameterError(
                f"prompt message {i} must be a mapping with 'role' and 'content', "
                f"got {_describe(message)}; {_PROMPT_SHAPE}"
            )
        for key, value in message.items():
            _check_message_value(value, f"prompt message {i} {key!r}")
    return list(prompt)


def _check_message_value(value: object, where: str) -> None:
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, list | tuple):  # content parts: [{"type": "text", "text": ...}]
        for j, part in enumerate(value):
            if isinstance(part, Mapping):
                for key, item in part.items():
                    if isinstance(item, str):
                        _check_text(item, f"{where} part {j} {key!r}")


def _check_text(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(
            f"{where} holds a lone surrogate (U+{ord(text[exc.start]):04X} at index "
            f"{exc.start}), which is not valid Unicode and cannot be sent; fix the text where "
            "it was decoded (e.g. decode with errors='replace') or remove the character"
        ) from None


def _describe(value: object) -> str:
    if value is None:
        return "None"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} ({shown})"
