"""Calls that got no HTTP answer: refused, reset, cut off, or answered by something that
does not speak HTTP. What LiteLLM calls "Connection error." said with the URL (no
credentials) and what happened.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["connection_message", "exception_text", "is_connection_failure", "not_http"]

#: Exceptions (by class name) that mean no response came: refused, reset, DNS, dropped.
CONNECTION_ERRORS = frozenset(
    {
        "APIConnectionError",
        "ConnectError",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
        "ServerDisconnectedError",
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "ClientConnectionError",
        "ClientOSError",
        "ClientPayloadError",
    }
)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` says no response came (refused, reset, DNS, dropped)."""
    return isinstance(exc, ConnectionError) or type(exc).__name__ in CONNECTION_ERRORS


def not_http(chain: list[BaseException]) -> BaseException | None:
    """The parser's error when the server's answer did not start as HTTP (an SSH banner,
    a database's greeting), else None."""
    for exc in reversed(chain):  # the parser's own error, not those that wrap it
        if type(exc).__name__ == "BadStatusLine" or "status line" in exception_text(exc).lower():
            return exc
    return None


def _request_url(chain: list[BaseException]) -> str | None:
    """The URL the failed request went to, without credentials (no userinfo, no query)."""
    for exc in chain:
        if type(exc).__module__.split(".")[0] not in ("openai", "httpx"):
            continue  # LiteLLM's own exceptions carry a made-up request
        try:
            url = exc.request.url  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):  # httpx: "the .request property has not been set"
            continue
        parts = urllib.parse.urlsplit(str(url))
        if parts.scheme and parts.hostname:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            port = f":{parts.port}" if parts.port is not None else ""
            return f"{parts.scheme}://{host}{port}{parts.path}"
    return None


def connection_message(chain: list[BaseException], message: str) -> str:
    """What a failure with no HTTP answer says: where the request went and what happened."""
    url = _request_url(chain)
    where = f" {url}" if url else ""
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return (
            f"connection refused by{where or ' the server'}: nothing listens there; check "
            "api_base and that the server is running"
        )
    parser_error = not_http(chain)
    if parser_error is not None:
        said = " ".join(exception_text(parser_error).split())[:160]
        return (
            f"the server at{where or ' api_base'} did not answer in HTTP ({said}); check "
            "api_base: its host and port may belong to another service"
        )
    return f"{message} (at{where})" if url else message


def exception_text(exc: BaseException) -> str:
    """An exception's message (LiteLLM's `.message`, else its text), "" if it cannot print."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    try:
        return str(exc)
    except Exception:  # some LiteLLM exceptions fail to print when half-built
        return ""
