"""What `prompt` and `run` say while they work: what the backend is loading, `run`'s tally,
its progress (a bar with an ETA on a terminal, a line every few seconds elsewhere) and its
summaries."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import typer

from model_registry._cli.output import safe

#: Seconds of silence before saying what is being loaded.
LOADING_NOTICE_S = 1.0
#: Seconds between progress lines when stderr is not a terminal (a log file, CI).
PROGRESS_EVERY_S = 5.0

_BACKEND_MODULE = {"hosted": "litellm", "local": "vllm"}
_BACKEND_NAME = {"litellm": "LiteLLM", "vllm": "vLLM"}


def _imported(module: str) -> bool:
    """True once `module` is fully imported (not while another thread is importing it)."""
    loaded = sys.modules.get(module)
    spec = getattr(loaded, "__spec__", None)
    return loaded is not None and not getattr(spec, "_initializing", False)


def loading(kind: str, name: str) -> str | None:
    """What a backend of `kind` is loading before its first call, or None when it is ready."""
    module = _BACKEND_MODULE.get(kind)
    if module is None:
        return None
    if not _imported(module):
        return f"loading {_BACKEND_NAME[module]} (the first call on a machine takes seconds)"
    if kind == "local":
        return f"starting the vLLM engine for {name}"
    return None


async def loading_notice(kind: str, name: str) -> None:
    """After a second of silence, say once on stderr what is being loaded (cancel when the
    answer comes)."""
    await asyncio.sleep(LOADING_NOTICE_S)
    what = loading(kind, name)
    if what is not None:
        typer.echo(safe(f"{what}..."), err=True)


@dataclass
class Tally:
    """What a run did so far: for the progress, the summary and an interrupted run."""

    prompts: int
    called: int = 0
    from_store: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    paid: float | None = None  # the cost of this run's own calls

    @property
    def done(self) -> int:
        return self.called + self.from_store

    def add(self, result: object) -> None:
        if isinstance(result, BaseException):
            self.called += 1
            self.failed += 1
            return
        generation: Any = result
        if generation.from_store:
            self.from_store += 1
        else:
            self.called += 1
        usage = generation.usage
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        if generation.cost is not None:
            self.cost = (self.cost or 0.0) + generation.cost
            if not generation.from_store:
                self.paid = (self.paid or 0.0) + generation.cost

    def paid_by_calls(self) -> float | None:
        """The cost of this run's calls: 0 when none succeeded (failed calls are not paid)."""
        return 0.0 if self.called == self.failed else self.paid


def money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunProgress:
    """`run`'s progress on stderr: a rich bar with an ETA on a terminal, else a line every
    `PROGRESS_EVERY_S` seconds (done, failed, cost, rate, ETA)."""

    def __init__(self, name: str, kind: str, tally: Tally) -> None:
        from rich.console import Console

        self._name, self._kind, self._tally = name, kind, tally
        self._started = time.monotonic()
        self._first_call: float | None = None  # when the first call's answer came
        self._calls_at_first = 0
        self._console = Console(stderr=True)
        self._bar: Any = None
        #: Shown after the status (a batch-API run: its jobs' own counts), set by `note`.
        self.detail = ""
        if self._console.is_terminal:
            self._start_bar()

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=self._console,
            transient=True,
        )
        self._task = self._bar.add_task(safe(self._name), total=self._tally.prompts, status="")
        self._bar.start()

    def update(self) -> None:
        """Count a new result (call after `Tally.add`)."""
        if self._first_call is None and self._tally.called:
            self._first_call, self._calls_at_first = time.monotonic(), self._tally.called
        if self._bar is not None:
            self._bar.update(self._task, completed=self._tally.done, status=self.status())

    def status(self) -> str:
        """Failed, cost, rate and ETA; or what the backend is loading."""
        tally = self._tally
        loading_now = None
        if tally.done < tally.prompts and time.monotonic() - self._started > LOADING_NOTICE_S:
            loading_now = loading(self._kind, self._name)
        if loading_now is not None and tally.called == 0:
            return f"{loading_now}..."
        rate = self._rate()
        rate_text = "-" if rate is None else f"{rate:.1f}/s"
        eta = "-" if not rate else _duration((tally.prompts - tally.done) / rate)
        return (
            f"{tally.failed} failed  cost {money(tally.cost)}  {rate_text}  "
            f"ETA {eta}  elapsed {_duration(time.monotonic() - self._started)}"
        ) + (f"  {self.detail}" if self.detail else "")

    def note(self, detail: str) -> None:
        """Show `detail` after the status from now on: on the bar at once, else in a line now."""
        self.detail = detail
        if self._bar is not None:
            self.update()
        else:
            typer.echo(safe(f"progress: {detail}"), err=True)

    def _rate(self) -> float | None:
        """Calls answered per second since the first answer (stored answers are not calls)."""
        if self._first_call is None:
            return None
        seconds = time.monotonic() - self._first_call
        calls = self._tally.called - self._calls_at_first
        return calls / seconds if seconds >= 1 and calls > 0 else None

    async def tick(self) -> None:
        """Refresh the bar each second, or print a line every few seconds (no terminal)."""
        every = 1.0 if self._bar is not None else PROGRESS_EVERY_S
        while True:
            await asyncio.sleep(every)
            if self._bar is not None:
                self.update()
            else:
                tally = self._tally
                typer.echo(
                    safe(f"progress: {tally.done} of {tally.prompts} done, {self.status()}"),
                    err=True,
                )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
