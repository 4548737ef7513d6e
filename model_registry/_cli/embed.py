"""`embed`: texts to a model's vectors, each printed as its size and first values (the
whole vectors with `--json`), then model, usage and cost on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

import model_registry
from model_registry._cli.interrupts import run_async
from model_registry._cli.output import print_json, safe, state

if TYPE_CHECKING:
    from model_registry import Embeddings

#: Values of each vector shown in plain output.
_SHOWN = 4


def embed_texts(name: str, texts: list[str], kwargs: dict[str, Any], *, as_json: bool) -> None:
    """Embed `texts` with `name`; print one line a vector and a footer, or the JSON."""
    state.call = (name, kwargs)
    embeddings = run_async(_embed(name, texts, kwargs))
    if as_json:
        print_json(embeddings.to_dict())
        return
    for index, vector in enumerate(embeddings.vectors):
        shown = ", ".join(f"{x:.4f}" for x in vector[:_SHOWN])
        more = ", ..." if len(vector) > _SHOWN else ""
        typer.echo(f"{index}: [{shown}{more}] ({len(vector)} dimensions)")
    _print_footer(embeddings)


async def _embed(name: str, texts: list[str], kwargs: dict[str, Any]) -> Embeddings:
    async with model_registry.get_client(name, **kwargs) as client:
        return await client.embed(texts)


def _print_footer(embeddings: Embeddings) -> None:
    tokens = embeddings.usage.prompt_tokens
    cost = "?" if embeddings.cost is None else f"${embeddings.cost:.8f}".rstrip("0")
    parts = [
        f"{embeddings.provider}:{embeddings.model}",
        f"{len(embeddings.vectors)} vectors",
        f"tokens: {'?' if tokens is None else tokens}",
        f"cost: {cost}",
    ]
    typer.echo(safe(" | ".join(parts)), err=True)
