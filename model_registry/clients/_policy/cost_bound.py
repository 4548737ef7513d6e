"""An upper bound of what one call costs, from LiteLLM's price map or the prices it gives.

The bound: prompt tokens at most the UTF-8 bytes of the messages as JSON (each token of a
byte-level BPE tokenizer, as GPT, Claude, Llama and Gemini use, covers at least one byte of
text; the JSON's keys and punctuation cover the chat format's tokens), plus `IMAGE_TOKENS`
per non-text content part and the JSON of tools and response_format (plus
`TOOLS_OVERHEAD` for the provider's tool prompt); answer tokens at most `max_tokens`
(`max_completion_tokens`), else the model's `max_output_tokens` in LiteLLM's price map;
each at the highest per-token price the map lists for the model that could apply (cache
writes where the call has `cache_control`, long-context prices the prompt could reach,
the `service_tier` asked for), or at the `input_cost_per_token`/`output_cost_per_token`
given in kwargs or alias defaults, the prices LiteLLM itself then uses.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from model_registry.errors import InvalidParameterError
from model_registry.types import Resolution

__all__ = [
    "IMAGE_TOKENS",
    "TOOLS_OVERHEAD",
    "Pricing",
    "json_text",
    "pricing",
    "prompt_token_bound",
]

#: Tokens reserved for each content part that is not text (an image is priced by its size:
#: at most about 1,600 tokens at OpenAI and Anthropic).
IMAGE_TOKENS = 2048
#: Tokens reserved for the prompt a provider adds when tools or a response_format are sent
#: (Anthropic's tool-use system prompt is about 350).
TOOLS_OVERHEAD = 1024
_INPUT = ("input_cost_per_token",)
#: Cache writes, billed over the input price only where the call asks for them.
_CACHE_WRITE = ("cache_creation_input_token_cost",)
_OUTPUT = ("output_cost_per_token", "output_cost_per_reasoning_token")
_TIERS = ("flex", "priority", "balanced", "ultrafast", "batches", "decisions")
_ABOVE = re.compile(r"_above_(\d+)k_tokens")


@dataclass(frozen=True)
class Pricing:
    """What bounds the cost of one call to one name: its price-map entry (or the prices the
    call gives), the `service_tier` it asks for, its answer tokens at most and the prompt
    tokens it adds to its messages (tools, response_format)."""

    name: str
    entry: Mapping[str, Any]
    tier: Any
    output_tokens: int
    extra_prompt_tokens: int
    #: Whether the call's params ask for cache writes (`cache_control` in tools or system).
    caches: bool = False

    def bound(self, prompt_tokens: int, caches: bool = False) -> float:
        """An upper bound of the call's cost in USD, its messages at most `prompt_tokens`
        (`caches`: they ask for cache writes, billed above the input price)."""
        tokens = prompt_tokens + self.extra_prompt_tokens
        kinds = _INPUT + _CACHE_WRITE if caches or self.caches else _INPUT
        input_price = _highest(self.entry, kinds, tokens, self.tier) or 0.0
        output_price = _highest(self.entry, _OUTPUT, tokens, self.tier) or 0.0
        return tokens * input_price + self.output_tokens * output_price


def prompt_token_bound(messages: Sequence[Mapping[str, Any]]) -> int:
    """At most this many prompt tokens for `messages` (see the module docstring)."""
    size = len(json_text(messages).encode("utf-8"))
    parts = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts += sum(
                1 for p in content if not (isinstance(p, Mapping) and p.get("type") == "text")
            )
    return size + parts * IMAGE_TOKENS


def pricing(resolution: Resolution, kwargs: Mapping[str, Any], tier: str | None = None) -> Pricing:
    """The price of calls to `resolution` with `kwargs`, at `tier`'s prices where the map
    has them (`"batches"` for a provider batch job; default: the call's `service_tier`);
    InvalidParameterError when the model has no known price or no bound on its answer."""
    params = {**resolution.params, **kwargs}
    name, route = resolution.name, resolution.route or resolution.model_id
    entry = _price_entry(route, params)
    tier = tier or params.get("service_tier")
    if _highest(entry, _INPUT, 0, tier) is None or _highest(entry, _OUTPUT, 0, tier) is None:
        raise InvalidParameterError(
            f"max_cost needs the price of {name!r} ({route}), which LiteLLM's price map does "
            "not list: give it in USD per token as input_cost_per_token and "
            "output_cost_per_token, in the call's kwargs or the alias's defaults (e.g. "
            f'[aliases."{name}".defaults] input_cost_per_token = 1.5e-07, '
            "output_cost_per_token = 6e-07)"
        )
    output_tokens = _output_tokens(params, entry)
    if output_tokens is None:
        raise InvalidParameterError(
            f"max_cost needs a bound on the length of each answer of {name!r} ({route}), "
            "whose maximum output LiteLLM's price map does not list: pass max_tokens=N"
        )
    caches = "cache_control" in json_text([params.get(k) for k in ("tools", "system")])
    return Pricing(name, entry, tier, output_tokens, _tools_tokens(params), caches)


def _price_entry(route: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The price-map entry LiteLLM prices a call by: the per-token prices given in the call
    (it registers them when both input and output are given), else its map's."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as the hosted client
    import litellm

    try:
        info = dict(litellm.get_model_info(route))
    except Exception:  # LiteLLM raises a bare Exception for a model it does not map
        info = {}
    if params.get("input_cost_per_token") is None or params.get("output_cost_per_token") is None:
        return info
    given = {k: v for k, v in params.items() if "_cost" in k or k.startswith("cost_")}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise InvalidParameterError(
                f"{key} must be a price in USD per token, 0 or more, got {value!r}"
            )
    keep = ("max_output_tokens", "max_tokens")
    return {**{k: info[k] for k in keep if info.get(k) is not None}, **given}


def _highest(
    entry: Mapping[str, Any], bases: tuple[str, ...], prompt_tokens: int, tier: Any
) -> float | None:
    """The highest price among the entry's keys that start with one of `bases` and could
    apply: of the tiers only `tier`, whose price replaces the standard one; long-context
    prices only past their threshold; None when there is none."""
    prices = []
    for key, value in entry.items():
        if not key.startswith(bases) or not _is_price(value):
            continue
        suffix = key.rsplit("_", 1)[-1]
        if suffix in _TIERS and suffix != tier:
            continue
        if suffix not in _TIERS and _is_price(entry.get(f"{key}_{tier}")):
            continue  # the tier's own price replaces this one
        above = _ABOVE.search(key)
        if above is not None and prompt_tokens <= int(above.group(1)) * 1000:
            continue
        prices.append(float(value))
    return max(prices, default=None)


def _is_price(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _output_tokens(params: Mapping[str, Any], entry: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    for key in ("max_output_tokens", "max_tokens"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _tools_tokens(params: Mapping[str, Any]) -> int:
    """Prompt tokens at most that tools, functions and a response_format add."""
    sent = [params[k] for k in ("tools", "functions", "tool_choice") if params.get(k)]
    response_format = params.get("response_format")
    if response_format is not None:
        from model_registry.clients._structured import output_schema

        schema = output_schema(response_format)
        sent.append(schema.json_schema if schema is not None else response_format)
    if not sent:
        return 0
    return len(json_text(sent).encode("utf-8")) + TOOLS_OVERHEAD


def json_text(value: Any) -> str:
    """`value` as compact-enough JSON text (what is not JSON as its str)."""
    return json.dumps(value, ensure_ascii=False, default=str)
