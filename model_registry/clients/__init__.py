"""Client classes, one per backend kind; each imports its heavy library only on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_registry.types import ClientKind

if TYPE_CHECKING:
    from model_registry.clients.base import BaseClient

__all__: list[str] = []


def client_class(kind: ClientKind) -> type[BaseClient]:
    """The client class for a provider kind ("hosted" -> LiteLLM, "local" -> vLLM)."""
    if kind == "hosted":
        from model_registry.clients.litellm import LiteLLMClient

        return LiteLLMClient
    from model_registry.clients.vllm import VLLMClient

    return VLLMClient
