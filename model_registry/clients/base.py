"""What every client shares: lifecycle, awaitability, streaming wrapper, generate_many."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

import anyio
import anyio.lowlevel

from model_registry.errors import ClientClosedError, InvalidParameterError, RequestTimeoutError
from model_registry.types import ClientKind, Generation, GenerationStream, Prompt, redact

if TYPE_CHECKING:
    from model_registry.resolve import Resolution

__all__ = ["BaseClient"]


class BaseClient:
    """Base of the hosted and local clients; subclasses fill in `_start`, `_generate`,
    `_stream` and `_close`.

    A client is awaitable (`await client` starts its backend and returns it), an async
    context manager, and starts lazily on its first call otherwise.
    """

    kind: ClassVar[ClientKind]
    #: Default cap of in-flight calls in generate_many (None: no cap).
    default_concurrency: ClassVar[int | None] = None

    def __init__(self, resolution: Resolution) -> None:
        self.name: str = resolution.name
        self.provider: str = resolution.provider
        self.model_id: str = resolution.model_id
        self._resolution = resolution
        self._closed = False
        self._started = False
        self._start_lock: anyio.Lock | None = None
        #: Cancel scopes of the calls in flight (see `_call_step`); aclose() cancels them.
        self._calls: set[anyio.CancelScope] = set()
        self._drained: anyio.Event | None = None

    # --- identity -----------------------------------------------------------------

    @property
    def resolution(self) -> Resolution:
        """How the name resolved (provider, model id, route, merged params, why)."""
        return self._resolution

    @property
    def params(self) -> Mapping[str, Any]:
        """The client's kwargs: alias defaults overridden by get_client() kwargs."""
        return self._resolution.params

    @property
    def closed(self) -> bool:
        """True once aclose() has run."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._started else "not started")
        return (
            f"<{type(self).__name__} name={self.name!r} provider={self.provider!r} "
            f"model_id={self.model_id!r} params={redact(self.params)!r} {state}>"
        )

    # --- lifecycle ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(
                f"the client for {self.name!r} is closed; get a new one with "
                f"get_client({self.name!r})"
            )

    async def start(self) -> Self:
        """Start (or warm) the backend; idempotent. Calls do this on their own."""
        self._check_open()
        if self._started:
            return self
        if self._start_lock is None:
            self._start_lock = anyio.Lock()
        async with self._start_lock:
            self._check_open()
            if not self._started:
                await self._start()
                self._started = True
                if self._closed:  # aclose() ran while the backend was starting
                    await self._close()
                    self._check_open()
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the backend; idempotent. Later calls raise ClientClosedError.

        Calls still in flight are cancelled and raise ClientClosedError; aclose() returns
        once they have all stopped and the backend is released, so nothing of the client
        (no connection, no pool) is left or made again afterwards.
        """
        if self._closed:
            return
        self._closed = True
        if self._calls:
            self._drained = anyio.Event()
            for scope in list(self._calls):
                scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._drained.wait()
        if self._started:
            await self._close()

    @contextlib.contextmanager
    def _call_step(self, deadline: float, timeout: float | None) -> Iterator[None]:
        """Run one step of a call (a request, or the wait for a stream's next piece).

        Raises ClientClosedError if the client is closed before or during the step, and
        RequestTimeoutError once `deadline` (anyio's clock; `math.inf` for none) passes:
        `timeout` bounds the whole call, every retry and every piece of a stream included.
        """
        self._check_open()
        scope = anyio.CancelScope(deadline=deadline)
        self._calls.add(scope)
        try:
            with scope:
                yield
        finally:
            self._calls.discard(scope)
            if self._drained is not None and not self._calls:
                self._drained.set()
        if scope.cancelled_caught:
            self._check_open()
            raise RequestTimeoutError(
                f"no complete answer within timeout={timeout} s (the whole call, retries "
                "included); the request was cancelled",
                provider=self.provider,
                model=self.model_id,
            )

    @staticmethod
    def _deadline(timeout: float | None) -> float:
        """The anyio-clock deadline of a call that starts now (`math.inf` for no timeout)."""
        return math.inf if timeout is None else anyio.current_time() + timeout

    # --- calls --------------------------------------------------------------------

    async def generate(self, prompt: Prompt, **kwargs: Any) -> Generation:
        """One prompt (a string or chat messages) to one `Generation`; kwargs beat the client's."""
        await self.start()
        return await self._generate(prompt, kwargs)

    def stream(self, prompt: Prompt, **kwargs: Any) -> GenerationStream:
        """Text deltas as they arrive; the stream's `result` holds the `Generation` at the end."""
        self._check_open()
        return GenerationStream(self._stream_events(prompt, kwargs))

    async def _stream_events(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        await self.start()
        events = self._stream(prompt, kwargs)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    async def generate_many(
        self,
        prompts: Sequence[Prompt],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Generate for every prompt, results in input order.

        At most `concurrency` calls run at once (default: the client's own cap). The
        first error cancels the rest and is raised, unless `return_exceptions=True`,
        which puts each error in its prompt's place instead. Either way an error carries
        `.index`, the position of its prompt, also named in a note of its traceback.
        """
        prompts = _prompt_list(prompts)
        _check_concurrency(concurrency)
        await self.start()
        cap = concurrency if concurrency is not None else self.default_concurrency
        workers = len(prompts) if cap is None else min(cap, len(prompts))
        results: list[Any] = [None] * len(prompts)
        pending = iter(enumerate(prompts))
        first_error: list[BaseException] = []
        bar = _ProgressBar(len(prompts), self.name) if progress else None

        # `workers` tasks pull prompts from one iterator: the cap holds without a limiter,
        # and a batch of 10,000 prompts costs `workers` tasks, not 10,000.
        async def worker(scope: anyio.CancelScope) -> None:
            first = True
            for index, prompt in pending:
                if not first:
                    # Start the next call on the loop's next turn, as a task waiting on a
                    # semaphore would (asyncio.gather's pattern), not in the middle of the
                    # turn that handles the last answer: measured side by side
                    # (benchmarks/_paired.py), LiteLLM spends 1.5-2% less CPU per call then.
                    await anyio.lowlevel.checkpoint()
                first = False
                try:
                    results[index] = await self._generate(prompt, kwargs)
                except Exception as exc:
                    _mark_index(exc, index, len(prompts))
                    if not return_exceptions:
                        if not first_error:
                            first_error.append(exc)
                        scope.cancel()
                        return
                    results[index] = exc
                if bar is not None:
                    bar.advance()

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker, tg.cancel_scope)
        finally:
            if bar is not None:
                bar.close()
        if first_error:
            raise first_error[0]
        return results

    # --- for subclasses -----------------------------------------------------------

    async def _start(self) -> None:
        """Start the backend (once)."""

    async def _close(self) -> None:
        """Release the backend (once, only if started)."""

    async def _generate(self, prompt: Prompt, kwargs: dict[str, Any]) -> Generation:
        raise NotImplementedError

    def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        raise NotImplementedError


def _prompt_list(prompts: Any) -> list[Any]:
    if isinstance(prompts, str | bytes):
        raise InvalidParameterError(
            "generate_many takes a list of prompts, got a single string: pass "
            "[prompt] (or call generate(prompt) for one prompt)"
        )
    try:
        return list(prompts)
    except TypeError:
        raise InvalidParameterError(
            f"generate_many takes a list of prompts, got {type(prompts).__name__}"
        ) from None


def _check_concurrency(concurrency: Any) -> None:
    if concurrency is None:
        return
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidParameterError(
            f"concurrency must be a whole number of calls, 1 or more (or None for the "
            f"client's default), got {concurrency!r}"
        )


def _mark_index(exc: BaseException, index: int, total: int) -> None:
    """Name the prompt an error of generate_many came from: `.index` and a note."""
    with contextlib.suppress(AttributeError):  # a few built-in exceptions take no attributes
        exc.index = index  # type: ignore[attr-defined]
    exc.add_note(f"(prompt {index} of the {total} given to generate_many)")


class _ProgressBar:
    """A rich progress bar on stderr, imported only when asked for."""

    def __init__(self, total: int, name: str) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=False)
        self._task = self._progress.add_task(name, total=total)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def close(self) -> None:
        self._progress.stop()
