"""Local embeddings: texts through vLLM's pooling runner (`engine.encode`), one request a
text, all in flight at once, gathered into `Embeddings` in input order.

A local model embeds when its engine runs the pooling runner: `runner="pooling"` (an engine
arg, as an alias default or a get_client kwarg), or vLLM's own choice without one (its
`runner="auto"`: pooling for an embedding architecture or a Sentence Transformers model),
read from the engine once it runs. Such a model does not generate."""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio

from model_registry._embeddings import Embeddings
from model_registry.errors import InvalidParameterError
from model_registry.types import Usage

#: A `VLLMClient` (not imported: it imports this module).
VLLMClient = Any

__all__ = ["embed_refusal", "generate_refusal", "runner", "vllm_embed"]

#: What an embedding call to a local model takes (besides `timeout`).
_EMBED_KWARGS = frozenset({"dimensions", "timeout"})


def runner(client: VLLMClient) -> str:
    """The runner of the client's engine: the one given, else vLLM's choice once the engine
    runs, else "auto" (not known before the engine starts)."""
    given = client.split.engine.get("runner", "auto")
    if given != "auto":
        return str(given)
    entry = client._entry
    config = getattr(getattr(entry, "engine", None), "model_config", None)
    chosen = getattr(config, "runner_type", None)
    return chosen if isinstance(chosen, str) else "auto"


def is_pooling(client: VLLMClient) -> bool:
    return runner(client) == "pooling"


def _chosen_by_vllm(client: VLLMClient) -> bool:
    return bool(client.split.engine.get("runner", "auto") == "auto")


def embed_refusal(client: VLLMClient) -> str | None:
    """Why `client` cannot embed (None: it can, or may: vLLM picks the runner at start)."""
    running = runner(client)
    if running in ("pooling", "auto"):
        return None
    chosen = (
        " (vLLM's choice: its config names no embedding model)" if _chosen_by_vllm(client) else ""
    )
    return (
        f"{client.name!r} (model {client.model_id!r}) runs vLLM's {running} runner{chosen}, "
        f"which gives no embeddings: start it with runner='pooling' "
        f"(get_client({client.name!r}, runner='pooling') or the alias defaults) to embed "
        "with it, or call generate()"
    )


def generate_refusal(client: VLLMClient) -> None:
    """InvalidParameterError for generating with a client whose engine runs the pooling runner."""
    if is_pooling(client):
        if _chosen_by_vllm(client):
            given, other = "vLLM's choice for its embedding config", "runner='generate'"
        else:
            given, other = "runner='pooling'", "no runner='pooling'"
        raise InvalidParameterError(
            f"{client.name!r} (model {client.model_id!r}) runs vLLM's pooling runner "
            f"({given}): it embeds and does not generate; call embed() or embed_many(), or, "
            f"for a model that generates too, get a client with {other} to generate"
        )


async def vllm_embed(
    client: VLLMClient, texts: list[str], kwargs: dict[str, Any], deadline: float | None
) -> Embeddings:
    """One vector per text from the client's engine; `deadline` as `_generate`'s."""
    from vllm import PoolingParams

    unknown = sorted(set(kwargs) - _EMBED_KWARGS)
    if unknown:
        raise InvalidParameterError(
            f"embed on local model {client.name!r} takes dimensions= and timeout=, not "
            f"{', '.join(unknown)}"
        )
    entry = client._running_entry()
    if (reason := embed_refusal(client)) is not None:  # the runner vLLM chose at start
        raise InvalidParameterError(reason)
    timeout = kwargs.get("timeout", client.params.get("timeout"))
    if deadline is None:
        deadline = client._deadline(timeout)
    params = PoolingParams(task="embed", dimensions=kwargs.get("dimensions"))
    results: list[Any] = [None] * len(texts)
    started = time.perf_counter()

    async def one(index: int) -> None:
        request_id = f"model-registry-embed-{uuid.uuid4().hex}"
        outputs = entry.engine.encode(texts[index], params, request_id)
        client._in_flight[request_id] = entry.engine
        finished = False
        try:
            while (out := await client._next_output(outputs, deadline, timeout)) is not None:
                results[index] = out
                if out.finished:
                    finished = True
                    break
        finally:
            await client._end_request(entry.engine, outputs, request_id, finished)

    async with anyio.create_task_group() as tg:
        for index in range(len(texts)):
            tg.start_soon(one, index)
    tokens = sum(len(out.prompt_token_ids or ()) for out in results)
    return Embeddings(
        vectors=[[float(x) for x in out.outputs.data.tolist()] for out in results],
        usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        model=client.model_id,
        provider=client.provider,
        name=client.name,
        latency_s=time.perf_counter() - started,
    )
