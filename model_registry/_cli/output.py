"""What the CLI prints, made safe: escaped control characters, scrubbed secrets, JSON, and
library errors as one message with an exit code."""

from __future__ import annotations

import functools
import json
import os
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

import model_registry
from model_registry._cli.interrupts import EXIT_INTERRUPTED, report

_P = ParamSpec("_P")
_R = TypeVar("_R")


class State:
    """Global flags, set by the top-level callback, and what a failing command was about."""

    debug = False
    #: The model name and kwargs of the running command, to find secrets to keep out of errors.
    call: tuple[str, dict[str, Any]] | None = None


state = State()


# --- safe text --------------------------------------------------------------------

# Control characters (C0, DEL, C1: terminal escapes start with ESC or CSI), lone surrogates
# (unprintable) and the bidirectional overrides (text that displays in another order).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_UNSAFE_KEEP_NEWLINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

# json.dumps escapes C0 itself; its indentation is newlines and spaces.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(text: object, *, newlines: bool = False) -> str:
    """`text` with every control character escaped repr-style (`\\x1b`), so a name or message
    cannot move the cursor, retitle the window or recolour the terminal; `newlines` keeps
    line breaks (for messages of several lines)."""
    pattern = _UNSAFE_KEEP_NEWLINES if newlines else _UNSAFE
    return pattern.sub(_escape_char, str(text))


def printable_answer(text: str) -> str:
    """A model's answer with each lone surrogate (which no encoding can write) as U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def json_text(data: object) -> str:
    """`data` as indented JSON, with the characters `safe` escapes written as JSON's own
    `\\uXXXX` escapes (still valid JSON, and the same strings once parsed)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(data: object) -> None:
    typer.echo(json_text(data))


def echo_lines(lines: Iterable[str]) -> None:
    typer.echo("\n".join(lines))


def echo_lines_err(lines: Iterable[str]) -> None:
    typer.echo(safe("\n".join(lines), newlines=True), err=True)


# --- secrets ----------------------------------------------------------------------

#: Shorter values are not scrubbed from messages (they would hit ordinary words).
_MIN_SECRET_LEN = 5


def _known_secrets() -> set[str]:
    """Secret values this run knows of: provider keys in the environment, and the
    credentials among the running command's kwargs and alias defaults."""
    secrets: set[str] = set()
    try:
        for spec in model_registry.list_providers():
            if spec.api_key_env and os.environ.get(spec.api_key_env):
                secrets.add(os.environ[spec.api_key_env])
        if state.call is not None:
            name, kwargs = state.call
            resolution = model_registry.resolve(name, **kwargs)
            secrets.update(model_registry.secret_values(resolution.params))
    except Exception:  # a broken alias file or name: its own error is the one to show
        pass
    return {s for s in secrets if len(s) >= _MIN_SECRET_LEN}


def scrub(text: str) -> str:
    """`text` with every known secret value replaced by `***`, longest first."""
    return scrubber()(text)


def scrubber() -> Callable[[str], str]:
    """`scrub` with the known secrets looked up once (for many messages)."""
    secrets = sorted(_known_secrets(), key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub


# --- errors -----------------------------------------------------------------------


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr (escaped, secrets scrubbed) and exit."""
    typer.echo(f"error: {safe(scrub(message), newlines=True)}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print `warning: message` on stderr (escaped, secrets scrubbed)."""
    typer.echo(f"warning: {safe(scrub(message), newlines=True)}", err=True)


def print_traceback(exc: BaseException, *, chain: bool) -> None:
    """The traceback of `exc` on stderr (for --debug), secrets scrubbed; `chain=False` leaves
    out its causes, whose messages are a backend's own and may hold what we redacted."""
    text = "".join(traceback.format_exception(exc, chain=chain))
    typer.echo(safe(scrub(text), newlines=True), err=True, nl=False)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Library errors: one message on stderr, exit 1; Ctrl-C: exit 130; usage errors pass."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits pass through
        raise
    except KeyboardInterrupt:
        report(lambda: typer.echo("\ncancelled", err=True))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except model_registry.ModelRegistryError as exc:
        if state.debug:
            print_traceback(exc, chain=False)
        # notes say what the library did about it: the names a fallback chain tried, why
        # a call was not retried
        fail("".join([str(exc), *(f"\n  {note}" for note in getattr(exc, "__notes__", ()))]))
    except Exception as exc:
        if state.debug:
            print_traceback(exc, chain=True)
        fail(
            f"unexpected {type(exc).__name__}: {exc}\n"
            "  (run 'model-registry --debug ...' to see the traceback, and please report it)"
        )


def command(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap a command so library errors print as one message and exit 1; its help is the
    docstring with each paragraph on one line (the terminal wraps it, not the source)."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with reported_errors():
            return func(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    wrapper.__doc__ = unwrapped(func.__doc__ or "")
    return wrapper


def unwrapped(doc: str) -> str:
    """`doc` with the line breaks inside each paragraph turned into spaces."""
    return "\n\n".join(" ".join(part.split()) for part in re.split(r"\n\s*\n", doc.strip()))
