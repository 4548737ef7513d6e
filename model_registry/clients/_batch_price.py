"""The price of one answer at its provider's batch price, by LiteLLM's own batch pricing.

LiteLLM's `batch_cost_calculator` takes the `*_batches` prices of its price map
(`input_cost_per_token_batches`, `output_cost_per_token_batches`, ...) and, where a model has
none, half of its per-token price. Prices given in a call's params count as LiteLLM counts
them for a normal call: only when both `input_cost_per_token` and `output_cost_per_token` are
given, and then they (and any other LiteLLM price key given, `*_batches` ones included)
replace the price map's entry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from model_registry.types import Usage

__all__ = ["batch_cost"]

logger = logging.getLogger("model_registry")

#: What makes a model priced: one of these in its price-map entry (or in the params).
_PRICE_KEYS = (
    "input_cost_per_token",
    "input_cost_per_token_batches",
    "output_cost_per_token",
    "output_cost_per_token_batches",
)


def batch_cost(route_or_model: str, usage: Usage, params: Mapping[str, Any]) -> float | None:
    """USD for an answer with `usage` at the batch price of `route_or_model` (a LiteLLM route
    such as "openai/gpt-4o-mini", or a bare model name), prices in `params` honoured as
    LiteLLM does; None where neither prices it or the token counts are unknown."""
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    from model_registry.clients.litellm import _litellm

    litellm = _litellm()
    from litellm.cost_calculator import batch_cost_calculator

    model_info: Any = _given_prices(params) or _price_map_entry(litellm, route_or_model)
    if model_info is None:
        return None
    try:
        prompt_cost, completion_cost = batch_cost_calculator(
            _litellm_usage(litellm, usage), route_or_model, model_info=model_info
        )
    except Exception as exc:  # a price LiteLLM cannot apply: the cost stays unknown
        logger.debug("no batch price for %s: %r", route_or_model, exc)
        return None
    cost = float(prompt_cost) + float(completion_cost)
    return cost if math.isfinite(cost) else None


def _given_prices(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The LiteLLM price keys in `params`, when both per-token prices are among them."""
    if params.get("input_cost_per_token") is None or params.get("output_cost_per_token") is None:
        return None
    from litellm.types.utils import CustomPricingLiteLLMParams

    fields = CustomPricingLiteLLMParams.model_fields
    return {key: value for key, value in params.items() if key in fields and value is not None}


def _price_map_entry(litellm: Any, route_or_model: str) -> dict[str, Any] | None:
    """LiteLLM's price-map entry for the model, or None where it has no price."""
    try:
        info = litellm.get_model_info(model=route_or_model)
    except Exception:  # not in the price map
        return None
    if not any(info.get(key) is not None for key in _PRICE_KEYS):
        return None
    return dict(info)


def _litellm_usage(litellm: Any, usage: Usage) -> Any:
    """Our `Usage` as LiteLLM's, cached and reasoning tokens in their details."""
    cached, reasoning = usage.cached_tokens, usage.reasoning_tokens
    return litellm.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=None if cached is None else {"cached_tokens": cached},
        completion_tokens_details=None if reasoning is None else {"reasoning_tokens": reasoning},
    )
