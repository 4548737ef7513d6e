"""The run's story: what the events of a `run` saw (calls, retries by reason, waits for the
limits and cooldowns, fallbacks, cost by the name that answered), told after its summary,
and `--log-json FILE`: every event as one JSON line."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Annotated, Any

import typer

import model_registry
from model_registry._cli.output import fail, scrubber

__all__ = ["LogJsonOption", "RunStory"]

LogJsonOption = Annotated[
    Path | None,
    typer.Option(
        "--log-json",
        metavar="FILE",
        help="Write every event of the run (call_start, retry, call_end, ...) to FILE, one "
        'JSON object a line: {"event": "call_end", ...its fields} (docs/events.md).',
    ),
]


class RunStory:
    """Counts the events of a run (and writes each to `log_json`) from its creation until
    `close()`."""

    def __init__(self, log_json: Path | None) -> None:
        self._log: IO[str] | None = None
        if log_json is not None:
            try:
                self._log = log_json.open("w", encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write the events to {log_json}: {exc.strerror or exc}")
        self._scrub = scrubber()
        self.calls = self.failed = 0
        self.retries: Counter[str] = Counter()
        self.waited: defaultdict[str, float] = defaultdict(float)
        self.fallbacks: Counter[str] = Counter()
        self.cost: dict[str, float | None] = {}
        for name in model_registry.events.EVENT_NAMES:
            model_registry.on(name, self.seen)

    def seen(self, event: Any) -> None:
        """One event: counted, and written to the log."""
        kind = event.kind
        if kind == "call_end" and not event.from_store:
            self._ended(event)
        elif kind == "retry":
            self.retries[event.error] += 1
            if event.retry_after is not None:  # the call waits out its own Retry-After
                self.waited["cooldown"] += event.wait_s
        elif kind == "limiter_wait":
            self.waited[event.limit] += event.seconds
        elif kind == "fallback":
            self.fallbacks[f"{event.from_name} -> {event.to_name}"] += 1
        if self._log is not None:
            import json

            line = json.dumps(event.to_dict(), ensure_ascii=False, default=repr)
            self._log.write(self._scrub(line) + "\n")

    def _ended(self, event: Any) -> None:
        self.calls += 1
        if event.error is not None:
            self.failed += 1
            return
        spent = self.cost.get(event.name, 0.0)
        self.cost[event.name] = None if spent is None or event.cost is None else spent + event.cost

    def close(self) -> None:
        """Stop listening; close the log."""
        for name in model_registry.events.EVENT_NAMES:
            model_registry.off(name, self.seen)
        if self._log is not None:
            self._log.close()
            self._log = None

    def summary(self) -> list[str]:
        """The story in a few lines (none for a run that made no call)."""
        if not self.calls and not self.retries:
            return []
        lines = [
            f"calls: {self.calls} ({self.failed} failed), "
            f"{sum(self.retries.values())} retries{_by(self.retries)}"
        ]
        cooldown = self.waited.get("cooldown", 0.0)
        limits = {k: v for k, v in self.waited.items() if k != "cooldown"}
        if limits or cooldown:
            detail = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(limits.items()))
            lines.append(
                f"waited: {sum(limits.values()):.1f} s for limits"
                f"{f' ({detail})' if detail else ''}, {cooldown:.1f} s for cooldowns"
            )
        if self.fallbacks:
            lines.append(f"fallbacks: {sum(self.fallbacks.values())}{_by(self.fallbacks)}")
        if self.cost:
            from model_registry._cli.progress import money  # with asyncio: not loaded by 'list'

            named = ", ".join(f"{name} {money(cost)}" for name, cost in sorted(self.cost.items()))
            lines.append(f"cost by name that answered: {named}")
        return lines


def _by(counts: Counter[str]) -> str:
    """` (a 2, b 1)`: the counts, most first; empty for none."""
    return f" ({', '.join(f'{k} {n}' for k, n in counts.most_common())})" if counts else ""
