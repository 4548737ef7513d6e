"""The hosted adapter: every hosted provider through `litellm.acompletion`.

LiteLLM is imported on the first start of a client (off the event loop), never by
`import model_registry`. Its exceptions map to ours in one place, `map_litellm_error`,
and ours are raised without the original chained (its text may hold a key).
LiteLLM keeps one process-wide pool of HTTP clients; the last hosted client to close
closes that pool, and so does the end of each event loop that used it, so file
descriptors go back to where they were. Its openai SDK routes send through our httpx
client (`litellm.aclient_session`, unless one is set), and its own handler's routes
through ours (`acompletion(client=)`) where limits pace the sends (`_policy.paced_http`).

`timeout` (seconds) bounds a whole call: the waits for its limits (see `_policy`), every
retry, and for a stream every piece up to the final `Generation`; past it the call raises
RequestTimeoutError. It is also passed on to LiteLLM, which applies it to each read.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread
import msgspec

from model_registry._embeddings import Embeddings
from model_registry._prompts import Prompt, to_messages
from model_registry.clients._asked import Asked, HostedStreamExtras, hosted_request
from model_registry.clients._litellm_call import LiteLLMCall
from model_registry.clients._litellm_embed import embeddings_answer
from model_registry.clients._litellm_errors import (
    LITELLM_ERROR_MAP,  # noqa: F401 (tests import it from here)
    invalid_stream_error,
    map_litellm_error,
)
from model_registry.clients._litellm_import import import_litellm as _litellm
from model_registry.clients._litellm_import import imported_litellm
from model_registry.clients._litellm_params import (
    call_secrets,
    check_params,
    key_params,
    log_kwarg_typos,
)
from model_registry.clients._litellm_response import (
    StreamState,
    body_if_not_event_stream,
    refuse_unsupported_logprobs,
    stream_extras,
    whole_answer,
)
from model_registry.clients._policy.paced_http import (
    CACHED_ROUTES,
    close_this_loop,
    hook_litellm_clients,
    is_paced_session,
    paced_handler,
    paced_session,
)
from model_registry.clients._policy.retries import is_loopback, retries_in
from model_registry.clients.base import BaseClient
from model_registry.errors import (
    APIConnectionError,
    InvalidParameterError,
    MissingCredentialsError,
    ModelCallError,
)
from model_registry.types import ClientKind, Generation, Resolution

__all__: list[str] = []

#: Providers whose credentials LiteLLM may find outside the environment (files, metadata
#: servers) or that need none: their variables are not checked at start.
_UNCHECKED_CREDENTIALS = frozenset(
    {"ollama", "ollama_chat", "bedrock", "sagemaker", "vertex_ai", "vertex_ai_beta"}
)
_T = TypeVar("_T")


# --- the client ------------------------------------------------------------------


class LiteLLMClient(BaseClient):
    """A hosted model (OpenAI, Anthropic, Gemini, DeepSeek, OpenAI-compatible) via LiteLLM.

    `aclose()` cancels the calls still in flight (they raise ClientClosedError) and returns
    once they have stopped; the last hosted client to close closes LiteLLM's pool.
    """

    kind: ClassVar[ClientKind] = "hosted"
    default_concurrency: ClassVar[int | None] = 64

    #: Started, not yet closed hosted clients; the last one to close empties LiteLLM's pool.
    _open_clients: ClassVar[weakref.WeakSet[LiteLLMClient]] = weakref.WeakSet()

    def __init__(self, resolution: Resolution) -> None:
        super().__init__(resolution)
        if resolution.route is None:
            raise InvalidParameterError(
                f"{resolution.name!r} is not a hosted model (provider {resolution.provider!r})"
            )
        check_params(self.params, f"get_client({resolution.name!r})")
        retries_in(self.params, f"get_client({resolution.name!r})")
        self._route: str = resolution.route
        # resolve() already put the provider's api_base into params; only keys go here
        self._extra: dict[str, Any] = key_params(resolution.spec, self.params)
        #: `_request_params` of a call without kwargs, once worked out (see there).
        self._plain: tuple[dict[str, Any], float | None, Asked, int] | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def _start(self) -> None:
        if imported_litellm() is None:
            await anyio.to_thread.run_sync(_litellm)
        self._check_litellm_credentials()
        LiteLLMClient._open_clients.add(self)

    def _check_litellm_credentials(self) -> None:
        """For a LiteLLM provider by name (whose key variables only LiteLLM knows), raise
        MissingCredentialsError naming every variable it lacks, before any call."""
        spec = self.resolution.spec
        if spec.api_key_env is not None or not spec.litellm_reads_key:
            return  # ours: key_params checked the key already
        if self.params.get("api_key") or spec.route_prefix in _UNCHECKED_CREDENTIALS:
            return
        api_base = self.params.get("api_base")
        found = _litellm().validate_environment(model=self._route, api_base=api_base)
        missing = [
            var
            for var in found.get("missing_keys") or ()
            if not (api_base and var.endswith(("_API_BASE", "_BASE_URL", "_ENDPOINT")))
        ]
        if missing:
            raise MissingCredentialsError(
                f"no credentials for provider {spec.name!r}: set {' and '.join(missing)} "
                "(or pass api_key=...)",
                provider=spec.name,
                env_var=missing[0],
                env_vars=tuple(missing),
            )

    async def _close(self) -> None:
        LiteLLMClient._open_clients.discard(self)
        if not LiteLLMClient._open_clients:
            await close_litellm_pool()

    # --- calls --------------------------------------------------------------------

    def _prepare(
        self, prompt: Prompt | None, kwargs: Mapping[str, Any], deadline: float | None
    ) -> LiteLLMCall:
        """What one call sends, checked. `deadline` is the call's (None: its timeout starts
        now); `prompt` None: no messages."""
        params, timeout, asked, retries = self._request_params(kwargs)
        messages = [] if prompt is None else to_messages(prompt)
        litellm = _litellm()
        if litellm.aclient_session is None or is_paced_session(litellm.aclient_session):
            # the openai SDK routes send through it: their sends are paced (`_policy`)
            litellm.aclient_session = paced_session(_transport)  # type: ignore[attr-defined]
        if self._limits.paced and (handler := paced_handler(self._route, params, _transport)):
            params["client"] = handler  # LiteLLM's own HTTP handler, with the send hook
        elif self._limits.paced and self._route.split("/", 1)[0] in CACHED_ROUTES:
            hook_litellm_clients(litellm)  # the handlers LiteLLM caches, with the send hook
        if deadline is None:
            deadline = self._deadline(timeout)
        return LiteLLMCall(self, params, messages, asked, deadline, timeout, retries)

    def _request_params(
        self, kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], float | None, Asked, int]:
        """What goes to LiteLLM for one call, checked: its params (a fresh dict), timeout,
        what it asked for and its retries. A call without kwargs takes a copy of the client's,
        worked out once when none of its values is mutable (LiteLLM writes into some)."""
        if not kwargs and (plain := self._plain) is not None:
            params, timeout, asked, retries = plain
            return dict(params), timeout, asked, retries
        params, timeout = self._call_params(kwargs)
        asked = hosted_request(params, f" in a call to {self.name!r}")
        refuse_unsupported_logprobs(params, self.resolution)
        retries = retries_in(params, f"a call to {self.name!r}")
        # the retries are ours (see `_retries`): LiteLLM and the openai SDK make none
        params["num_retries"] = params["max_retries"] = 0
        if not kwargs and not any(isinstance(v, dict | list | set) for v in params.values()):
            self._plain = (dict(params), timeout, asked, retries)
        return params, timeout, asked, retries

    def _call_params(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
        """What goes to LiteLLM for one call (each mutable value a copy), and its timeout."""
        if kwargs:
            check_params(kwargs, f"a call to {self.name!r}")
            log_kwarg_typos(kwargs)
            extra = self._extra
            if "api_base" in kwargs or "api_key" in kwargs:
                extra = key_params(self.resolution.spec, {**self.params, **kwargs})
            params = {**extra, **self.params, **kwargs}
        else:
            params = {**self._extra, **self.params}
        for key, value in params.items():
            if isinstance(value, dict | list | set):
                # LiteLLM writes into some of what it is given (`metadata`): never ours
                params[key] = copy.deepcopy(value)
        return params, params.get("timeout")

    def _attempts(self, call: LiteLLMCall, send: Callable[[], Awaitable[_T]]) -> Awaitable[_T]:
        """`await send()` as a step of `call`, under the call policy's retries (the retry
        loop's coroutine, handed on: see `_policy`'s docstring on the hot path's depth). The
        first call on an event loop watches it first (its end closes LiteLLM's pool)."""
        if asyncio.get_running_loop() not in _loop_watchers:
            return self._first_on_this_loop(call, send)
        call.send = send
        return self._with_retries(
            call,
            retries=call.retries,
            deadline=call.deadline,
            timeout_s=call.timeout,
            loopback=is_loopback(call.params.get("api_base")),
        )

    async def _first_on_this_loop(self, call: LiteLLMCall, send: Callable[[], Awaitable[_T]]) -> _T:
        await _watch_this_loop()
        return await self._attempts(call, send)

    async def _step(
        self, step: Callable[[], Awaitable[_T]], call: LiteLLMCall, attempt: bool = False
    ) -> _T:
        """`await step()` as one step of `call` (see `_call_step`), with its error mapped
        to ours and raised outside `except`: the original (and any key in it) is not chained.
        A 429/503 with Retry-After pauses every client of the provider from now on. An
        `attempt` that got no answer says how many attempts the call has made.
        """
        error: ModelCallError | None = None
        with self._call_step(call.deadline, call.timeout):
            try:
                return await step()
            except Exception as exc:
                error = map_litellm_error(
                    exc,
                    provider=self.provider,
                    model=self.model_id,
                    secrets=call_secrets(self.resolution.spec, call.params),
                )
        assert error is not None
        if attempt and isinstance(error, APIConnectionError):
            call.note_attempts(error)  # the error a retry does not replace ends the call
        self._limits.cool_down(error)
        raise error from None

    async def _generate(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None
    ) -> Generation:
        call = self._prepare(prompt, kwargs, deadline)
        # a partial, not a lambda: no closure a call (see `_litellm_call`)
        send = functools.partial(
            _litellm().acompletion, model=self._route, messages=call.messages, **call.params
        )
        started = time.perf_counter()
        response = await self._attempts(call, send)
        return whole_answer(response, self, time.perf_counter() - started, call.asked)

    async def _embed_attempt(
        self, texts: list[str], kwargs: dict[str, Any], deadline: float | None
    ) -> Embeddings:
        call = self._prepare(None, kwargs, deadline)  # check_texts checked the texts
        send = functools.partial(
            _litellm().aembedding, model=self._route, input=texts, **call.params
        )
        started = time.perf_counter()
        response = await self._attempts(call, send)
        return embeddings_answer(response, self, len(texts), time.perf_counter() - started)

    async def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None
    ) -> AsyncGenerator[str | Generation, None]:
        call = self._prepare(prompt, kwargs, deadline)
        extras = HostedStreamExtras(call.asked)
        if "stream_options" not in call.params:
            # LiteLLM sends this on the wire only where the API takes it (OpenAI-compatible
            # routes) and otherwise uses it to emit the usage it parsed from the stream.
            call.params["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        response = await self._open_stream(call)
        state = StreamState(call.asked.tools)
        try:
            while (chunk := await self._step(lambda: anext(response, None), call)) is not None:
                extras.add(chunk)  # logprobs, reasoning text: never text deltas
                for delta in state.add(chunk):
                    yield delta
            if not state.pieces and getattr(response, "received_finish_reason", None) is None:
                raise self._invalid_stream("", call)
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await response.aclose()
        whole = state.generation(self, time.perf_counter() - started)
        fields = stream_extras(extras, whole, self)
        yield msgspec.structs.replace(whole, **fields)

    async def _open_stream(self, call: LiteLLMCall) -> Any:
        """LiteLLM's stream for this call, once the server has answered with an event stream."""
        litellm = _litellm()

        async def open_it() -> tuple[Any, str | None]:
            response = await litellm.acompletion(
                model=self._route, messages=call.messages, stream=True, **call.params
            )
            return response, await body_if_not_event_stream(response)

        response, body = await self._attempts(call, open_it)
        if body is not None:
            raise self._invalid_stream(body, call)
        return response

    def _invalid_stream(self, body: str, call: LiteLLMCall) -> ModelCallError:
        secrets = call_secrets(self.resolution.spec, call.params)
        return invalid_stream_error(
            body, provider=self.provider, model=self.model_id, secrets=secrets
        )


def _transport() -> Any:
    """The transport LiteLLM gives its own httpx clients (aiohttp unless turned off), with
    its TLS settings (`ssl_verify`, SSL_CERT_FILE)."""
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, get_ssl_configuration

    tls = get_ssl_configuration()
    return AsyncHTTPHandler.create_async_transport(
        ssl_context=tls if isinstance(tls, ssl.SSLContext) else None,
        ssl_verify=tls if isinstance(tls, bool) else None,
    )


# --- LiteLLM's process-wide pool -------------------------------------------------

#: Event loops whose end closes LiteLLM's pool (a suspended async generator per loop).
_loop_watchers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}


async def _watch_loop(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    # Suspended for the loop's lifetime: asyncio.run() closes it in shutdown_asyncgens(),
    # while the loop still runs, so the pool and LiteLLM's logging task go with the loop
    # (a one-liner `asyncio.run(get_client(n).generate(p))` leaves nothing behind).
    try:
        yield
    finally:
        _loop_watchers.pop(loop, None)
        await close_litellm_pool()


async def _watch_this_loop() -> None:
    """Close LiteLLM's pool when the running event loop ends."""
    loop = asyncio.get_running_loop()
    if loop in _loop_watchers:
        return
    for old in [old for old in _loop_watchers if old.is_closed()]:
        del _loop_watchers[old]
    watcher = _watch_loop(loop)
    _loop_watchers[loop] = watcher
    await watcher.__anext__()


async def close_litellm_pool() -> None:
    """Close LiteLLM's cached HTTP clients and forget them, so later calls make new ones."""
    if (litellm := imported_litellm()) is None:
        return
    with anyio.CancelScope(shield=True):
        await litellm.close_litellm_async_clients()
        litellm.in_memory_llm_clients_cache.flush_cache()
        await close_this_loop()  # the paced session's connections (LiteLLM may close it)
        # LiteLLM logs each call from a background task on the caller's loop; stop it too,
        # so nothing of ours or LiteLLM's keeps running once the last client is closed.
        # It restarts by itself on the next call.
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await GLOBAL_LOGGING_WORKER.stop(timeout=5.0)
