"""The httpx clients LiteLLM sends through, whose request hook (`call_limits.pace_send`)
takes each request from the call's sends buckets just before it goes out: on the routes
of the openai SDK (OpenAI and OpenAI-compatible servers) `litellm.aclient_session`; on
the routes in `HANDLER_ROUTES` (anthropic, gemini, deepseek, groq, mistral, watsonx, ...)
LiteLLM's own `AsyncHTTPHandler`, given per call as `acompletion(client=)`; on the routes
in `CACHED_ROUTES` (cohere, replicate, ...: they ignore `client=`) the handlers LiteLLM
caches for them, hooked by `hook_litellm_clients` (POSTs only). Other routes are paced at
the limiter only (vertex_ai and oci could not be checked here: their SDKs are not
installed). One connection pool per event loop, shared by the first two;
`close_this_loop` closes the running loop's, so nothing stays open once the last hosted
client closes or a loop ends.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from model_registry.clients._policy.call_limits import pace_send

logger = logging.getLogger("model_registry")

__all__ = [
    "CACHED_ROUTES",
    "HANDLER_ROUTES",
    "close_this_loop",
    "hook_litellm_clients",
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

#: The LiteLLM providers whose chat route ignores `client=` and sends through the
#: `AsyncHTTPHandler` LiteLLM caches per provider (`get_async_httpx_client`); a stream of
#: text-completion-codestral goes through LiteLLM's module-level one. Their POSTs are
#: paced by `hook_litellm_clients` (tests/hosted/test_send_pacing.py checks each route).
CACHED_ROUTES = frozenset(
    {"anthropic_text", "cloudflare", "cohere", "cohere_chat", "replicate",
     "text-completion-codestral"}
)  # fmt: skip
#: How LiteLLM's cache names those handlers: a prefix, then their params, then the provider.
_CACHE_KEY_PREFIX = "async_httpx_client"
_CACHED_PROVIDERS = (*sorted(CACHED_ROUTES), "litellm_module_level_client")

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


async def pace_cached_send(request: httpx.Request) -> None:
    """The request hook of LiteLLM's cached handlers: a POST (a call's request) is paced
    as `pace_send` paces; GETs are not (replicate polls its prediction with them)."""
    if request.method == "POST":
        await pace_send(request)


def _hook(handler: object) -> None:
    """Give `handler` (an `AsyncHTTPHandler`: its `.client` is an httpx client) the hook."""
    client = getattr(handler, "client", None)
    if isinstance(client, httpx.AsyncClient):
        hooks = client.event_hooks["request"]
        if pace_cached_send not in hooks:
            hooks.append(pace_cached_send)


def _ours(key: object) -> bool:
    return (
        isinstance(key, str)
        and key.startswith(_CACHE_KEY_PREFIX)
        and key.endswith(_CACHED_PROVIDERS)
    )


_hooked_cache: Callable[[], object] = lambda: None  # noqa: E731 (a weak reference's call)
_told = False  # that LiteLLM's cached clients are not paced: logged once


def hook_litellm_clients(litellm: Any) -> bool:
    """Make the handlers LiteLLM caches for `CACHED_ROUTES`, and its module-level one,
    carry `pace_cached_send`: those already cached, and those it caches later (its cache's
    `get_cache` and `set_cache` are wrapped, once per cache object). The hook waits only
    inside a paced call. False where LiteLLM no longer looks as read here: those routes
    are then paced at the limiter only, as before."""
    global _hooked_cache, _told
    try:
        cache = litellm.in_memory_llm_clients_cache
        if _hooked_cache() is not cache:
            get_cache, set_cache = cache.get_cache, cache.set_cache

            def get(key: str, *args: Any, **kwargs: Any) -> Any:
                value = get_cache(key, *args, **kwargs)
                if value is not None and _ours(key):
                    _hook(value)
                return value

            def put(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
                if _ours(key):
                    _hook(value)
                return set_cache(key, value, *args, **kwargs)

            cache.get_cache, cache.set_cache = get, put
            _hooked_cache = weakref.ref(cache)
        _hook(litellm.module_level_aclient)
    except Exception as exc:  # a LiteLLM whose cache is not as read here
        if not _told:
            _told = True
            logger.debug("LiteLLM's cached HTTP clients are not paced at the send: %r", exc)
        return False
    return True
