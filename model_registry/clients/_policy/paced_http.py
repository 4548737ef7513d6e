"""The httpx clients LiteLLM sends through, whose request hook (`call_limits.pace_send`)
takes each request from the call's sends buckets just before it goes out: on the routes
of the openai SDK (OpenAI and OpenAI-compatible servers) `litellm.aclient_session`; on
the routes in `HANDLER_ROUTES` (anthropic, gemini, deepseek, groq, mistral, watsonx, ...)
LiteLLM's own `AsyncHTTPHandler`, given per call as `acompletion(client=)`. Other routes
are paced at the limiter only: LiteLLM's handlers of some ignore `client=` (cohere,
replicate, ...), others could not be checked here (vertex_ai, oci: their SDKs are not
installed). One connection pool per event loop, shared by both;
`close_this_loop` closes the running loop's, so nothing stays open once the last hosted
client closes or a loop ends.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from model_registry.clients._policy.call_limits import pace_send

__all__ = [
    "HANDLER_ROUTES",
    "close_this_loop",
    "is_paced_session",
    "paced_handler",
    "paced_session",
]

#: The LiteLLM providers whose chat route sends through an `AsyncHTTPHandler` given as
#: `acompletion(client=)` (read in the installed LiteLLM; tests/hosted/test_send_pacing.py
#: checks each). The openai SDK's routes take `litellm.aclient_session` instead.
HANDLER_ROUTES = frozenset(
    {
        "a2a", "anthropic", "azure_ai", "bedrock", "bedrock_mantle", "bytez", "cometapi",
        "compactifai", "databricks", "databricks_agent", "datarobot", "deepseek", "edenai",
        "fireworks_ai", "gemini", "groq", "heroku", "hosted_vllm", "huggingface",
        "langflow", "langgraph", "lemonade", "microsoft_365_copilot", "minimax", "mistral",
        "nadir", "ollama", "ollama_chat", "opencode_go", "openrouter", "ovhcloud",
        "sagemaker_chat", "sagemaker_nova", "snowflake", "together_ai", "watsonx",
        "watsonx_text", "xai",
    }
)  # fmt: skip

#: Per-call kwargs that choose LiteLLM's HTTP client or its TLS: ours is not given then.
_OWN_HTTP = ("client", "shared_session", "ssl_verify")

# as the openai SDK's own client: many calls in flight share one pool
_POOL = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


class _LoopTransports(httpx.AsyncBaseTransport):
    """An httpx transport per event loop (a pool's connections belong to one loop)."""

    def __init__(self) -> None:
        #: makes each loop's transport (`paced_session(transport=)`)
        self.make: Callable[[], httpx.AsyncBaseTransport | None] = lambda: None
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncBaseTransport
        ] = weakref.WeakKeyDictionary()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        if (transport := self._by_loop.get(loop)) is None:
            transport = self.make() or httpx.AsyncHTTPTransport(limits=_POOL)
            self._by_loop[loop] = transport
        return await transport.handle_async_request(request)

    async def close_this_loop(self) -> None:
        transport = self._by_loop.pop(asyncio.get_running_loop(), None)
        if transport is not None:
            await transport.aclose()

    async def aclose(self) -> None:
        await self.close_this_loop()


class _PacedClient(httpx.AsyncClient):
    """Our httpx client (LiteLLM closes it with its cache; then we make another)."""


_transports = _LoopTransports()
_session: _PacedClient | None = None
_handler: Any = None


def paced_session(
    transport: Callable[[], httpx.AsyncBaseTransport | None] | None = None,
) -> httpx.AsyncClient:
    """The process's paced httpx client (it holds no connection of its own); a new one
    once LiteLLM has closed it (it closes the clients its cache held). `transport()`
    makes each loop's transport (None from it or none given: httpx's own)."""
    global _session
    if transport is not None:
        _transports.make = transport
    if _session is None or _session.is_closed:
        _session = _PacedClient(
            transport=_transports, event_hooks={"request": [pace_send]}, follow_redirects=True
        )
    return _session


def paced_handler(
    route: str,
    params: Mapping[str, Any],
    transport: Callable[[], httpx.AsyncBaseTransport | None] | None = None,
) -> Any:
    """The process's paced `AsyncHTTPHandler` of LiteLLM for `acompletion(client=)`, over
    `paced_session`'s pools (`transport()` as there); None where `route`'s provider is not
    in `HANDLER_ROUTES` or the call brings its own client or TLS setting."""
    global _handler
    if route.split("/", 1)[0] not in HANDLER_ROUTES or not params.keys().isdisjoint(_OWN_HTTP):
        return None
    if transport is not None:
        _transports.make = transport
    if _handler is None:
        from litellm.llms.custom_httpx.http_handler import (
            AsyncHTTPHandler,
            _default_cached_client_timeout,
        )

        _handler = AsyncHTTPHandler(
            timeout=_default_cached_client_timeout(),
            event_hooks={"request": [pace_send]},
            transport=_transports,
        )
    return _handler


async def close_this_loop() -> None:
    """Close the running event loop's connections (the next call opens new ones)."""
    await _transports.close_this_loop()


def is_paced_session(client: object) -> bool:
    """Whether `client` is a paced httpx client of ours (perhaps closed since)."""
    return isinstance(client, _PacedClient)
