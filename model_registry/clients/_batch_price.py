"""The price of one answer at its provider's batch price, by LiteLLM's own batch pricing.

LiteLLM's `batch_cost_calculator` takes the `*_batches` prices of its price map
(`input_cost_per_token_batches`, `output_cost_per_token_batches`, and for prompt caching
`cache_read_input_token_cost_batches`, `cache_creation_input_token_cost_batches`) and, where
a model has none, half of its per-token price. Given LiteLLM's own usage of an answer,
Anthropic's cache writes (`cache_creation_input_tokens`) are priced as writes and its cache
reads as reads, both at the batch rate. Prices given in a call's params count as LiteLLM
counts them for a normal call: only when both `input_cost_per_token` and
`output_cost_per_token` are given, and then they (and any other LiteLLM price key given,
`*_batches` ones included) replace the price map's entry.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from typing import Any

from model_registry.clients._litellm_usage import litellm_usage
from model_registry.types import Usage

__all__ = ["batch_cost", "price_params"]

logger = logging.getLogger("model_registry")

#: What makes a model priced: one of these in its price-map entry (or in the params).
_PRICE_KEYS = (
    "input_cost_per_token",
    "input_cost_per_token_batches",
    "output_cost_per_token",
    "output_cost_per_token_batches",
)


def batch_cost(route_or_model: str, usage: Any, params: Mapping[str, Any]) -> float | None:
    """USD for an answer with `usage` at the batch price of `route_or_model` (a LiteLLM route
    such as "openai/gpt-4o-mini", or a bare model name), prices in `params` honoured as
    LiteLLM does; None where neither prices it or the token counts are unknown. `usage` is
    our `Usage` or LiteLLM's own usage of the answer (which keeps cache writes apart)."""
    if getattr(usage, "prompt_tokens", None) is None:
        return None
    if getattr(usage, "completion_tokens", None) is None:
        return None
    from model_registry.clients._litellm_import import import_litellm

    import_litellm()
    from litellm.cost_calculator import batch_cost_calculator

    model_info: Any = _given_prices(params) or _price_map_entry(route_or_model)
    if model_info is None:
        return None
    tokens = litellm_usage(usage) if isinstance(usage, Usage) else usage
    try:
        prompt_cost, completion_cost = batch_cost_calculator(
            tokens, route_or_model, model_info=model_info
        )
    except Exception as exc:  # a price LiteLLM cannot apply: the cost stays unknown
        logger.debug("no batch price for %s: %r", route_or_model, exc)
        return None
    cost = float(prompt_cost) + float(completion_cost)
    return cost if math.isfinite(cost) else None


@functools.cache
def price_params() -> frozenset[str]:
    """LiteLLM's price keys (`input_cost_per_token`, `*_batches`, ...): params that price a
    call and are never sent."""
    from litellm.types.utils import CustomPricingLiteLLMParams

    return frozenset(CustomPricingLiteLLMParams.model_fields)


def _given_prices(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The LiteLLM price keys in `params`, when both per-token prices are among them."""
    if params.get("input_cost_per_token") is None or params.get("output_cost_per_token") is None:
        return None
    fields = price_params()
    return {key: value for key, value in params.items() if key in fields and value is not None}


@functools.lru_cache(maxsize=64)
def _price_map_entry(route_or_model: str) -> dict[str, Any] | None:
    """LiteLLM's price-map entry for the model (read once per model), or None where it has
    no price."""
    import litellm

    try:
        info = litellm.get_model_info(model=route_or_model)
    except Exception:  # not in the price map
        return None
    if not any(info.get(key) is not None for key in _PRICE_KEYS):
        return None
    return dict(info)
