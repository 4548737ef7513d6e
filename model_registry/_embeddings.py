"""The answer of an embedding call: `Embeddings`, one vector per input text.

It imports only `types`: clients build it, the package exports it."""

from __future__ import annotations

from typing import Any

import msgspec

from model_registry.types import Usage

__all__ = ["Embeddings"]


class Embeddings(msgspec.Struct, frozen=True):
    """Vectors for a list of texts, in input order, with the call's usage and cost.

    `cost` is LiteLLM's figure in USD (None where unknown, e.g. local models); `name` is
    the model name that answered; `from_store` counts the vectors read back from a
    results_db instead of a request (`embed_many`)."""

    vectors: list[list[float]]
    usage: Usage
    model: str
    provider: str
    cost: float | None = None
    name: str | None = None
    latency_s: float = 0.0
    from_store: int = 0

    @property
    def dimensions(self) -> int | None:
        """The length of each vector (None when there is none)."""
        return len(self.vectors[0]) if self.vectors else None

    def __len__(self) -> int:
        return len(self.vectors)

    def __repr__(self) -> str:
        cost = "None" if self.cost is None else f"{self.cost:.6g}"
        return (
            f"Embeddings(vectors=<{len(self.vectors)} x {self.dimensions}>, "
            f"usage={self.usage!r}, cost={cost}, model={self.model!r}, "
            f"provider={self.provider!r}, name={self.name!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON, the vectors included."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["usage"] = {k: v for k, v in data["usage"].items() if v is not None}
        return data
