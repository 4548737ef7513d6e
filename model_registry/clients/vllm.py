"""The local adapter: models run in vLLM's async engine, owned by the caller's process.

vLLM is imported lazily (on the first start, in a worker thread), never at
`import model_registry`. `_vllm_params` routes kwargs to engine args, sampling params
and our call options (see its docstring for the rules); `_vllm_engines` holds the
process-wide engine cache (one engine per event loop, model and engine args, shut down
and reaped with its last client); `_vllm_prompt` builds the engine's prompt (images
included); `_vllm_output` tallies a request's outputs into a `Generation`, reasoning and
tool calls read by `_vllm_parsing` and `_vllm_tools`; this one is the client. Structured
output and logprobs: see `_vllm_params` and `_asked`.

A call without `max_tokens` generates until EOS or the context limit (vLLM's own
default would stop at 16 tokens); `n` other than 1 is refused. Calls in flight when
their client closes are aborted in the engine and raise `ClientClosedError`.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from model_registry._embeddings import Embeddings
from model_registry._prompts import Prompt
from model_registry._store_values import local_model_key
from model_registry.clients._vllm_embed import embed_refusal, generate_refusal, vllm_embed
from model_registry.clients._vllm_engines import (
    Engine,
    acquire,
    cached_engines,  # noqa: F401 (tests import it from here)
    engine_starts,  # noqa: F401 (tests import it from here)
    release,
)
from model_registry.clients._vllm_errors import (
    GUARD_HINT,
    bootstrapping_spawned_child,
    call_error,
)
from model_registry.clients._vllm_output import Tally, local_generation
from model_registry.clients._vllm_params import (
    CALL_OPTIONS,  # noqa: F401 (tests import it from here)
    ParamSplit,
    check_call_options,
    check_n,
    engine_args_with_defaults,
    engine_param_names,  # noqa: F401 (tests import it from here)
    local_request,
    model_location,
    require_vllm,
    sampling_param_names,  # noqa: F401 (tests import it from here)
    split_params,
)
from model_registry.clients._vllm_parsing import output_parsing
from model_registry.clients._vllm_prompt import local_prompt
from model_registry.clients._vllm_tools import local_tools
from model_registry.clients.base import BaseClient
from model_registry.errors import (
    APIError,
    ClientClosedError,
    EngineStartError,
    InvalidParameterError,
    RequestTimeoutError,
    ServiceUnavailableError,
)
from model_registry.types import Generation, GenerationStream

if TYPE_CHECKING:
    from model_registry.types import Resolution

__all__: list[str] = []

logger = logging.getLogger("model_registry.vllm")

#: How long aclose() waits for the calls it aborted to unwind before releasing the engine.
_DRAIN_S = 10.0


class VLLMClient(BaseClient):
    """A local model in vLLM's async engine, shared by every client of the same model and
    engine args on the same event loop. See `_vllm_params` for the kwargs rules."""

    kind = "local"
    default_concurrency: ClassVar[int | None] = None

    def __init__(self, resolution: Resolution) -> None:
        require_vllm()
        check_n(resolution.params)
        super().__init__(resolution)
        self._model = model_location(resolution.model_id)
        self._entry: Engine | None = None
        self._split: ParamSplit | None = None
        #: request id -> engine, for the calls in flight; aclose() aborts them.
        self._in_flight: dict[str, Any] = {}
        self._closed_requests: set[str] = set()
        self._drained: anyio.Event | None = None

    @property
    def split(self) -> ParamSplit:
        """The client's kwargs routed to engine args, sampling params and call options."""
        if self._split is None:
            self._split = split_params(self.params)
            check_call_options(self._split.options)
        return self._split

    @property
    def engine(self) -> Any:
        """The running vLLM engine (`AsyncLLM`), once started."""
        return None if self._entry is None else self._entry.engine

    # --- lifecycle -----------------------------------------------------------------

    async def _start(self) -> None:
        if bootstrapping_spawned_child():
            # This process is vLLM's own, re-running the script: fail before starting a
            # second engine, with the fix, rather than with multiprocessing's riddle.
            raise EngineStartError(
                f"the local engine for {self._model!r} could not start: the script started "
                f"it while being re-run in a new process; {GUARD_HINT}"
            )
        if self._split is None:
            # The first import of vLLM takes seconds: keep it off the event loop.
            await anyio.to_thread.run_sync(lambda: self.split)
        entry = await acquire(self._model, engine_args_with_defaults(self.split.engine))
        if self.closed:  # closed while the engine was starting
            await release(entry)
            self._check_open()
        self._entry = entry

    async def _close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        with anyio.CancelScope(shield=True):
            if self._in_flight:
                await self._abort_in_flight()
            await release(entry)

    async def _abort_in_flight(self) -> None:
        self._drained = anyio.Event()
        for request_id, engine in list(self._in_flight.items()):
            self._closed_requests.add(request_id)
            try:
                await engine.abort(request_id)
            except Exception as exc:
                logger.debug("aborting %s failed: %r", request_id, exc)
        with anyio.move_on_after(_DRAIN_S):
            await self._drained.wait()

    def _store_target(self) -> str:
        """A model on disk is named in store keys by its files (as its engine read them at
        start), so retrained weights get new keys and a copy keeps them; a hub id, or a path
        not readable here, by itself (with `model_revision=` in the params, when given)."""
        entry = self._entry
        files_key = entry.files_key if entry is not None else local_model_key(self._model)
        return files_key or self.model_id

    def _closed_error(self) -> ClientClosedError:
        return ClientClosedError(
            f"the client for {self.name!r} was closed (aclose()) while this call was in "
            f"flight; its request was aborted. Get a new client with get_client({self.name!r})"
        )

    # --- calls ---------------------------------------------------------------------

    async def generate(self, prompt: Prompt, **kwargs: Any) -> Generation:
        """One prompt (a string or chat messages) to one `Generation`; kwargs beat the client's."""
        check_n(kwargs)
        return await super().generate(prompt, **kwargs)

    def stream(self, prompt: Prompt, **kwargs: Any) -> GenerationStream:
        """Text deltas as they arrive; the stream's `result` holds the `Generation` at the end."""
        check_n(kwargs)
        return super().stream(prompt, **kwargs)

    async def generate_many(
        self, prompts: Iterable[Prompt] | AsyncIterable[Prompt], **kwargs: Any
    ) -> list[Any]:
        """Generate for every prompt, results in input order (see `BaseClient.generate_many`)."""
        check_n(kwargs)
        return list(await super().generate_many(prompts, **kwargs))

    def iter_many(
        self, prompts: Iterable[Prompt] | AsyncIterable[Prompt], **kwargs: Any
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """`(index, result)` in completion order (see `BaseClient.iter_many`)."""
        check_n(kwargs)
        return super().iter_many(prompts, **kwargs)

    def _cannot_embed(self) -> str | None:
        return embed_refusal(self)

    async def _embed_attempt(
        self, texts: list[str], kwargs: dict[str, Any], deadline: float | None
    ) -> Embeddings:
        return await vllm_embed(self, texts, kwargs, deadline)

    def _call_params(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        check_n(kwargs)
        generate_refusal(self)
        call = split_params(kwargs, where=" in this call")
        if call.engine:
            names = ", ".join(repr(k) for k in call.engine)
            raise InvalidParameterError(
                f"{names} {'is an engine arg' if len(call.engine) == 1 else 'are engine args'}, "
                f"fixed when the engine starts; pass {'it' if len(call.engine) == 1 else 'them'} "
                f"to get_client({self.name!r}, ...) or the alias defaults, not to a call"
            )
        sampling = {**self.split.sampling, **call.sampling}
        options = {**self.split.options, **call.options}
        check_call_options(options)
        return sampling, options

    def _sampling_params(self, sampling: dict[str, Any], delta: bool) -> Any:
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        # No silent 16-token cap: None means "until EOS or the context limit".
        sampling.setdefault("max_tokens", None)
        kind = RequestOutputKind.DELTA if delta else RequestOutputKind.FINAL_ONLY
        try:
            return SamplingParams(**sampling, output_kind=kind)
        except (TypeError, ValueError, VLLMClientError) as exc:
            raise InvalidParameterError(
                f"vLLM rejected the sampling params {sampling!r}: {exc}"
            ) from exc

    async def _generate(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None = None
    ) -> Generation:
        events = self._events(prompt, kwargs, deadline, delta=False)
        try:
            async for event in events:
                if isinstance(event, Generation):
                    return event
        finally:
            await events.aclose()
        raise APIError(
            "the engine ended the request without a result", provider="local", model=self.model_id
        )

    def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None = None
    ) -> AsyncGenerator[str | Generation, None]:
        return self._events(prompt, kwargs, deadline, delta=True)

    def _running_entry(self) -> Engine:
        self._check_open()
        entry = self._entry
        if entry is None or entry.engine is None:
            raise ServiceUnavailableError(
                "the engine is not running", provider="local", model=self.model_id
            )
        return entry

    async def _events(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None, *, delta: bool
    ) -> AsyncGenerator[str | Generation, None]:
        """One request's events; `deadline` (anyio's clock) is the call's, None: `timeout`
        starts now."""
        entry = self._running_entry()
        sampling, options = self._call_params(kwargs)
        asked, top_k = local_request(sampling, options)
        tools = local_tools(sampling, options)
        parsing = output_parsing(entry, self.split.engine, options, tools)
        if parsing is not None:
            parsing.adjust(sampling)
        params = self._sampling_params(sampling, delta)
        template = {**(options.get("chat_template_kwargs") or {})}
        if tools is not None:
            template["tools"] = tools.wire
        engine_prompt, tokenization = await local_prompt(self, entry, prompt, options, template)
        timeout = options.get("timeout")
        engine = entry.engine
        request_id = f"model-registry-{uuid.uuid4().hex}"
        started = time.perf_counter()
        if deadline is None:
            deadline = self._deadline(timeout)
        outputs = engine.generate(
            engine_prompt, params, request_id, tokenization_kwargs=tokenization
        )
        self._in_flight[request_id] = engine
        tally = Tally(delta)
        finished = False
        try:
            while (out := await self._next_output(outputs, deadline, timeout)) is not None:
                if request_id in self._closed_requests:
                    raise self._closed_error()
                text = tally.add(out)
                if delta and parsing is not None:  # no reasoning, no tool-call markup
                    text = parsing.delta(text, out)
                if delta and text and (tools is None or tools.auto):  # JSON calls are no text
                    yield text
                if out.finished:
                    finished = True
                    break
        finally:
            await self._end_request(engine, outputs, request_id, finished)
        yield local_generation(self, tally, started, (asked, top_k), tools, parsing)

    async def _next_output(self, outputs: Any, deadline: float, timeout_s: Any) -> Any:
        """The engine's next output for a request (by `deadline`, anyio's clock), None at
        its end; errors become ours."""
        try:
            if deadline == math.inf:
                return await outputs.__anext__()
            with anyio.fail_after(max(deadline - anyio.current_time(), 0)):
                return await outputs.__anext__()
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise RequestTimeoutError(
                f"no answer within timeout={timeout_s} s; the request was aborted",
                provider=self.provider,
                model=self.model_id,
            ) from None
        except InvalidParameterError:
            raise
        except Exception as exc:
            raise self._call_error(exc) from exc

    async def _end_request(
        self, engine: Any, outputs: Any, request_id: str, finished: bool
    ) -> None:
        try:
            if not finished:
                with anyio.CancelScope(shield=True):
                    await outputs.aclose()
                    try:
                        await engine.abort(request_id)
                    except Exception as exc:
                        logger.debug("aborting %s failed: %r", request_id, exc)
        finally:
            self._in_flight.pop(request_id, None)
            self._closed_requests.discard(request_id)
            if not self._in_flight and self._drained is not None:
                self._drained.set()

    def _call_error(self, exc: Exception) -> Exception:
        return call_error(
            exc, provider=self.provider, model=self.model_id, engine_args=self.split.engine
        )
