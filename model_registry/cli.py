"""The `model-registry` command line (also `python -m model_registry`).

A thin typer app over the public API: `list`, `resolve`, `prompt`, `embed`, `validate`, `run`,
`batches`, `results`.
Plain text for people, `--json` for scripts. A library error or a bad input file is
one message on stderr and exit code 1 (`--debug` adds our error's traceback, never
its chained causes), usage errors exit 2, Ctrl-C exits 130.

What reaches a terminal is safe to show: control characters (terminal escapes) in
names, descriptions and messages print escaped (`\\x1b`), a lone surrogate in a model's
answer prints as U+FFFD, and known secret values never print (`***`).

Startup stays cheap: only `prompt`, `embed` and `run` load a backend (litellm or vllm), and
only the one their model needs; `resolve --split` loads vLLM to split local kwargs.

This module wires the commands; `model_registry._cli` holds what they do.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

import model_registry
from model_registry._cli import interrupts
from model_registry._cli.embed import embed_texts
from model_registry._cli.interrupts import EXIT_INTERRUPTED
from model_registry._cli.options import (
    DebugOption,
    JsonOption,
    SetOption,
    parse_sets,
)
from model_registry._cli.output import command, reported_errors, state
from model_registry._cli.run_options import (
    BatchApiOption,
    ConcurrencyOption,
    MaxCostOption,
    NoWaitOption,
    OutOption,
    PromptsFileArgument,
    ResultsDbOption,
)
from model_registry._cli.run_ray import RayAddressOption, RayOption, WorkersOption, ray_options
from model_registry._cli.run_story import LogJsonOption
from model_registry._cli.views import show_list, show_resolution, show_validation

__all__ = ["app", "main", "parse_sets"]

app = typer.Typer(
    name="model-registry",
    help="Turn model names into clients: list the names, see how one resolves, "
    "send it a test prompt, check alias files.",
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"model-registry {_installed_version()}")
        raise typer.Exit()


def _installed_version() -> str:
    """The version in the installed package's metadata (read once, by the package)."""
    return str(model_registry.__version__)


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
    state.debug = debug
    state.call = None
    if ctx.invoked_subcommand is not None:
        if list_models:
            raise typer.BadParameter(
                f"--list-models is a command of its own; drop it or the '{ctx.invoked_subcommand}' command",
                param_hint="'--list-models'",
            )
        return
    if list_models:
        with reported_errors():
            show_list(provider=None, full=False, as_json=False)
        return
    typer.echo(ctx.get_help())


def main() -> None:
    """Run the CLI (the `model-registry` console script starts here, via `model_registry_cli`).

    `kill -USR1 PID` prints every thread's stack on stderr (where a slow prompt waits).
    """
    interrupts.install()
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        with contextlib.suppress(OSError, ValueError):  # stderr is no file
            faulthandler.register(signal.SIGUSR1, all_threads=True)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal that cannot show a character
    try:
        app(prog_name="model-registry")
    except KeyboardInterrupt:
        interrupts.quiet()  # a Ctrl-C held down would interrupt the exit with a traceback
        interrupts.report(_cancelled)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # typer's own exit on Ctrl-C outside a command
            interrupts.quiet()
            interrupts.report(_cancelled)
        raise
    finally:
        interrupts.quiet()  # while the interpreter shuts down: no traceback


def _cancelled() -> None:
    sys.stderr.write("\ncancelled\n")


@app.command("list")
@command
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
    debug: DebugOption = False,
) -> None:
    """List the aliases of the layered alias files (name, provider, route), and the providers."""
    show_list(provider=provider, full=full, as_json=as_json)


@app.command("resolve")
@command
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
    debug: DebugOption = False,
) -> None:
    """Show what NAME resolves to (provider, model id, route, kwargs) and the rule that matched;
    warnings (a model id LiteLLM does not list, with the closest known ones) go to stderr."""
    kwargs = parse_sets(sets)
    show_resolution(name, kwargs, split=split, strict=strict, as_json=as_json)


@app.command("prompt")
@command
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
    debug: DebugOption = False,
) -> None:
    """Send one test prompt to NAME and print the answer, then finish reason, usage and latency."""
    from model_registry._cli.prompt import send_prompt  # with asyncio: not loaded by 'list'

    kwargs = parse_sets(sets)
    send_prompt(name, text, kwargs, system=system, stream=stream, as_json=as_json)


@app.command("embed")
@command
def embed_command(
    name: Annotated[str, typer.Argument(help="A model name (see 'model-registry list').")],
    texts: Annotated[
        list[str], typer.Argument(metavar="TEXT...", help="The texts, one vector each.")
    ],
    sets: SetOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Embed each TEXT with NAME and print each vector's size and first values (--json: the
    whole vectors, usage and cost)."""
    embed_texts(name, texts, parse_sets(sets), as_json=as_json)


@app.command("validate")
@command
def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Alias files to check, in layering order (default: the layered set: "
            "packaged, ./config/model_aliases.toml, $MODEL_REGISTRY_ALIASES).",
            show_default=False,
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Check alias files and report every problem (file, alias, key); exit 1 if any."""
    show_validation(list(paths or ()))


@app.command("batches")
@command
def batches_command(
    results_db: Annotated[
        Path,
        typer.Argument(metavar="RESULTS_DB", help="The result store of a --batch-api run."),
    ],
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel the jobs still running at the provider.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """List the provider batch jobs of RESULTS_DB with their status at the provider."""
    from model_registry._cli.batches import show_batches  # with asyncio: not loaded by 'list'

    show_batches(results_db, cancel=cancel)


@app.command("results")
@command
def results_command(
    results_db: Annotated[
        Path, typer.Argument(metavar="RESULTS_DB", help="A result store (RESULTS.jsonl.sqlite).")
    ],
    failed: Annotated[
        bool, typer.Option("--failed", help="List the failed requests, one a line.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", metavar="OUT.jsonl", help="Write the latest run, in order."),
    ] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Print RESULTS_DB's totals (answered, failed, tokens, cost), its failed requests
    (--failed: index, error class, status, message) or export its latest run (--export)."""
    from model_registry._cli.results import show_results

    show_results(results_db, failed=failed, export=export, as_json=as_json)


@app.command("run")
@command
def run_command(
    name: Annotated[str, typer.Argument(help="A model name (see 'model-registry list').")],
    prompts_file: PromptsFileArgument,
    out: OutOption,
    results_db: ResultsDbOption = None,
    concurrency: ConcurrencyOption = None,
    max_cost: MaxCostOption = None,
    ray: RayOption = False,
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    batch_api: BatchApiOption = False,
    no_wait: NoWaitOption = False,
    log_json: LogJsonOption = None,
    sets: SetOption = None,
    debug: DebugOption = False,
) -> None:
    """Send every prompt of PROMPTS.jsonl to NAME, keeping each answer as it arrives, and write
    RESULTS.jsonl; run it again to resume (stored answers are not paid for twice).

    Output lines: {"id", "text", "finish_reason", "usage", "cost", "error"}. Exit 1 when a
    prompt failed (its line has "error"; running again retries it), 3 when --max-cost left
    prompts unsent (their lines have a BudgetExceededError; a higher --max-cost sends them),
    130 on Ctrl-C (the finished answers are kept; the results file is written on a run that
    finishes).
    """
    from model_registry._cli.run import run_prompts_file  # with asyncio: not loaded by 'list'

    kwargs = parse_sets(sets)
    on_ray = ray_options(ray, ray_address, workers)
    run_prompts_file(
        name,
        kwargs,
        prompts_file,
        out=out,
        results_db=results_db,
        concurrency=concurrency,
        max_cost=max_cost,
        ray=on_ray,
        batch_api=batch_api,
        no_wait=no_wait,
        log_json=log_json,
    )
