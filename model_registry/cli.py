"""The `model-registry` command line (also `python -m model_registry`).

A thin typer app over the public API: `list`, `resolve`, `prompt`, `validate`.
Plain text for people, `--json` for scripts. A library error or a bad input file is
one message on stderr and exit code 1 (`--debug` adds our error's traceback, never
its chained causes), usage errors exit 2, Ctrl-C exits 130.

What reaches a terminal is safe to show: control characters (terminal escapes) in
names, descriptions and messages print escaped (`\\x1b`), a lone surrogate in a model's
answer prints as U+FFFD, and known secret values never print (`***`).

Startup stays cheap: only `prompt` loads a backend (litellm or vllm), and only the one
its model needs; `resolve --split` loads vLLM to split local kwargs.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import textwrap
import time
import tomllib
import traceback
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar, cast

import typer
from typer.exceptions import TyperException

import model_registry
from model_registry import ModelRegistryError

if TYPE_CHECKING:
    from model_registry import Generation, Message

__all__ = ["app", "main", "parse_sets"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Exit code of a command interrupted with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="model-registry",
    help="Turn model names into clients: list the names, see how one resolves, "
    "send it a test prompt, check alias files.",
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    """Global flags, set by the top-level callback, and what a failing command was about."""

    debug = False
    #: The model name and kwargs of the running command, to find secrets to keep out of errors.
    call: tuple[str, dict[str, Any]] | None = None


_state = _State()


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


def _safe(text: object, *, newlines: bool = False) -> str:
    """`text` with every control character escaped repr-style (`\\x1b`), so a name or message
    cannot move the cursor, retitle the window or recolour the terminal; `newlines` keeps
    line breaks (for messages of several lines)."""
    pattern = _UNSAFE_KEEP_NEWLINES if newlines else _UNSAFE
    return pattern.sub(_escape_char, str(text))


def _printable_answer(text: str) -> str:
    """A model's answer with each lone surrogate (which no encoding can write) as U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _json_text(data: object) -> str:
    """`data` as indented JSON, with the characters `_safe` escapes written as JSON's own
    `\\uXXXX` escapes (still valid JSON, and the same strings once parsed)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --- secrets ----------------------------------------------------------------------

#: Shorter values are not scrubbed from messages (they would hit ordinary words).
_MIN_SECRET_LEN = 5


def _hidden_parts(value: object, shown: object) -> Iterator[str]:
    """The pieces of `value` that its redacted form `shown` hides (a whole value, or the
    password inside a URL), at any depth."""
    if isinstance(value, str) and isinstance(shown, str) and value != shown:
        prefix = _common_prefix_len(value, shown)
        suffix = _common_prefix_len(value[prefix:][::-1], shown[prefix:][::-1])
        hidden = value[prefix : len(value) - suffix] or value
        yield hidden
        # the password of `user:password` in a URL, the token of `Bearer TOKEN` (a part long
        # enough to be a credential, so that "Bearer" itself stays readable)
        yield from (part for part in re.split("[: ]", hidden) if len(part) >= 8)
    elif isinstance(value, Mapping) and isinstance(shown, Mapping):
        for key in value.keys() & shown.keys():
            yield from _hidden_parts(value[key], shown[key])
    elif isinstance(value, list | tuple) and isinstance(shown, list | tuple):
        for item, shown_item in zip(value, shown, strict=False):
            yield from _hidden_parts(item, shown_item)


def _common_prefix_len(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _known_secrets() -> set[str]:
    """Secret values this run knows of: provider keys in the environment, and the
    credentials among the running command's kwargs and alias defaults."""
    secrets: set[str] = set()
    try:
        for spec in model_registry.list_providers():
            if spec.api_key_env and os.environ.get(spec.api_key_env):
                secrets.add(os.environ[spec.api_key_env])
        if _state.call is not None:
            name, kwargs = _state.call
            resolution = model_registry.resolve(name, **kwargs)
            secrets.update(_hidden_parts(dict(resolution.params), resolution.to_dict()["params"]))
    except Exception:  # a broken alias file or name: its own error is the one to show
        pass
    return {s for s in secrets if len(s) >= _MIN_SECRET_LEN}


def _scrub(text: str) -> str:
    """`text` with every known secret value replaced by `***`, longest first."""
    return _scrubber()(text)


def _scrubber() -> Callable[[str], str]:
    """`_scrub` with the known secrets looked up once (for many messages)."""
    secrets = sorted(_known_secrets(), key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return scrub


# --- errors -----------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr (escaped, secrets scrubbed) and exit."""
    typer.echo(f"error: {_safe(_scrub(message), newlines=True)}", err=True)
    raise typer.Exit(code)


def _print_traceback(exc: BaseException, *, chain: bool) -> None:
    """The traceback of `exc` on stderr (for --debug), secrets scrubbed; `chain=False` leaves
    out its causes, whose messages are a backend's own and may hold what we redacted."""
    text = "".join(traceback.format_exception(exc, chain=chain))
    typer.echo(_safe(_scrub(text), newlines=True), err=True, nl=False)


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Library errors: one message on stderr, exit 1; Ctrl-C: exit 130; usage errors pass."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits pass through
        raise
    except KeyboardInterrupt:
        typer.echo("\ncancelled", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ModelRegistryError as exc:
        if _state.debug:
            _print_traceback(exc, chain=False)
        _fail(str(exc))
    except Exception as exc:
        if _state.debug:
            _print_traceback(exc, chain=True)
        _fail(
            f"unexpected {type(exc).__name__}: {exc}\n"
            "  (run 'model-registry --debug ...' to see the traceback, and please report it)"
        )


def _command(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap a command so library errors print as one message and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _reported_errors():
            return func(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


# --- --set KEY=VALUE ----------------------------------------------------------------


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse `KEY=VALUE` items into kwargs; values are TOML (`0.2`, `true`, `[1, 2]`),
    and anything that is not TOML is a plain string (`--set tokenizer_mode=hf`).

    Raises `typer.BadParameter` (exit 2) for an item without `=`, a broken
    array/table/string, or a number that is not finite (`nan`, `inf`).
    """
    kwargs: dict[str, Any] = {}
    for item in items or ():
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise typer.BadParameter(
                f"{item!r} is not KEY=VALUE (e.g. --set temperature=0.2)", param_hint="'--set'"
            )
        if not key.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
            raise typer.BadParameter(
                f"{key!r} is not a valid keyword name (letters, digits and '_')",
                param_hint="'--set'",
            )
        kwargs[key] = _parse_value(key, raw)
    return kwargs


def _parse_value(key: str, raw: str) -> Any:
    """One `--set` value: TOML, or the raw text when it is not TOML."""
    value = raw.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if value[:1] in ("[", "{", '"', "'"):
            raise typer.BadParameter(
                f"{key}={value}: not a valid TOML value ({exc}); "
                "arrays look like [1, 2], strings with spaces like '\"a b\"'",
                param_hint="'--set'",
            ) from None
        return raw
    if not _all_finite(parsed):
        raise typer.BadParameter(
            f"{key}={value}: not a finite number; no parameter takes nan or inf "
            "(give a number such as 0.7, or quote it, '\"nan\"', to send the text)",
            param_hint="'--set'",
        )
    return parsed


def _all_finite(value: object) -> bool:
    """False when a float in `value` (at any depth) is nan or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="A call kwarg (repeatable); the value is TOML: 0.2, true, [1, 2], or a bare word.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


# --- output helpers -------------------------------------------------------------------


def _print_json(data: object) -> None:
    typer.echo(_json_text(data))


def _fmt(value: object) -> str:
    """A kwarg value as TOML-ish text: strings quoted, booleans lower case."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _fmt_params(params: Mapping[str, Any], sep: str = "\n") -> str:
    return sep.join(f"{_safe(key)}={_safe(_fmt(value))}" for key, value in params.items())


def _width() -> int | None:
    """The terminal's width in columns (`COLUMNS` first); None when stdout is no terminal."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout is not None and sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _columns(rows: Sequence[Sequence[str]], width: int | None) -> Iterator[str]:
    """Rows as aligned columns (two spaces apart) that fit `width`.

    A cell is never cut: where a row does not fit, the rest of it goes on the next line
    (aligned under its column where there is room); a cell wider than the terminal is
    alone on its line. The first column is as wide as lets the most rows fit on one line,
    so one long name does not push the others past the edge.
    """
    limit = width or sys.maxsize
    widths = [max(_cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]
    if width is not None:
        widths[0] = _first_column_width(rows, widths, width)
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
    for row in rows:
        line = ""
        for start, cell in zip(starts, row, strict=True):
            at = max(start, _cell_len(line) + 2 if line else 0)
            if line and at + _cell_len(cell) > limit:
                yield line
                line, at = "", start if start + _cell_len(cell) <= limit else 0
            line += " " * (at - _cell_len(line)) + cell
        yield line.rstrip()


def _first_column_width(rows: Sequence[Sequence[str]], widths: list[int], width: int) -> int:
    """The first column's width that lets the most rows fit `width` on one line."""
    middle = sum(widths[1:-1]) + 2 * (len(widths) - 1)

    def fitting(first: int) -> int:
        return sum(
            _cell_len(row[0]) <= first and first + middle + _cell_len(row[-1]) <= width
            for row in rows
        )

    candidates = sorted({_cell_len(row[0]) for row in rows})
    return max(candidates, key=lambda first: (fitting(first), first))


def _fields(items: Iterable[tuple[str, str]], width: int | None, indent: int = 0) -> Iterator[str]:
    """`label  value` lines, values aligned and word-wrapped to `width` (a word, such as a
    name or a path, is never broken; one wider than the terminal overflows)."""
    items = list(items)
    label_width = max(len(label) for label, _ in items) + 2
    pad = " " * (indent + label_width)
    for label, value in items:
        first = " " * indent + label.ljust(label_width)
        for n, part in enumerate(value.splitlines() or [""]):
            lead = first if n == 0 else pad
            if width is None:
                yield (lead + part).rstrip()
                continue
            wrapped = textwrap.wrap(
                part,
                width=max(width, len(lead) + 1),
                initial_indent=lead,
                subsequent_indent=pad,
                break_long_words=False,
                break_on_hyphens=False,
            )
            yield from wrapped or [lead.rstrip()]


def _echo_lines(lines: Iterable[str]) -> None:
    typer.echo("\n".join(lines))


# --- top level ------------------------------------------------------------------------


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"model-registry {model_registry.__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _main_callback(
    ctx: typer.Context,
    list_models: Annotated[
        bool, typer.Option("--list-models", help="Same as the 'list' command.")
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="MODEL_REGISTRY_DEBUG", help="Show tracebacks for errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Model names for pipelines: hosted APIs via LiteLLM, local weights via vLLM."""
    _state.debug = debug
    _state.call = None
    if ctx.invoked_subcommand is not None:
        if list_models:
            raise typer.BadParameter(
                f"--list-models is a command of its own; drop it or the '{ctx.invoked_subcommand}' command",
                param_hint="'--list-models'",
            )
        return
    if list_models:
        with _reported_errors():
            _list(provider=None, full=False, as_json=False)
        return
    typer.echo(ctx.get_help())


def main() -> None:
    """Entry point of the `model-registry` console script.

    `kill -USR1 PID` prints every thread's stack on stderr (where a slow prompt waits).
    """
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        with contextlib.suppress(OSError, ValueError):  # stderr is no file
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show a character
    try:
        app(prog_name="model-registry")
    except KeyboardInterrupt:  # before a command started (Python's own start-up, imports)
        sys.stderr.write("\ncancelled\n")
        sys.exit(EXIT_INTERRUPTED)


# --- list -------------------------------------------------------------------------------


@app.command("list")
@_command
def list_command(
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help="Only this provider's aliases (and the provider)."),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            "-l",
            help="Every detail of each alias and provider: model id, defaults, "
            "description, source file.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the aliases of the layered alias files (name, provider, route), and the providers."""
    _list(provider=provider, full=full, as_json=as_json)


def _list(*, provider: str | None, full: bool, as_json: bool) -> None:
    aliases = model_registry.list_available_models()
    providers = model_registry.list_providers()
    if provider is not None:
        if provider not in {p.name for p in providers}:
            _fail(
                f"unknown provider {provider!r} for --provider; known providers: "
                + ", ".join(p.name for p in providers)
            )
        aliases = [a for a in aliases if a.provider == provider]
        providers = [p for p in providers if p.name == provider]
    if as_json:
        alias_data = [{**a.to_dict(), "source": os.path.abspath(a.source)} for a in aliases]
        _print_json({"aliases": alias_data, "providers": [p.to_dict() for p in providers]})
        return
    width = _width()
    lines: list[str] = []
    if not aliases:
        lines.append("no aliases" + (f" for provider {_safe(repr(provider))}" if provider else ""))
    elif full:
        lines += _alias_records(aliases, width)
    else:
        rows = [("alias", "provider", "route")]
        rows += [(_safe(a.name), _safe(a.provider), _safe(_target(a))) for a in aliases]
        lines += _columns(rows, width)
    lines.append("")
    lines += _provider_records(providers, width) if full else _provider_rows(providers, width)
    _echo_lines(lines)


def _target(alias: model_registry.Alias) -> str:
    """What an alias calls: its LiteLLM route, or for a local model the model vLLM loads."""
    return alias.route if alias.route is not None else alias.model_id


def _alias_records(aliases: Sequence[model_registry.Alias], width: int | None) -> Iterator[str]:
    """Each alias as a block: its name, then every field of `to_dict()`, one per line."""
    for n, alias in enumerate(aliases):
        if n:
            yield ""
        yield _safe(alias.name)
        data = alias.to_dict()
        data["source"] = alias.source
        yield from _fields(
            (
                (key.replace("_", " "), _record_value(value))
                for key, value in data.items()
                if key != "name"
            ),
            width,
            indent=2,
        )


def _record_value(value: object) -> str:
    """A field of --full: a mapping as `key=value` lines, a list comma-separated, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return _fmt_params(value) or "(none)"
    if isinstance(value, list | tuple):
        return _safe(", ".join(str(v) for v in value)) or "(none)"
    return _safe(value) or "-"


def _provider_rows(
    providers: Sequence[model_registry.ProviderSpec], width: int | None
) -> Iterator[str]:
    rows = [("provider", "kind", "key", "default model")]
    for spec in providers:
        key = "-"
        if spec.api_key_env:
            key = f"{spec.api_key_env} ({'set' if spec.api_key_set else 'not set'})"
        rows.append((_safe(spec.name), spec.kind, _safe(key), _safe(spec.default_model or "-")))
    return _columns(rows, width)


def _provider_records(
    providers: Sequence[model_registry.ProviderSpec], width: int | None
) -> Iterator[str]:
    for n, spec in enumerate(providers):
        if n:
            yield ""
        yield f"provider {_safe(spec.name)}"
        data = spec.to_dict()
        yield from _fields(
            (
                (key.replace("_", " "), _record_value(value))
                for key, value in data.items()
                if key != "name"
            ),
            width,
            indent=2,
        )


# --- resolve ----------------------------------------------------------------------------


@app.command("resolve")
@_command
def resolve_command(
    name: Annotated[str, typer.Argument(help="A model name: alias, provider:model, route, ...")],
    sets: SetOption = None,
    split: Annotated[
        bool,
        typer.Option(
            "--split",
            help="Local models: show which kwargs go to vLLM's engine and which to sampling "
            "(imports vLLM, takes seconds).",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse a model id missing from LiteLLM's model list (exit 1) instead of "
            "warning (default: MODEL_REGISTRY_STRICT).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show what NAME resolves to (provider, model id, route, kwargs) and the rule that matched;
    warnings (a model id LiteLLM does not list, with the closest known ones) go to stderr."""
    kwargs = parse_sets(sets)
    _state.call = (name, kwargs)
    resolution = model_registry.resolve(name, strict=True if strict else None, **kwargs)
    for warning in resolution.warnings:
        typer.echo(f"warning: {_safe(_scrub(warning), newlines=True)}", err=True)
    data = resolution.to_dict()
    split_data: dict[str, Any] | None = None
    if split:
        split_data = _split(resolution)
        data["split"] = split_data
    if as_json:
        _print_json(data)
        return
    rows = [
        ("name", _safe(resolution.name)),
        ("rule", _safe(resolution.source)),
        ("provider", f"{_safe(resolution.provider)} ({resolution.kind})"),
        ("model id", _safe(resolution.model_id)),
        ("route", _safe(resolution.route or "- (local: vLLM, no LiteLLM route)")),
    ]
    if resolution.alias is not None:
        rows.append(("alias", _safe(resolution.alias)))
    rows.append(("kwargs", _fmt_params(data["params"]) or "(none)"))
    if split_data is not None:
        labels = {"engine": "engine args", "sampling": "sampling params", "options": "call options"}
        for part, params in split_data.items():
            rows.append((labels.get(part, part), _fmt_params(params) or "(none)"))
    _echo_lines(_fields(rows, _width()))


def _split(resolution: model_registry.Resolution) -> dict[str, Any]:
    """The engine/sampling split of a local resolution's kwargs, from the vLLM adapter."""
    if resolution.kind != "local":
        _fail(
            f"--split is for local models; {resolution.name!r} resolves to the hosted "
            f"provider {resolution.provider!r}, whose kwargs all go to LiteLLM"
        )
    from model_registry.clients.vllm import split_params  # not public yet (issue 17)

    redact = model_registry.redact
    split = split_params(resolution.params)
    return {
        "engine": redact(split.engine),
        "sampling": redact(split.sampling),
        "options": redact(split.options),
    }


# --- prompt -----------------------------------------------------------------------------


@app.command("prompt")
@_command
def prompt_command(
    name: Annotated[str, typer.Argument(help="A model name (see 'model-registry list').")],
    text: Annotated[
        str | None,
        typer.Argument(help="The prompt; '-' or nothing reads it from stdin.", show_default=False),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", help="A system message before the prompt.")
    ] = None,
    sets: SetOption = None,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Print the answer as it arrives (default: when stdout is a terminal).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send one test prompt to NAME and print the answer, then finish reason, usage and latency."""
    kwargs = parse_sets(sets)
    _state.call = (name, kwargs)
    text = _read_prompt(text)
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    if stream is None:
        stream = sys.stdout.isatty()
    if as_json:
        stream = False
    generation = asyncio.run(_prompt(name, messages, kwargs, stream=stream, echo=not as_json))
    if as_json:
        _print_json(generation.to_dict())
    else:
        _print_footer(generation)


_PASS_A_PROMPT = "pass the prompt as an argument (model-registry prompt NAME 'TEXT') or pipe it in"


def _read_prompt(text: str | None) -> str:
    """The prompt: the argument, or stdin for '-' or none. Raises `typer.BadParameter`
    (exit 2) when there is none to read, or it is empty."""
    if text is not None and text != "-":
        if not text.strip():
            raise typer.BadParameter(f"the prompt is empty; {_PASS_A_PROMPT}", param_hint="'TEXT'")
        return text
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        raise typer.BadParameter(f"stdin is closed; {_PASS_A_PROMPT}", param_hint="'TEXT'")
    if text is None and stdin.isatty():
        raise typer.BadParameter(
            "give the prompt as an argument, or pipe it in (TEXT '-' reads stdin)",
            param_hint="'TEXT'",
        )
    try:
        read = stdin.read().removesuffix("\n")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise typer.BadParameter(
            f"cannot read the prompt from stdin ({exc}); {_PASS_A_PROMPT} as UTF-8 text",
            param_hint="'TEXT'",
        ) from None
    if not read.strip():
        raise typer.BadParameter(
            f"the prompt read from stdin is empty; {_PASS_A_PROMPT}", param_hint="'TEXT'"
        )
    return read


async def _prompt(
    name: str, messages: list[Message], kwargs: dict[str, Any], *, stream: bool, echo: bool
) -> Generation:
    """Send the prompt (printing the answer when `echo`) and return the Generation."""
    client = model_registry.get_client(name, **kwargs)
    try:
        if not stream:
            generation = await client.generate(messages)
            if echo:
                typer.echo(_printable_answer(generation.text))
            return generation
        deltas = client.stream(messages)
        last = ""
        try:
            async for delta in deltas:
                sys.stdout.write(_printable_answer(delta))
                sys.stdout.flush()
                last = delta or last
        finally:
            await deltas.aclose()
        if not last.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        if deltas.result is None:  # pragma: no cover - a backend bug
            raise RuntimeError(f"the stream for {name!r} ended without a result")
        return deltas.result
    finally:
        await client.aclose()


def _print_footer(generation: Generation) -> None:
    usage = generation.usage

    def count(n: int | None) -> str:
        return "?" if n is None else str(n)

    total = usage.total_tokens
    if total is None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    parts = [
        f"{generation.provider}:{generation.model}",
        f"finish: {generation.finish_reason or '?'}",
        f"tokens: {count(usage.prompt_tokens)} prompt + {count(usage.completion_tokens)} "
        f"completion = {count(total)}",
        f"latency: {generation.latency_s:.2f} s",
    ]
    typer.echo(_safe(" | ".join(parts)), err=True)


# --- validate ---------------------------------------------------------------------------


@app.command("validate")
@_command
def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Alias files to check, in layering order (default: the layered set: "
            "packaged, ./config/model_aliases.toml, $MODEL_REGISTRY_ALIASES).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check alias files and report every problem (file, alias, key); exit 1 if any."""
    files = list(paths or ())
    problems = model_registry.validate_files(*files)
    if problems:
        for problem in problems:
            typer.echo(_safe(problem, newlines=True))
        noun = "problem" if len(problems) == 1 else "problems"
        typer.echo(f"\n{len(problems)} {noun} found", err=True)
        raise typer.Exit(1)
    registry = model_registry.load_registry(*files, layered=not files)
    n, k = len(registry.aliases), len(registry.files)
    typer.echo(
        f"ok: {n} alias{'' if n == 1 else 'es'} in {k} file{'' if k == 1 else 's'} "
        f"({_safe(', '.join(registry.files))})"
    )


# --- run --------------------------------------------------------------------------------

#: The keys an input object may have.
_INPUT_KEYS = ("id", "prompt", "messages")
_INPUT_SHAPE = (
    'each line is a JSON string (one user message) or an object with "prompt" (a string) '
    'or "messages" (a list of {"role": ..., "content": ...}) and an optional "id"'
)
#: How many malformed lines one error message lists.
_MAX_INPUT_PROBLEMS = 20


class _BadLine(Exception):
    """One malformed input line (the message says what is wrong with it)."""


@dataclass(frozen=True)
class _RunInput:
    """The prompts of an input file and each prompt's output id, in file order."""

    ids: list[Any]
    prompts: list[Any]


def _read_run_input(path: Path) -> _RunInput:
    """Parse the whole input file before any call; every malformed line is reported (file and
    line number) as one error, exit 1. Blank lines are skipped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read the prompts file {path}: {exc.strerror or exc}")
    ids: list[Any] = []
    prompts: list[Any] = []
    first_line: dict[str, int] = {}
    problems: list[str] = []
    position = -1
    for lineno, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not raw.strip():
            continue
        position += 1  # counts malformed lines too, so the ids reported are the final ones
        try:
            given_id, prompt = _parse_input_line(raw)
            output_id = position if given_id is None else given_id
            _check_unique_id(output_id, lineno, first_line)
        except _BadLine as exc:
            problems.append(f"{path}:{lineno}: {exc}")
            continue
        ids.append(output_id)
        prompts.append(prompt)
    if problems:
        _fail(_input_problems(path, problems))
    if not prompts:
        _fail(f"{path} holds no prompts; {_INPUT_SHAPE}")
    return _RunInput(ids, prompts)


def _input_problems(path: Path, problems: list[str]) -> str:
    shown = problems[:_MAX_INPUT_PROBLEMS]
    more = len(problems) - len(shown)
    tail = f"\n(and {more} more malformed lines)" if more else ""
    noun = "line" if len(problems) == 1 else "lines"
    return (
        f"{len(problems)} malformed {noun} in {path}, nothing was sent:\n"
        + "\n".join(shown)
        + tail
        + f"\n{_INPUT_SHAPE}"
    )


def _parse_input_line(raw: bytes) -> tuple[Any, Any]:
    """(id or None, prompt) of one input line; raises `_BadLine`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine(f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, _BadLine) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        column = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise _BadLine(f"not valid JSON ({why}{column})") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _BadLine("holds a lone surrogate escape (\\udXXX), which is no text") from None
    if isinstance(value, str):
        return None, value
    if not isinstance(value, dict):
        raise _BadLine(f"a JSON {_json_type(value)} is no prompt; {_INPUT_SHAPE}")
    return _parse_input_object(value)


def _reject_constant(name: str) -> NoReturn:
    raise _BadLine(f"{name} is not JSON")


def _parse_input_object(value: dict[str, Any]) -> tuple[Any, Any]:
    unknown = [key for key in value if key not in _INPUT_KEYS]
    if unknown:
        raise _BadLine(
            f"unknown key {unknown[0]!r} (an input object has {', '.join(map(repr, _INPUT_KEYS))})"
        )
    given_id = value.get("id")
    if given_id is not None and (isinstance(given_id, bool) or not isinstance(given_id, str | int)):
        raise _BadLine(f'"id" must be a string or an integer, got a JSON {_json_type(given_id)}')
    if ("prompt" in value) == ("messages" in value):
        raise _BadLine('give exactly one of "prompt" and "messages"')
    if "prompt" in value:
        if not isinstance(value["prompt"], str):
            raise _BadLine(f'"prompt" must be a string, got a JSON {_json_type(value["prompt"])}')
        return given_id, value["prompt"]
    return given_id, _check_messages(value["messages"])


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _BadLine('"messages" must be a non-empty list of {"role": ..., "content": ...}')
    for n, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or "content" not in message
        ):
            raise _BadLine(
                f'"messages" item {n} must be an object with a string "role" and a "content"'
            )
    return messages


def _check_unique_id(output_id: Any, lineno: int, first_line: dict[str, int]) -> None:
    key = json.dumps(output_id)
    if key in first_line:
        raise _BadLine(
            f"id {key} is also the id of line {first_line[key]}; ids must be unique (a line "
            "without an id gets its position among the prompts, from 0)"
        )
    first_line[key] = lineno


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


@dataclass
class _Tally:
    """What a run did so far: for the progress bar, the summary and an interrupted run."""

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
        generation = result
        if getattr(generation, "from_store", False):
            self.from_store += 1
        else:
            self.called += 1
        usage = getattr(generation, "usage", None)
        self.prompt_tokens += getattr(usage, "prompt_tokens", None) or 0
        self.completion_tokens += getattr(usage, "completion_tokens", None) or 0
        cost = getattr(generation, "cost", None)
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
            if not generation.from_store:  # type: ignore[attr-defined]
                self.paid = (self.paid or 0.0) + cost


def _money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"


class _RunProgress:
    """A rich progress bar on stderr (only when stderr is a terminal): done, failed, cost."""

    def __init__(self, name: str, tally: _Tally) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        self._tally = tally
        self._progress: Any = None
        if not console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed  cost {task.fields[cost]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(_safe(name), total=tally.prompts, failed=0, cost="-")
        self._progress.start()

    def update(self) -> None:
        if self._progress is not None:
            tally = self._tally
            cost = _money(tally.cost) if tally.cost is not None else "-"
            self._progress.update(self._task, completed=tally.done, failed=tally.failed, cost=cost)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


async def _run_prompts(
    name: str,
    kwargs: dict[str, Any],
    prompts: list[Any],
    store: model_registry.ResultStore,
    concurrency: int | None,
    tally: _Tally,
) -> list[Any]:
    """Every prompt's Generation or error, in input order; each result is counted in `tally`
    as it completes (and kept in `store` by the library)."""
    results: list[Any] = [None] * len(prompts)
    bar = _RunProgress(name, tally)
    client = model_registry.get_client(name, **kwargs)
    try:
        # an async generator (closed here so its calls stop at once when this one stops)
        batch = cast(
            "AsyncGenerator[tuple[int, Any], None]",
            client.iter_many(
                prompts, concurrency=concurrency, return_exceptions=True, results_db=store
            ),
        )
        async with contextlib.aclosing(batch) as completed:
            async for index, result in completed:
                results[index] = result
                tally.add(result)
                bar.update()
    finally:
        bar.close()
        await client.aclose()
    return results


def _output_line(output_id: Any, result: Any, scrub: Callable[[str], str]) -> str:
    """One output line: the result of one prompt as a JSON object (`error` null on success)."""
    record: dict[str, Any] = {"id": output_id}
    if isinstance(result, BaseException):
        status = getattr(result, "status_code", None)
        record |= {"text": None, "finish_reason": None, "usage": None, "cost": None}
        record["error"] = {
            "class": type(result).__name__,
            "message": scrub(str(result)),
            "status_code": status if isinstance(status, int) else None,
        }
    else:
        usage = result.usage
        cost = result.cost
        record |= {
            "text": _printable_answer(result.text),
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "cost": cost if cost is None or math.isfinite(cost) else None,
            "error": None,
        }
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """Write `path` whole or not at all: a temporary file in the same folder, fsync'd, then
    renamed over it (a crash leaves the old file or none, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as file:
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _check_run_paths(prompts_file: Path, out: Path, results_db: Path) -> None:
    """Refuse, before any call, outputs that would overwrite the input or the store, or that
    cannot be written."""
    for other, what in ((prompts_file, "the prompts file"), (results_db, "the results db")):
        if out.resolve() == other.resolve():
            raise typer.BadParameter(
                f"{out} is {what}; give the results another file name", param_hint="'--out'"
            )
    if out.is_dir():
        _fail(f"cannot write the results to {out}: it is a folder; give a file name to --out")
    folder = out.parent
    if not folder.is_dir():
        _fail(f"cannot write the results to {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        _fail(f"cannot write the results to {out}: the folder {folder} is not writable")


def _run_summary(tally: _Tally, seconds: float) -> Iterator[str]:
    done = f"{tally.done} of " if tally.done < tally.prompts else ""
    yield (
        f"{done}{tally.prompts} prompts in {seconds:.1f} s: {tally.called} calls made, "
        f"{tally.from_store} from the store, {tally.failed} failed"
    )
    paid_cost = 0.0 if tally.called == 0 else tally.paid
    paid = f" (this run's calls: {_money(paid_cost)})" if tally.from_store else ""
    yield (
        f"tokens: {tally.prompt_tokens} prompt + {tally.completion_tokens} completion; "
        f"cost: {_money(tally.cost)}{paid}"
    )


@app.command("run")
@_command
def run_command(
    name: Annotated[str, typer.Argument(help="A model name (see 'model-registry list').")],
    prompts_file: Annotated[
        Path,
        typer.Argument(
            metavar="PROMPTS.jsonl",
            help='One prompt a line: a JSON string, or {"id": ..., "prompt": "..."} or '
            '{"id": ..., "messages": [...]}.',
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="RESULTS.jsonl",
            help="The results, one line per prompt in input order (written whole at the end).",
            show_default=False,
        ),
    ],
    results_db: Annotated[
        Path | None,
        typer.Option(
            "--results-db",
            metavar="PATH",
            help="The result store that keeps each answer as it arrives; the same command "
            "again resumes from it. [default: RESULTS.jsonl.sqlite]",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, help="Calls in flight at once (default: the model's)."
        ),
    ] = None,
    sets: SetOption = None,
) -> None:
    """Send every prompt of PROMPTS.jsonl to NAME, keeping each answer as it arrives, and write
    RESULTS.jsonl; run it again to resume (stored answers are not paid for twice).

    Output lines: {"id", "text", "finish_reason", "usage", "cost", "error"}. Exit 1 when a
    prompt failed (its line has "error"; running again retries it), 130 on Ctrl-C (the
    finished answers are kept; the results file is written on a run that finishes).
    """
    kwargs = parse_sets(sets)
    _state.call = (name, kwargs)
    db = results_db if results_db is not None else out.with_name(out.name + ".sqlite")
    _check_run_paths(prompts_file, out, db)
    run_input = _read_run_input(prompts_file)
    model_registry.resolve(name, **kwargs)  # an unknown name fails before the store is made
    store = model_registry.ResultStore(db)
    tally = _Tally(len(run_input.prompts))
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # LiteLLM's coroutines cancelled by Ctrl-C before they ran: nothing to report
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            results = asyncio.run(
                _run_prompts(name, kwargs, run_input.prompts, store, concurrency, tally)
            )
    except KeyboardInterrupt:
        _echo_lines_err(["", "cancelled", *_run_summary(tally, time.monotonic() - started)])
        typer.echo(
            _safe(
                f"the finished answers are kept in {db}; run the same command again to finish "
                f"({out} was not written)"
            ),
            err=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        store.close()
    _write_results(out, run_input.ids, results)
    _echo_lines_err(
        [*_run_summary(tally, time.monotonic() - started), f"wrote {out} (store: {db})"]
    )
    if tally.failed:
        noun = "prompt" if tally.prompts == 1 else "prompts"
        _fail(
            f"{tally.failed} of {tally.prompts} {noun} failed; their lines in {out} have "
            '"error"; run the same command again to retry them'
        )


def _write_results(out: Path, ids: list[Any], results: list[Any]) -> None:
    if any(result is None for result in results):  # pragma: no cover - a library bug
        raise RuntimeError("the batch ended without a result for every prompt")
    scrub = _scrubber()
    lines = (
        _output_line(output_id, result, scrub)
        for output_id, result in zip(ids, results, strict=True)
    )
    try:
        _write_atomically(out, lines)
    except OSError as exc:
        _fail(f"cannot write the results to {out}: {exc.strerror or exc}")


def _echo_lines_err(lines: Iterable[str]) -> None:
    typer.echo(_safe("\n".join(lines), newlines=True), err=True)
