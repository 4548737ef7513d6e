"""HTTP to a provider's batch endpoints (httpx), with failures mapped to our errors.

The key travels in the headers only; every message is scrubbed of it (and of any other
credential in the call's params) before it is raised. `timeout` bounds each request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from model_registry._redaction import redact_text
from model_registry.clients._litellm_errors import _class_for_status
from model_registry.errors import (
    APIConnectionError,
    APIError,
    ModelCallError,
    RequestTimeoutError,
)

__all__ = ["Wire", "error_for_status"]


def error_for_status(
    status: int | None, message: str, *, provider: str, model: str, secrets: Sequence[str] = ()
) -> ModelCallError:
    """Our error for a provider's answer `status` (None: no status) and its message."""
    klass = APIError if status is None else _class_for_status(status, APIError)
    return klass(redact_text(message, secrets), provider=provider, model=model, status_code=status)


def error_message(body: Any) -> str:
    """The message of an error body: OpenAI's and Anthropic's `{"error": {"message"}}`."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            kind = error.get("type") or error.get("code")
            return f"{error['message']}" + (f" ({kind})" if kind else "")
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return str(body)[:300]


class Wire:
    """One provider's batch endpoints: a base URL, headers holding the key, a timeout."""

    def __init__(
        self,
        base: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None,
        provider: str,
        model: str,
        secrets: Sequence[str],
    ) -> None:
        self.base = base.rstrip("/")
        self.provider, self.model = provider, model
        self._secrets = list(secrets)
        self._headers = dict(headers)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<Wire {self.provider} {redact_text(self.base, self._secrets)}>"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`method` on `path` (under the base URL, or a whole URL); a failure raises ours."""
        url = path if "://" in path else f"{self.base}{path}"
        try:
            response = await self._http().request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise self._error(
                RequestTimeoutError, f"no answer from {url} within timeout={self._timeout} s"
            ) from None
        except httpx.HTTPError as exc:
            raise self._error(
                APIConnectionError, f"could not reach {url}: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            message = f"{method} {url}: {error_message(body)}"
            raise error_for_status(
                response.status_code,
                message,
                provider=self.provider,
                model=self.model,
                secrets=self._secrets,
            )
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of `send`; an answer that is no JSON raises APIError."""
        response = await self.send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise self._error(
                APIError, f"{method} {path}: the answer is not JSON: {response.text[:200]!r}"
            ) from None

    async def lines(self, path: str) -> list[Any]:
        """The JSON lines of a file (a results file)."""
        response = await self.send("GET", path)
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def _error(self, klass: type[ModelCallError], message: str) -> ModelCallError:
        return klass(redact_text(message, self._secrets), provider=self.provider, model=self.model)
