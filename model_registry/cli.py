"""The `model-registry` command line (also `python -m model_registry`).

A thin typer app over the public API: `list`, `resolve`, `prompt`, `validate`.
Tables for people, `--json` for scripts; a library error is one message on stderr
and exit code 1 (`--debug` shows the traceback), usage errors exit 2.

Startup stays cheap: only `prompt` loads a backend (litellm or vllm), and only the one
its model needs; `resolve --split` loads vLLM to split local kwargs.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import json
import signal
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

import model_registry
from model_registry.errors import ModelRegistryError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from model_registry.types import Generation, Message

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
    """Global flags, set by the top-level callback."""

    debug = False


_state = _State()


# --- errors -----------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn library errors into one message on stderr and exit 1 (unless --debug)."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits pass through
        raise
    except KeyboardInterrupt:
        raise
    except ModelRegistryError as exc:
        if _state.debug:
            raise
        _fail(str(exc))
    except Exception as exc:
        if _state.debug:
            raise
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

    Raises `typer.BadParameter` (exit 2) for an item without `=` or a broken array/table/string.
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
        value = raw.strip()
        try:
            kwargs[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError as exc:
            if value[:1] in ("[", "{", '"', "'"):
                raise typer.BadParameter(
                    f"{key}={value}: not a valid TOML value ({exc}); "
                    "arrays look like [1, 2], strings with spaces like '\"a b\"'",
                    param_hint="'--set'",
                ) from None
            kwargs[key] = raw
    return kwargs


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


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _fmt(value: object) -> str:
    """A kwarg value as TOML-ish text: strings quoted, booleans lower case."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _fmt_params(params: Mapping[str, Any]) -> str:
    return "\n".join(f"{key}={_fmt(value)}" for key, value in params.items())


def _print_table(console: Console, table: Table) -> None:
    """Print a table, widening it past the terminal rather than cutting a no-wrap column.

    Names, model ids and routes sit in `no_wrap` columns so they can be copied whole;
    other columns fold down to a few characters before the table grows wider.
    """
    from rich.cells import cell_len

    def longest(column: Any) -> int:
        texts = [str(column.header), *(str(cell) for cell in column.cells)]
        return max(cell_len(line) for text in texts for line in text.splitlines() or [""])

    left, right = table.padding[3], table.padding[1]
    needed = sum(
        (longest(c) if c.no_wrap else min(longest(c), max(24, cell_len(str(c.header)))))
        + left
        + right
        for c in table.columns
    )
    if table.box is not None:
        needed += len(table.columns) + 1
    if needed > console.width:
        console.width = needed
    console.print(table)


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
    if ctx.invoked_subcommand is not None:
        if list_models:
            raise typer.BadParameter(
                f"--list-models is a command of its own; drop it or the '{ctx.invoked_subcommand}' command",
                param_hint="'--list-models'",
            )
        return
    if list_models:
        with _reported_errors():
            _list(provider=None, as_json=False)
        return
    typer.echo(ctx.get_help())


def main() -> None:
    """Entry point of the `model-registry` console script."""
    app(prog_name="model-registry")


# --- list -------------------------------------------------------------------------------


@app.command("list")
@_command
def list_command(
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help="Only this provider's aliases (and the provider)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the aliases of the layered alias files, and the providers."""
    _list(provider=provider, as_json=as_json)


def _list(*, provider: str | None, as_json: bool) -> None:
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
        _print_json(
            {
                "aliases": [a.to_dict() for a in aliases],
                "providers": [p.to_dict() for p in providers],
            }
        )
        return

    from rich.table import Table

    console = _console()
    table = Table(title="Aliases", title_justify="left", show_lines=False)
    # Names, model ids and routes are never wrapped or cut, so they can be copied.
    longest = max((len(a.name) for a in aliases), default=4)
    table.add_column("name", style="bold", no_wrap=True, min_width=longest)
    table.add_column("provider", no_wrap=True)
    table.add_column("model id", no_wrap=True)
    table.add_column("route", no_wrap=True)
    table.add_column("defaults", overflow="fold")
    table.add_column("description", overflow="fold")
    table.add_column("source", overflow="fold")
    for alias in aliases:
        data = alias.to_dict()
        table.add_row(
            alias.name,
            alias.provider,
            alias.model_id,
            alias.route or "-",
            _fmt_params(data["defaults"]),
            alias.description,
            alias.source,
        )
    if aliases:
        _print_table(console, table)
    else:
        console.print("no aliases" + (f" for provider {provider!r}" if provider else ""))

    ptable = Table(title="Providers", title_justify="left")
    ptable.add_column("name", style="bold", no_wrap=True)
    ptable.add_column("kind", no_wrap=True)
    ptable.add_column("default model", no_wrap=True)
    ptable.add_column("key env var", no_wrap=True)
    ptable.add_column("key set", no_wrap=True)
    ptable.add_column("description", overflow="fold")
    for spec in providers:
        key_set = spec.api_key_set
        ptable.add_row(
            spec.name,
            spec.kind,
            spec.default_model or "-",
            spec.api_key_env or "-",
            "-" if key_set is None else ("yes" if key_set else "no"),
            spec.description,
        )
    console.print()
    _print_table(console, ptable)


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
    as_json: JsonOption = False,
) -> None:
    """Show what NAME resolves to (provider, model id, route, kwargs) and the rule that matched."""
    kwargs = parse_sets(sets)
    resolution = model_registry.resolve(name, **kwargs)
    data = resolution.to_dict()
    split_data: dict[str, Any] | None = None
    if split:
        split_data = _split(resolution)
        data["split"] = split_data
    if as_json:
        _print_json(data)
        return

    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_row("name", resolution.name)
    table.add_row("rule", resolution.source)
    table.add_row("provider", f"{resolution.provider} ({resolution.kind})")
    table.add_row("model id", resolution.model_id)
    table.add_row("route", resolution.route or "- (local: vLLM, no LiteLLM route)")
    if resolution.alias is not None:
        table.add_row("alias", resolution.alias)
    table.add_row("kwargs", _fmt_params(data["params"]) or "(none)")
    if split_data is not None:
        labels = {"engine": "engine args", "sampling": "sampling params", "options": "call options"}
        for part, params in split_data.items():
            table.add_row(labels.get(part, part), _fmt_params(params) or "(none)")
    _print_table(_console(), table)


def _split(resolution: model_registry.Resolution) -> dict[str, Any]:
    """The engine/sampling split of a local resolution's kwargs, from the vLLM adapter."""
    if resolution.kind != "local":
        _fail(
            f"--split is for local models; {resolution.name!r} resolves to the hosted "
            f"provider {resolution.provider!r}, whose kwargs all go to LiteLLM"
        )
    from model_registry.clients.vllm import split_params
    from model_registry.types import redact

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
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise typer.BadParameter(
                "give the prompt as an argument, or pipe it in (TEXT '-' reads stdin)",
                param_hint="'TEXT'",
            )
        text = sys.stdin.read().removesuffix("\n")
        if not text.strip():
            raise typer.BadParameter("the prompt read from stdin is empty", param_hint="'TEXT'")
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    if stream is None:
        stream = sys.stdout.isatty()
    if as_json:
        stream = False
    try:
        generation = asyncio.run(_prompt(name, messages, kwargs, stream=stream, echo=not as_json))
    except KeyboardInterrupt:
        typer.echo("\ncancelled", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        _print_json(generation.to_dict())
    else:
        _print_footer(generation)


def _dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints where a slow prompt waits, on stderr: every thread's stack
    (at once, even with the event loop stuck) and then what each asyncio task awaits."""
    if not hasattr(signal, "SIGUSR1"):  # Windows
        return
    try:
        sys.stderr.fileno()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _print_tasks)
    except (AttributeError, OSError, ValueError, RuntimeError):
        return  # stderr is no file (captured in process), or not the main thread
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)


def _print_tasks() -> None:
    """Each asyncio task and its chain of awaits, innermost last."""
    lines = ["asyncio tasks (most recent call last):"]
    for task in asyncio.all_tasks():
        lines.append(f"  {task!r}")
        awaiting: Any = task.get_coro()
        while awaiting is not None:
            frame = _first_attribute(awaiting, ("cr_frame", "ag_frame", "gi_frame"))
            if frame is None:
                lines.append(f"    awaiting {awaiting!r}")
                break
            code = frame.f_code
            lines.append(f'    File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
            awaiting = _first_attribute(awaiting, ("cr_await", "ag_await", "gi_yieldfrom"))
    print("\n".join(lines), file=sys.stderr, flush=True)


def _first_attribute(obj: object, names: tuple[str, ...]) -> Any:
    """The first of `names` that `obj` has and is not None (coroutine, async generator
    and generator spell their frame and awaitee differently), else None."""
    return next((v for n in names if (v := getattr(obj, n, None)) is not None), None)


async def _prompt(
    name: str, messages: list[Message], kwargs: dict[str, Any], *, stream: bool, echo: bool
) -> Generation:
    """Send the prompt (printing the answer when `echo`) and return the Generation."""
    _dump_stacks_on_sigusr1()
    client = model_registry.get_client(name, **kwargs)
    try:
        if not stream:
            generation = await client.generate(messages)
            if echo:
                typer.echo(generation.text)
            return generation
        deltas = client.stream(messages)
        last = ""
        try:
            async for delta in deltas:
                sys.stdout.write(delta)
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
    _console(stderr=True).print(" | ".join(parts), style="dim", soft_wrap=True)


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
    from model_registry.aliases import load_registry, validate_files

    files = list(paths or ())
    problems = validate_files(*files)
    if problems:
        for problem in problems:
            typer.echo(problem)
        noun = "problem" if len(problems) == 1 else "problems"
        typer.echo(f"\n{len(problems)} {noun} found", err=True)
        raise typer.Exit(1)
    registry = load_registry(*files, layered=not files)
    n, k = len(registry.aliases), len(registry.files)
    typer.echo(
        f"ok: {n} alias{'' if n == 1 else 'es'} in {k} file{'' if k == 1 else 's'} "
        f"({', '.join(registry.files)})"
    )
