"""Spend limits: `max_cost` on a batch, kept by reserving each attempt's cost before it is sent.

A `Budget` holds the cap, what is spent (the store's recorded cost included) and what is
reserved by attempts in flight. Before each attempt is sent (the first and every retry, on
whichever name of a fallback chain takes it) it reserves an upper bound of that attempt's
cost at that name's price (`Pricing.bound`); an attempt that does not fit waits for the
attempts in flight to settle, and is refused with `BudgetExceededError` when it still does
not fit (the budget then closes: no later prompt is sent). The reservation of an answered
call is replaced by its real cost (`Generation.cost`; kept when that is None); an attempt
answered with an HTTP error (4xx/5xx other than a gateway timeout) gives its reservation
back, since providers bill answers, not errors; one whose outcome is unknown (a timeout, no
response, a cancel after it was sent) keeps it as spent. So the total never exceeds the cap
as long as each bound is one.

The bound: prompt tokens at most the UTF-8 bytes of the messages as JSON (each token of a
byte-level BPE tokenizer, as GPT, Claude, Llama and Gemini use, covers at least one byte of
text; the JSON's keys and punctuation cover the chat format's tokens), plus `IMAGE_TOKENS`
per non-text content part and the JSON of tools and response_format (plus
`TOOLS_OVERHEAD` for the provider's tool prompt); answer tokens at most `max_tokens`
(`max_completion_tokens`), else the model's `max_output_tokens` in LiteLLM's price map;
each at the highest per-token price the map lists for the model that could apply (cache
writes where the call has `cache_control`, long-context prices the prompt could reach,
the `service_tier` asked for), or at
`input_cost_per_token`/`output_cost_per_token` given in kwargs or alias defaults, the prices
LiteLLM itself then uses.

The cap holds per process: the store is read once, when the batch starts.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from model_registry._prompts import Prompt, to_messages
from model_registry.errors import (
    BudgetExceededError,
    InvalidParameterError,
    ModelCallError,
    RequestTimeoutError,
)
from model_registry.types import Generation, Resolution

__all__ = [
    "Budget",
    "Pricing",
    "Reservation",
    "Spending",
    "check_max_cost",
    "pricing",
    "prompt_token_bound",
    "spent_attempt",
]

_T = TypeVar("_T")

#: Tokens reserved for each content part that is not text (an image is priced by its size:
#: at most about 1,600 tokens at OpenAI and Anthropic).
IMAGE_TOKENS = 2048
#: Tokens reserved for the prompt a provider adds when tools or a response_format are sent
#: (Anthropic's tool-use system prompt is about 350).
TOOLS_OVERHEAD = 1024
#: Statuses of an HTTP error whose request may still have been processed upstream.
_GATEWAY_TIMEOUTS = frozenset({408, 504, 524})
_INPUT = ("input_cost_per_token",)
#: Cache writes, billed over the input price only where the call asks for them.
_CACHE_WRITE = ("cache_creation_input_token_cost",)
_OUTPUT = ("output_cost_per_token", "output_cost_per_reasoning_token")
_TIERS = ("flex", "priority", "balanced", "ultrafast", "batches", "decisions")
_ABOVE = re.compile(r"_above_(\d+)k_tokens")


def check_max_cost(max_cost: Any) -> float | None:
    """`max_cost` as a float (None: no cap); InvalidParameterError for anything but a finite
    number >= 0."""
    if max_cost is None:
        return None
    if (
        isinstance(max_cost, bool)
        or not isinstance(max_cost, int | float)
        or not math.isfinite(max_cost)
        or max_cost < 0
    ):
        raise InvalidParameterError(
            f"max_cost must be a number of US dollars, 0 or more (e.g. max_cost=5.0), got "
            f"{max_cost!r}"
        )
    return float(max_cost)


# --- the budget ---------------------------------------------------------------------------


class Reservation:
    """Part of a budget held for one attempt (or one request of a provider batch job)."""

    __slots__ = ("amount", "open")

    def __init__(self, amount: float) -> None:
        self.amount = amount
        self.open = True

    def __repr__(self) -> str:
        return f"<Reservation {self.amount!r} USD {'open' if self.open else 'settled'}>"


class Budget:
    """A cap in USD, what is spent against it and what is reserved by attempts in flight.

    `reserve(amount) -> Reservation | None` holds `amount` if it fits now; `settle(r, cost)`
    replaces it by the real cost (None: the reservation is kept as spent); `release(r)` gives
    it back (nothing was billed). `await acquire(amount)` waits for reservations in flight to
    settle and raises BudgetExceededError (and closes the budget) when it cannot fit.
    A provider batch job reserves each request at the batch price before it is submitted.
    """

    def __init__(self, max_cost: float, spent: float = 0.0) -> None:
        self.max_cost = max_cost
        #: Settled costs, the store's recorded cost and kept reservations included.
        self.spent = spent
        #: Reserved by open reservations.
        self.held = 0.0
        #: Set once a reservation was refused for good: no later one is made.
        self.closed = False
        self._open = 0
        self._settled: anyio.Event | None = None

    def reserve(self, amount: float) -> Reservation | None:
        """Hold `amount` if it fits now (spent, held and it within the cap), else None."""
        if self.closed or self.spent + self.held + amount > self.max_cost:
            return None
        self.held += amount
        self._open += 1
        return Reservation(amount)

    def settle(self, reservation: Reservation, cost: float | None) -> None:
        """Replace an open reservation by the real cost (None: keep the reservation as spent)."""
        if not reservation.open:
            return
        reservation.open = False
        self._open -= 1
        self.held = self.held - reservation.amount if self._open else 0.0
        self.spent += reservation.amount if cost is None else cost
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def release(self, reservation: Reservation) -> None:
        """Give an open reservation back: nothing was billed."""
        self.settle(reservation, 0.0)

    async def acquire(self, amount: float) -> Reservation:
        """A reservation of `amount`, once the reservations in flight leave room for it;
        BudgetExceededError (and the budget closed) when they cannot."""
        while (reservation := self.reserve(amount)) is None:
            if self.closed or not self._open or self.spent + amount > self.max_cost:
                self.closed = True
                raise self.exceeded(amount)
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()
        return reservation

    def exceeded(self, amount: float | None = None) -> BudgetExceededError:
        """The error of a prompt not sent (`amount`: the bound that did not fit)."""
        self.closed = True
        would = "" if amount is None else f" and the next call may cost up to ${amount:.6f}"
        return BudgetExceededError(
            f"not sent: max_cost=${self.max_cost:.6f} would be exceeded (${self.spent:.6f} "
            f"spent, the results_db's recorded cost included{would}); nothing of it was "
            "stored: run again with a higher max_cost to send the prompts not answered",
            max_cost=self.max_cost,
            spent=self.spent,
        )


# --- prices --------------------------------------------------------------------------------


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
    size = len(_json(messages).encode("utf-8"))
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
    caches = "cache_control" in _json([params.get(k) for k in ("tools", "system")])
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
    return len(_json(sent).encode("utf-8")) + TOOLS_OVERHEAD


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# --- a batch's calls -------------------------------------------------------------------------


class Spending:
    """What a batch's calls spend under: its budget and the price of each name they may call."""

    def __init__(self, budget: Budget, prices: Mapping[str, Pricing]) -> None:
        self.budget = budget
        self.prices = prices

    @contextlib.contextmanager
    def call(self, prompt: Prompt) -> Iterator[_CallSpend]:
        """The spend of one prompt's call: its attempts reserve (see `spent_attempt`);
        `settle` it with the answer. A reservation left open at the end is kept as spent."""
        spend = _CallSpend(self, prompt)
        token = _CALL.set(spend)
        try:
            yield spend
        finally:
            _CALL.reset(token)
            if spend.held is not None:
                self.budget.settle(spend.held, None)


class _CallSpend:
    """One prompt's call under a budget: the reservation of its answered attempt."""

    def __init__(self, spending: Spending, prompt: Prompt) -> None:
        self.spending = spending
        self.prompt = prompt
        self.held: Reservation | None = None
        self._prompt: tuple[int, bool] | None = None

    def bound(self, name: str) -> float:
        """The most an attempt of this call at `name`'s price can cost."""
        if self._prompt is None:
            messages = to_messages(self.prompt)
            self._prompt = (prompt_token_bound(messages), "cache_control" in _json(messages))
        return self.spending.prices[name].bound(*self._prompt)

    def settle(self, generation: Generation) -> None:
        """The answer came: its cost replaces the reservation (None: the reservation stays)."""
        if self.held is not None:
            self.spending.budget.settle(self.held, generation.cost)
            self.held = None


_CALL: contextvars.ContextVar[_CallSpend | None] = contextvars.ContextVar(
    "model_registry_call_spend", default=None
)


def spent_attempt(
    resolution: Resolution, attempt: Callable[[], Awaitable[_T]]
) -> Callable[[], Awaitable[_T]]:
    """`attempt` as it runs under the batch's budget (itself outside a max_cost batch): each
    run reserves its bound at `resolution`'s price first, and settles as the module says."""
    spend = _CALL.get()
    if spend is None or resolution.name not in spend.spending.prices:
        return attempt
    budget = spend.spending.budget

    async def reserved() -> _T:
        reservation = await budget.acquire(spend.bound(resolution.name))
        try:
            result = await attempt()
        except BaseException as exc:
            if _answered(exc):
                budget.release(reservation)
            else:
                budget.settle(reservation, None)
            raise
        if spend.held is not None:  # not expected: one answered attempt per call
            budget.settle(spend.held, None)
        spend.held = reservation
        return result

    return reserved


def _answered(exc: BaseException) -> bool:
    """Whether the server answered the attempt with an error (so it billed nothing)."""
    status = getattr(exc, "status_code", None)
    return (
        isinstance(exc, ModelCallError)
        and not isinstance(exc, RequestTimeoutError)
        and isinstance(status, int)
        and status not in _GATEWAY_TIMEOUTS
    )
