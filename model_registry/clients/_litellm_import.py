"""LiteLLM imported once, on first use (never by `import model_registry`), quietly and
without network: `import_litellm()`."""

from __future__ import annotations

import logging
import os
from types import ModuleType

from model_registry.errors import BackendNotInstalledError

__all__ = ["import_litellm", "imported_litellm"]

_INSTALL_HINT = (
    "LiteLLM comes with model-registry: 'pip install model-registry-llm' (in a checkout: "
    "'uv sync', with --inexact to keep a vLLM installed by pip)"
)
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_litellm_module: ModuleType | None = None


def import_litellm() -> ModuleType:
    """Import LiteLLM once, quietly and without network; raise an install hint if missing."""
    global _litellm_module
    if _litellm_module is not None:
        return _litellm_module
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # else every Anthropic call tries to fetch a beta-header map from GitHub
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    if os.environ.get("LITELLM_LOG") == "":
        # what `export LITELLM_LOG=` leaves; LiteLLM would fail on every call with it
        del os.environ["LITELLM_LOG"]
    try:
        import litellm
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"hosted models need LiteLLM, which is not installed: {_INSTALL_HINT}"
        ) from exc
    litellm.suppress_debug_info = True
    if "LITELLM_LOG" not in os.environ:
        for name in _LITELLM_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
    _litellm_module = litellm
    return litellm


def imported_litellm() -> ModuleType | None:
    """LiteLLM if `import_litellm()` has imported it, else None (nothing is imported)."""
    return _litellm_module
