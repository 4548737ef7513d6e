"""What every client shares: lifecycle, awaitability, streaming wrapper, batches
(generate_many, iter_many; see `_batch`), and the call policy around each attempt
(limits, cooldowns, retries; see `_policy`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar, overload

import anyio

from model_registry._prompts import Prompt
from model_registry.clients._batch import Batch, PromptSource, iterate, keep_at
from model_registry.clients._batch_api import BatchAPIMethods
from model_registry.clients._call_store import (
    CLIENT_DEFAULT,
    CallStores,
    ClientDefault,
    ResultsDb,
)
from model_registry.clients._embed import EmbedMethods
from model_registry.clients._one_call import OneCallMethods
from model_registry.clients._policy.call_limits import CallLimits, call_timeout
from model_registry.clients._policy.call_step import CallStep, close_steps
from model_registry.clients._policy.observed import observed, run_batch
from model_registry.clients._policy.retries import call_with_retries
from model_registry.clients._policy.spend import spent_attempt
from model_registry.errors import ClientClosedError
from model_registry.limits import Limits
from model_registry.types import ClientKind, Generation, Resolution, redact

__all__ = ["BaseClient"]

_T = TypeVar("_T")


class BaseClient(OneCallMethods, EmbedMethods, BatchAPIMethods):
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
        #: The steps of the calls in flight (see `_call_step`); aclose() ends them.
        self._steps: set[anyio.CancelScope] = set()
        self._steps_drained: anyio.Event | None = None
        #: The limits calls run under (see `set_limits`); none bind until it is called.
        self._limits = CallLimits(resolution.provider, resolution.model_id)
        #: The default results_db of its calls and the stores it opened (`_call_store`).
        self._stores = CallStores()

    # --- limits -------------------------------------------------------------------

    def set_limits(
        self,
        provider: Limits | None = None,
        alias: Limits | None = None,
        code: Limits | None = None,
    ) -> None:
        """Apply declared limits (get_client calls this): the provider's, shared by every
        client of the provider, endpoint and key in the process; the name's
        (`[limits."NAME"]`); and `get_client(name, limits=...)`'s, shared by the clients of
        that name made with it. A hosted client always has its provider's limiter
        (unlimited when none is declared), so Retry-After cooldowns reach every client."""
        self._limits.configure(self._resolution, provider, alias, code)

    def set_results_db(self, results_db: ResultsDb) -> None:
        """Make `results_db` (a path or a `ResultStore`) the store of every call and batch of
        this client (get_client calls this); a call's own `results_db=None` turns it off."""
        self._stores.set_default(results_db)

    def cooldown_remaining(self) -> float:
        """Seconds until the pause a Retry-After put on this client's provider ends (0.0
        when none is in force); calls started meanwhile wait it out."""
        return self._limits.cooldown_remaining()

    @observed
    def _call(
        self, prompt: Prompt, kwargs: dict[str, Any], *, batched: bool = False
    ) -> Awaitable[Generation]:
        """One call under the client's limits. Its `timeout` bounds the waits for them too,
        except in a batch (`batched`), where it starts once the call holds them.

        The common path (nothing to wait for) returns `_generate`'s coroutine itself: the
        hot path keeps its chain of coroutines short (see `_policy/__init__.py`)."""
        limits = self._limits
        cooldown = limits.cooldown
        if not limits.binding and (cooldown is None or not cooldown.cooldown_until):
            return self._generate(prompt, kwargs, None)
        return self._limited_call(prompt, kwargs, batched)

    async def _limited_call(
        self, prompt: Prompt, kwargs: dict[str, Any], batched: bool
    ) -> Generation:
        timeout = call_timeout(self.params, kwargs)
        deadline = math.inf if batched else self._deadline(timeout)
        async with self._limits.permit(prompt, kwargs, deadline, timeout) as permit:
            generation = await self._generate(prompt, kwargs, None if batched else deadline)
            if permit is not None:
                permit.report_usage(generation.usage.total_tokens)
            return generation

    def _with_retries(
        self,
        attempt: Callable[[], Awaitable[_T]],
        *,
        retries: int,
        deadline: float,
        timeout_s: float | None,
        loopback: bool = False,
    ) -> Awaitable[_T]:
        """`await attempt()`, retried on a transient error (see `_policy.retries`); between
        attempts the call waits (bounded by `deadline`, cancelled by aclose) and takes its
        limits again."""
        attempt = spent_attempt(self._resolution, attempt)  # max_cost: each attempt reserves
        pause = _Pause(self, deadline, timeout_s)
        return call_with_retries(
            attempt, retries=retries, deadline=deadline, pause=pause, loopback=loopback
        )

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
        if self._steps:
            self._steps_drained = anyio.Event()
            close_steps(self._steps)
            with anyio.CancelScope(shield=True):
                await self._steps_drained.wait()
        if self._started:
            await self._close()
        await self._stores.aclose()

    def _call_step(self, deadline: float, timeout: float | None) -> CallStep:
        """One step of a call (a request, or the wait for a stream's next piece): `with`
        it. Raises ClientClosedError if the client is closed before or during the
        step, RequestTimeoutError once `deadline` (anyio's clock; `math.inf` for none)
        passes: `timeout` bounds the whole call, every retry and piece of a stream included.
        """
        return CallStep(self, deadline, timeout)

    @staticmethod
    def _deadline(timeout: float | None) -> float:
        """The anyio-clock deadline of a call that starts now (`math.inf` for no timeout)."""
        return math.inf if timeout is None else anyio.current_time() + timeout

    # --- calls --------------------------------------------------------------------

    @overload
    async def generate_many(
        self, prompts: PromptSource, *, return_exceptions: Literal[False] = ..., **kwargs: Any
    ) -> list[Generation]: ...
    @overload
    async def generate_many(
        self, prompts: PromptSource, *, return_exceptions: bool, **kwargs: Any
    ) -> list[Generation | BaseException]: ...
    async def generate_many(
        self,
        prompts: PromptSource,
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        results_db: ResultsDb | ClientDefault = CLIENT_DEFAULT,
        max_cost: float | None = None,
        **kwargs: Any,
    ) -> list[Generation] | list[Generation | BaseException]:
        """Generate for every prompt (any iterable), results in input order; kwargs apply to each.

        At most `concurrency` calls run at once (default: the client's own cap). The
        first error cancels the rest and is raised, unless `return_exceptions=True`,
        which puts each error in its prompt's place instead. Either way an error carries
        `.index`, the position of its prompt, also named in a note of its traceback.

        `results_db` (a path, opened and closed here, or a `ResultStore` of yours) keeps
        every result and error as it completes; run the same batch again with it and each
        prompt with a stored success comes back without a call (`from_store=True`), stored
        errors are retried. What finished is committed before this returns or raises
        (first error, cancel or Ctrl-C included). Not given, it is the client's
        (`get_client(name, results_db=...)`); None: no store.

        `max_cost` (USD, hosted models) caps what the batch spends, the results_db's recorded
        cost included: prompts that would pass it are not sent and get BudgetExceededError,
        raised once the calls in flight are stored (docs/spend.md).
        """
        batch = Batch(
            prompts,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=progress,
            results_db=self._stores.for_batch(results_db),
            kwargs=kwargs,
            caller="generate_many",
            max_cost=max_cost,
        )
        self._check_open()
        results: list[Any] = [None] * (batch.total or 0)
        await run_batch(self, batch, keep_at(results))
        return results

    @overload
    def iter_many(
        self, prompts: PromptSource, *, return_exceptions: Literal[False] = ..., **kwargs: Any
    ) -> AsyncGenerator[tuple[int, Generation], None]: ...
    @overload
    def iter_many(
        self, prompts: PromptSource, *, return_exceptions: bool, **kwargs: Any
    ) -> AsyncGenerator[tuple[int, Generation | BaseException], None]: ...
    async def iter_many(
        self,
        prompts: PromptSource,
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        results_db: ResultsDb | ClientDefault = CLIENT_DEFAULT,
        max_cost: float | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """`(index, result)` for every prompt, in completion order (each chunk's stored
        results first); the options are `generate_many`'s, prompts also an async iterable.

        `result` is a `Generation`, or with `return_exceptions=True` the prompt's error
        (with `.index`). Without it the first error cancels the calls in flight and is
        raised from the iterator, after the results before it. To stop early, close the
        iterator (`async with contextlib.aclosing(client.iter_many(...)) as results:`):
        the calls in flight are cancelled and what finished is committed to results_db.
        """
        batch = Batch(
            prompts,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=progress,
            results_db=self._stores.for_batch(results_db),
            kwargs=kwargs,
            caller="iter_many",
            max_cost=max_cost,
        )
        self._check_open()
        items = iterate(lambda emit, room: run_batch(self, batch, emit, room))
        async with contextlib.aclosing(items):
            async for item in items:
                yield item

    # --- for subclasses -----------------------------------------------------------

    def _chain(self) -> Sequence[Resolution]:
        """The names a call may go to, in order (a fallback client's chain)."""
        return (self._resolution,)

    def _store_target(self) -> str:
        """What names the model in this client's result-store keys: its route or model id."""
        return self._resolution.route or self.model_id

    async def _start(self) -> None:
        """Start the backend (once)."""

    async def _close(self) -> None:
        """Release the backend (once, only if started)."""

    async def _generate(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None
    ) -> Generation:
        """One attempt; `deadline` (anyio's clock) is the call's, None: from now on."""
        raise NotImplementedError

    def _stream(
        self, prompt: Prompt, kwargs: dict[str, Any], deadline: float | None
    ) -> AsyncGenerator[str | Generation, None]:
        """One streamed attempt; `deadline` as `_generate`'s."""
        raise NotImplementedError


class _Pause:
    """The wait between two attempts of a call: `seconds`, then the client's limits again,
    as a step of the call (bounded by its deadline, cancelled by aclose). An object, not a
    closure: one is made for every call (see `_litellm_call`)."""

    __slots__ = ("client", "deadline", "timeout_s")

    def __init__(self, client: BaseClient, deadline: float, timeout_s: float | None) -> None:
        self.client, self.deadline, self.timeout_s = client, deadline, timeout_s

    async def __call__(self, seconds: float) -> None:
        client = self.client
        with client._call_step(self.deadline, self.timeout_s):
            await anyio.sleep(seconds)
            await client._limits.before_retry(self.deadline, self.timeout_s)
