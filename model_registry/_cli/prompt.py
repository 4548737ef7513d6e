"""`prompt`: one test prompt to a model, the answer printed (streamed on a terminal), then
finish reason, usage and latency on stderr."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import typer

import model_registry
from model_registry._cli.interrupts import run_async
from model_registry._cli.output import print_json, printable_answer, safe, state
from model_registry._cli.progress import loading_notice

if TYPE_CHECKING:
    from model_registry import Generation, Message

_PASS_A_PROMPT = "pass the prompt as an argument (model-registry prompt NAME 'TEXT') or pipe it in"


def send_prompt(
    name: str,
    text: str | None,
    kwargs: dict[str, Any],
    *,
    system: str | None,
    stream: bool | None,
    as_json: bool,
) -> None:
    """Send `text` (or stdin) to `name` and print the answer and a footer, or JSON."""
    state.call = (name, kwargs)
    text = read_prompt(text)
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    if stream is None:
        stream = sys.stdout.isatty()
    if as_json:
        stream = False
    generation = run_async(_prompt(name, messages, kwargs, stream=stream, echo=not as_json))
    if as_json:
        print_json(generation.to_dict())
    else:
        _print_footer(generation)


def read_prompt(text: str | None) -> str:
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
    notice = asyncio.ensure_future(loading_notice(client.kind, name))
    try:
        if not stream:
            generation = await client.generate(messages)
            notice.cancel()
            if echo:
                typer.echo(printable_answer(generation.text))
            return generation
        deltas = client.stream(messages)
        last = ""
        try:
            async for delta in deltas:
                notice.cancel()
                sys.stdout.write(printable_answer(delta))
                sys.stdout.flush()
                last = delta or last
        finally:
            await deltas.aclose()
        if not last.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        return deltas.result
    finally:
        notice.cancel()
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
    typer.echo(safe(" | ".join(parts)), err=True)
