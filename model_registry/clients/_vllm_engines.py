"""Local adapter, part 2: the process-wide engine cache.

Engines are cached per (running event loop, model, engine args) and reference-counted:
`await client` (or its first call) acquires one, `aclose()` releases it, and the last
release shuts it down. Clients never closed keep their engine until their event loop
shuts down (asyncio.run / the Runner closes async generators) or the interpreter exits.
A shut-down engine's processes are waited for (reaped), so none is left a zombie.
Every error from an engine start is one of ours (see `_vllm_errors`).
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import multiprocessing
import sys
import threading
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio

from model_registry._store_values import local_model_key
from model_registry.clients._vllm_errors import (
    start_failure,
    unguarded_main_line,
)
from model_registry.clients._vllm_params import import_vllm
from model_registry.types import redact

__all__ = ["CachedEngine", "Engine", "acquire", "cached_engines", "engine_starts", "release"]

logger = logging.getLogger("model_registry.vllm")

#: How long to wait for an engine's processes to exit after shutdown before killing them.
_PROCESS_EXIT_S = 30.0


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


class Engine:
    """One cache entry: an engine (starting or started) and how many clients hold it."""

    def __init__(self, key: _EngineKey, model: str, engine_args: dict[str, Any]) -> None:
        self.key = key
        self.loop = key[0]
        self.model = model
        self.engine_args = engine_args
        self.refs = 0
        self.engine: Any = None
        self.tokenizer: Any = None
        #: (tool-call parser, reasoning parser) -> vLLM's composed Parser class.
        self.parsers: dict[tuple[str | None, str | None], Any] = {}
        #: The model's files as result-store keys name them (`local_model_key`), read just
        #: before the engine loads them; None for a hub id.
        self.files_key: str | None = None
        self.starting: asyncio.Future[None] | None = None
        self.shut_down = False
        #: "script.py:LINE" when the main script started it outside its __main__ guard.
        self.unguarded: str | None = None


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
_engines: dict[_EngineKey, Engine] = {}
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


# --- shutdown ---------------------------------------------------------------------------


def _engine_processes(engine: Any) -> list[Any]:
    """The engine core processes vLLM started for `engine` (multiprocessing processes)."""
    core = getattr(engine, "engine_core", None)
    manager = getattr(getattr(core, "resources", None), "engine_manager", None)
    return list(getattr(manager, "processes", None) or [])


def _reap(processes: list[Any], model: str) -> None:
    # vLLM's shutdown SIGKILLs a core that outlives its grace period but never waits for
    # it, which leaves a zombie per engine: wait for each one here.
    for process in processes:
        try:
            process.join(_PROCESS_EXIT_S)
            if process.exitcode is None:
                logger.warning("the vLLM engine process for %s did not exit; killing it", model)
                process.kill()
                process.join(5)
        except (ValueError, AssertionError, OSError) as exc:
            logger.debug("waiting for a vLLM process of %s failed: %r", model, exc)
    multiprocessing.active_children()  # reaps any other multiprocessing child that ended


def _shutdown_sync(entry: Engine) -> None:
    engine, entry.engine = entry.engine, None
    if engine is None or entry.shut_down:
        return
    entry.shut_down = True
    processes = _engine_processes(engine)
    try:
        engine.shutdown()
    except Exception as exc:  # a shutdown that fails must not mask the caller's error
        logger.warning("shutting down the vLLM engine for %s failed: %r", entry.model, exc)
    _reap(processes, entry.model)


async def _shutdown(entry: Engine) -> None:
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


# --- start ------------------------------------------------------------------------------


def _register_start() -> None:
    global _starts, _atexit_registered
    with _cache_lock:
        if not _atexit_registered:
            # Registered after vLLM's import, so it runs before vLLM's own exit hooks.
            atexit.register(_shutdown_all_at_exit)
            _atexit_registered = True
        _starts += 1


def _engine_objects(engine_args: dict[str, Any]) -> dict[str, Any]:
    """The engine args as AsyncEngineArgs takes them: a `structured_outputs_config` table
    (how aliases write it, and how the cache key holds it) becomes vLLM's config object."""
    config = engine_args.get("structured_outputs_config")
    if not isinstance(config, Mapping):
        return engine_args
    from vllm.config import StructuredOutputsConfig

    return {**engine_args, "structured_outputs_config": StructuredOutputsConfig(**config)}


def _start_engine_sync(entry: Engine) -> None:
    failure = None
    entry.files_key = local_model_key(entry.model)
    try:
        vllm = import_vllm()
        # Building the args resolves the model id (a Hugging Face Hub lookup).
        args = vllm.AsyncEngineArgs(model=entry.model, **_engine_objects(entry.engine_args))
        _register_start()
        engine = vllm.AsyncLLMEngine.from_engine_args(args)
    except Exception as exc:
        failure = start_failure(
            exc, model=entry.model, engine_args=entry.engine_args, unguarded=entry.unguarded
        )
    if failure is not None:
        # Raised outside the except block: no implicit context that could hold a secret.
        raise failure.error from failure.cause
    entry.engine = engine
    try:
        entry.tokenizer = engine.get_tokenizer()
    except Exception:
        entry.tokenizer = None


async def acquire(model: str, engine_args: dict[str, Any]) -> Engine:
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
            entry = Engine(key, model, engine_args)
            _engines[key] = entry
        entry.refs += 1
        if entry.starting is None:
            entry.unguarded = unguarded_main_line(sys._getframe())
            # A task of its own: cancelling one waiter does not cancel the start for the rest.
            entry.starting = loop.create_task(_start(entry))
        starting = entry.starting
    try:
        await asyncio.shield(starting)
    except BaseException:
        await release(entry)
        raise
    return entry


async def _start(entry: Engine) -> None:
    try:
        await anyio.to_thread.run_sync(_start_engine_sync, entry)
    except BaseException:
        with _cache_lock:
            if _engines.get(entry.key) is entry:
                del _engines[entry.key]
        raise


async def release(entry: Engine) -> None:
    """Drop one ref; the last one shuts the engine down (after a start in progress)."""
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
