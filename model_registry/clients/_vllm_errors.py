"""Local adapter: what a failed engine start or a failed request becomes (always ours).

A failed engine start:

- our own errors (`InvalidParameterError`, `ModelPathNotFoundError`, ...) pass unchanged;
- a Hugging Face Hub lookup that failed (offline, a typo'd id) is an `EngineStartError`
  with the model id, the cause and the offline hint;
- vLLM's spawned process re-running a script that has no `if __name__ == "__main__":`
  guard is an `EngineStartError` that says to add one;
- `TypeError`/`ValueError` from vLLM about the engine args is an `InvalidParameterError`;
- anything else is an `EngineStartError` with the cause's class name and message.

A failed request (`call_error`; vLLM's classes are told by name, vLLM is not imported):

- a prompt over the context window (vLLM's `VLLMValidationError` about the model's maximum
  context length) is a `ContextWindowExceededError`;
- any other request vLLM refuses (`VLLMClientError`, a `ValueError`) is a `BadRequestError`;
- an engine that died, or one too busy to admit the request, is a `ServiceUnavailableError`;
- anything else is an `APIError` with the cause's class name and message.

Secrets never leave: the cause's message is scrubbed of every credential among the
engine args (and of the Hugging Face token in the environment), and the original
exception is chained only when its whole traceback text holds none of them.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from model_registry._redaction import REDACTED
from model_registry.errors import (
    APIError,
    BadRequestError,
    ContextWindowExceededError,
    EngineStartError,
    InvalidParameterError,
    ModelCallError,
    ModelRegistryError,
    ServiceUnavailableError,
)
from model_registry.types import redact, secret_values

__all__ = [
    "GUARD_HINT",
    "StartFailure",
    "bootstrapping_spawned_child",
    "call_error",
    "start_failure",
    "unguarded_main_line",
]

GUARD_HINT = (
    "vLLM starts its engine in a new process that re-runs your script (multiprocessing "
    "'spawn'), so the code that starts the engine must sit under "
    '`if __name__ == "__main__":` (e.g. `if __name__ == "__main__": asyncio.run(main())`)'
)

_BOOTSTRAP_TEXT = "before the current process has finished its bootstrapping phase"
_HF_TOKEN_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class StartFailure(NamedTuple):
    """The error to raise and the cause to chain (None when it may hold a secret)."""

    error: ModelRegistryError
    cause: BaseException | None


def bootstrapping_spawned_child() -> bool:
    """True while a spawned process re-imports the main script (the guard is missing)."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def unguarded_main_line(frame: FrameType | None) -> str | None:
    """'script.py:LINE' when the main script runs this call outside its `__main__` guard.

    `frame` is the caller's; its stack is walked to the main module's top-level frame.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)
    ):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.If) and _is_main_guard(node.test) and node.lineno <= line <= end:
            return None
    return f"{path}:{line}"


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    values = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return isinstance(test.ops[0], ast.Eq) and len(names) == 1 and len(values) == 1


def _secrets(engine_args: Mapping[str, Any]) -> list[str]:
    found = set(secret_values(engine_args))
    found.update(v for k in _HF_TOKEN_ENV if (v := os.environ.get(k)))
    return sorted(found, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return " ".join(text.split())


def _chainable(exc: BaseException, secrets: list[str]) -> BaseException | None:
    text = "".join(traceback.format_exception(exc))
    return None if any(s in text for s in secrets) else exc


def _is_hub_lookup(exc: BaseException) -> bool:
    if any(c.__module__.startswith("huggingface_hub") for c in type(exc).__mro__):
        return True
    return isinstance(exc, OSError) and "huggingface" in str(exc).lower()


def _hub_hint(model: str) -> str:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return (
            f"{model!r} was looked up in the local Hugging Face cache only (HF_HUB_OFFLINE is "
            f"set): check the id for typos, download it first (hf download {model}) with "
            f"HF_HUB_OFFLINE unset, or give the model directory's path"
        )
    return (
        f"{model!r} was looked up on the Hugging Face Hub: check the id for typos, the "
        f"network and, for a gated or private model, HF_TOKEN; offline, set HF_HUB_OFFLINE=1 "
        f"to use the local cache, or give the model directory's path"
    )


def start_failure(
    exc: BaseException,
    *,
    model: str,
    engine_args: Mapping[str, Any],
    unguarded: str | None = None,
) -> StartFailure:
    """Our error for an engine start that raised `exc`, and the cause it may chain."""
    if isinstance(exc, ModelRegistryError):
        return StartFailure(exc, exc.__cause__)
    secrets = _secrets(engine_args)
    cause = f"{type(exc).__name__}: {_scrub(str(exc), secrets)}"
    where = f"the local engine for {model!r} could not start"
    hint = None
    if _BOOTSTRAP_TEXT in " ".join(str(exc).split()) or (
        unguarded and os.environ.get("VLLM_WORKER_MULTIPROC_METHOD") == "spawn"
    ):
        at = f" ({unguarded} is outside it)" if unguarded else ""
        hint = GUARD_HINT + at
    elif _is_hub_lookup(exc):
        hint = _hub_hint(model)
    elif isinstance(exc, TypeError | ValueError):
        error: ModelRegistryError = InvalidParameterError(
            f"vLLM rejected the engine args {redact(engine_args)!r} for {model!r}: {cause}"
        )
        return StartFailure(error, _chainable(exc, secrets))
    message = f"{where}: {cause.rstrip('. ')}" + (f"; {hint}" if hint else "")
    return StartFailure(EngineStartError(message), _chainable(exc, secrets))


#: What vLLM says of a prompt over the context window (the renderer's and the input
#: processor's messages), and the `parameter` its `VLLMValidationError` names then.
_CONTEXT_TEXTS = (
    "maximum context length",
    "longer than the maximum model length",
    "max_model_len",
)
_CONTEXT_PARAMETERS = frozenset({"input_tokens", "input_text"})
_BUSY_STATUSES = frozenset({429, 503})


def _over_context(exc: BaseException, text: str) -> bool:
    if getattr(exc, "parameter", None) in _CONTEXT_PARAMETERS:
        return True
    lowered = text.lower()
    return any(t in lowered for t in _CONTEXT_TEXTS)


def _request_error(exc: BaseException, text: str) -> tuple[type[ModelCallError], str]:
    names = {c.__name__ for c in type(exc).__mro__}
    if "EngineDeadError" in names:
        return ServiceUnavailableError, f"the vLLM engine died: {text}"
    status = getattr(getattr(exc, "http_status", None), "value", None)
    if "GracefulHTTPError" in names and status in _BUSY_STATUSES:
        return ServiceUnavailableError, f"the vLLM engine is busy: {text}"
    if "VLLMClientError" in names or isinstance(exc, ValueError):
        if _over_context(exc, text):
            return ContextWindowExceededError, text
        return BadRequestError, f"vLLM rejected the request: {text}"
    return APIError, f"{type(exc).__name__}: {text}"


def call_error(
    exc: BaseException, *, provider: str, model: str, engine_args: Mapping[str, Any]
) -> ModelCallError:
    """Our error for a request to a running engine that raised `exc` (secrets scrubbed)."""
    kind, message = _request_error(exc, _scrub(str(exc), _secrets(engine_args)))
    cause_type = f"{type(exc).__module__}.{type(exc).__name__}"
    return kind(message, provider=provider, model=model, cause_type=cause_type)
