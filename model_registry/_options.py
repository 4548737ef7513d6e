"""Our own kwargs and the call options: one table that the alias schema, the LiteLLM params
check, `get_client` and the store key read. A new option is one line here.

Our own kwargs never reach a backend: each says where it is given instead. Call options do
reach the backend but change how a call is made, never its answer, so, like our own
kwargs, they are not part of a request's store key (a run resumed with another timeout
or concurrency finds its results).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "CALL_OPTIONS",
    "LOCAL_ONLY",
    "LOCAL_OPTIONS",
    "NOT_IN_KEY",
    "OWN_KWARGS",
    "local_only",
    "not_a_kwarg",
]

_BATCH = "pass it to generate_many() or iter_many()"

#: Our own kwargs -> where they are given (the reason shown when one is given elsewhere).
OWN_KWARGS: Mapping[str, str] = MappingProxyType(
    {
        "results_db": "pass it to get_client() (every call's store) or to generate(), stream(), "
        "generate_many() or iter_many(), as in get_client(name, results_db='run.sqlite')",
        "concurrency": f'{_BATCH}, or declare it in a [limits."NAME"] table',
        "progress": _BATCH,
        "return_exceptions": _BATCH,
        "batch_api": f"{_BATCH}, with results_db (or call client.submit_batch(...))",
        "batch_size": f"{_BATCH}, with batch_api=True",
        "limits": 'declare limits once: get_client(name, limits={...}) or a [limits."NAME"] table',
        "fallbacks": "declare fallbacks once: get_client(name, fallbacks=[...]) or "
        "fallbacks = [...] beside provider and model_id in the alias file",
        "strict": "pass it to get_client() or resolve() (or set MODEL_REGISTRY_STRICT=1)",
    }
)

#: Call options that go to the backend and never change an answer.
CALL_OPTIONS = frozenset({"timeout", "num_retries", "max_retries", "metadata", "stream_options"})

#: Options of ours that only the local engine (vLLM) reads -> what each does.
LOCAL_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "raw": "sends the prompt without the model's chat template",
        "allow_image_downloads": "lets the engine fetch http(s) image URLs",
        "tool_call_parser": "names vLLM's parser of the model's tool-call markup",
        "model_revision": "labels the local weights in result-store keys",
    }
)

#: Kwargs a hosted client refuses, as only the local engine reads them -> what each does:
#: our local options and the vLLM engine args the local client reads or docs/ name.
LOCAL_ONLY: Mapping[str, str] = MappingProxyType(
    {
        **LOCAL_OPTIONS,
        "reasoning_parser": "names vLLM's parser of the model's reasoning",
        "runner": "picks vLLM's runner (generate or pooling)",
        "convert": "adapts a vLLM model to another task",
        "structured_outputs_config": "sets the engine's structured-output backend",
        "tokenizer_mode": "picks the engine's tokenizer",
        "max_model_len": "bounds the engine's context",
        "gpu_memory_utilization": "sizes the engine's GPU memory",
        "tensor_parallel_size": "splits the engine over GPUs",
        "pipeline_parallel_size": "splits the engine over GPUs",
        "distributed_executor_backend": "picks how the engine runs on several GPUs",
        "enforce_eager": "turns off the engine's CUDA graphs",
        "trust_remote_code": "lets the engine run the model repository's code",
        "limit_mm_per_prompt": "bounds the images per prompt",
    }
)

#: Kwargs left out of a request's store key.
NOT_IN_KEY = frozenset(OWN_KWARGS) | CALL_OPTIONS


def not_a_kwarg(key: str, where: str) -> str:
    """The message for one of our own kwargs given where it does not belong."""
    return f"{key} is not a kwarg of {where}: {OWN_KWARGS[key]}"


def local_only(key: str, where: str) -> str:
    """The message for a local-only kwarg given to a hosted model (`where` names it)."""
    return (
        f"{key!r} in {where} applies to local models only (it {LOCAL_ONLY[key]}) and is "
        "not sent to a hosted model: remove it, or name a local model ('local:ORG/REPO'); "
        "a `vllm serve` server takes engine settings when it starts"
    )
