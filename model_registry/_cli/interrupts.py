"""Ctrl-C: exit 130 within two seconds whatever the backend is doing.

The first Ctrl-C cancels the running command (its calls are dropped, what finished is kept)
and arms a deadline; a backend that cannot be cancelled in time (LiteLLM or vLLM being
imported in a worker thread, an engine starting) is left behind: at the deadline the
command's last words are printed, its child processes (engine cores) are stopped, and the
process exits 130 at once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

#: Exit code of a command interrupted with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Seconds a cancelled command has to wind down before the process exits regardless.
GRACE_S = 1.0

_T = TypeVar("_T")


class _Deadline:
    """The armed deadline, and the words to print when a command is cut short."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed = False  # by `main()`: the app run in-process never exits on its own
        self.reported = False
        self.timer: threading.Timer | None = None
        #: Prints what the interrupted command did (a run's summary); set by the command.
        self.last_words: Callable[[], None] | None = None


_deadline = _Deadline()


def install() -> None:
    """Make Ctrl-C raise KeyboardInterrupt and arm the deadline (called at start-up)."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, _on_sigint)
        _deadline.installed = True
        atexit.register(_ignore_from_now_on)


def _ignore_from_now_on() -> None:
    """The last atexit call: Ctrl-C is ignored for the rest of the shutdown. Right after
    the atexit calls the interpreter puts back the default handler of every signal whose
    handler is a Python function, and a Ctrl-C in the ~10 ms of shutdown left then killed
    the process (-2), though its command had finished; an ignored signal stays ignored, so
    the process ends with its command's own exit code."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def quiet() -> None:
    """From now on (the interpreter's shutdown) Ctrl-C exits 130 at once, no traceback.
    After a Ctrl-C it is ignored instead (the armed deadline bounds the exit): late in its
    shutdown the interpreter puts back the default handler, and a second Ctrl-C then
    killed the process (-2) instead of letting it exit 130."""
    with contextlib.suppress(ValueError):
        if _deadline.timer is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGINT, lambda signum, frame: _expire())


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    arm()
    raise KeyboardInterrupt


def arm() -> None:
    """Start the deadline (once, and only in the `model-registry` process: after `install`):
    at its end the process exits 130, whatever still runs."""
    # Held: a Ctrl-C came while this very function ran (waiting would wait for itself, for
    # ever, and Ctrl-C held down then nests handlers up to a RecursionError), or another
    # thread arms or expires it. Either way it is armed.
    if not _deadline.lock.acquire(blocking=False):
        return
    try:
        if _deadline.timer is None and _deadline.installed:
            timer = threading.Timer(GRACE_S, _expire)
            timer.daemon = True
            timer.start()
            _deadline.timer = timer  # once started: the exit is bounded once it is set
    finally:
        _deadline.lock.release()


def set_last_words(words: Callable[[], None] | None) -> None:
    """What to print if the command is cut short at the deadline (`report` prints it once)."""
    _deadline.last_words = words


def report(words: Callable[[], None]) -> None:
    """Print an interrupted command's report, once (the deadline and the command may race),
    and arm the deadline: what still runs after it (threads the interpreter waits for at
    exit) cannot hold the exit."""
    arm()
    # bounded: a Ctrl-C at shutdown may interrupt the main thread while it holds the lock
    locked = _deadline.lock.acquire(timeout=1.0)
    try:
        if _deadline.reported:
            return
        _deadline.reported = True
    finally:
        if locked:
            _deadline.lock.release()
    words()


def _expire() -> None:
    """The deadline passed: print the last words (unless the command did), stop, exit 130."""
    words = _deadline.last_words or _cancelled
    with contextlib.suppress(BaseException):
        report(words)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    with contextlib.suppress(BaseException):  # best effort: nothing may stop the exit
        _stop_children()
    os._exit(EXIT_INTERRUPTED)


def _cancelled() -> None:
    sys.stderr.write("\ncancelled\n")


def _stop_children() -> None:
    """Send SIGTERM to this process's descendants (a local engine's processes shut down on
    it), without waiting for them; Linux only (elsewhere they see their parent go)."""
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            # bytes: no codec lookup, which a Ctrl-C during the interpreter's shutdown
            # (threading's, before the atexit calls) found half-imported (LookupError)
            with open(f"{task.path}/children", "rb") as file:
                for child in map(int, file.read().split()):
                    found += [child, *_descendants(child)]
    return found


def run_async(main: Coroutine[Any, Any, _T]) -> _T:
    """`asyncio.run(main)`, where Ctrl-C cancels `main` (so it can close its calls) and arms
    the deadline; raises KeyboardInterrupt once `main` has ended after a Ctrl-C."""
    import asyncio  # here: loaded by the commands that call a model, not by 'list'

    interrupted = False
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        task = loop.create_task(main)

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            arm()
            if interrupted or task.done():
                raise KeyboardInterrupt
            interrupted = True
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake a loop blocked in select()

        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, on_sigint)
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt
    return result
