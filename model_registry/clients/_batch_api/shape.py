"""What a batch request says and how its answer reads: LiteLLM's own request transformation
(so params map as for a call of its own) and its own answer parsing.

A request body is what LiteLLM would send for the route and params: its
`get_optional_params` maps the OpenAI-style params for the provider (unsupported ones are
refused, as LiteLLM refuses them on a call), and the provider config's `transform_request`
writes the body (Anthropic's `system`, `max_tokens`, a schema as a tool). An answer goes
back through LiteLLM's parser (Anthropic) or straight into its `ModelResponse` (OpenAI),
then through the same structured-output and log-probability path as a call's answer.
LiteLLM is imported by the client's start, before any of this runs.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from model_registry._prompts import Prompt, to_messages
from model_registry._redaction import redact_text, secret_values
from model_registry.clients._asked import hosted_extras, hosted_request, openai_logprobs
from model_registry.clients._batch_price import batch_cost, price_params
from model_registry.clients._litellm_usage import read_usage
from model_registry.errors import InvalidParameterError
from model_registry.types import Generation

__all__ = ["RequestShape"]

logger = logging.getLogger("model_registry")

#: Params that say how to reach the provider or how to call, never what to ask (LiteLLM's
#: price keys are not sent either).
_NOT_IN_BODY = frozenset(
    {"api_key", "api_base", "timeout", "extra_headers", "num_retries", "max_retries"}
    | {"metadata", "stream_options"}
)


class RequestShape:
    """The request bodies of one batch and the reading of their answers.

    `params` are the call's params as the hosted client merges them (client's, then the
    batch's kwargs); `provider` is LiteLLM's provider (the route's first segment)."""

    def __init__(
        self, *, provider: str, model_id: str, params: dict[str, Any], name: str, shown: str
    ) -> None:
        from litellm.types.utils import LlmProviders
        from litellm.utils import ProviderConfigManager

        self.provider, self.model_id, self.name, self.shown = provider, model_id, name, shown
        self.params = params
        self.asked = hosted_request(params, f" in a batch of {name!r}")
        prices = price_params()
        wire = {k: v for k, v in params.items() if k not in _NOT_IN_BODY and k not in prices}
        self._optional = _optional_params(model_id, provider, wire, name)
        self._config: Any = ProviderConfigManager.get_provider_chat_config(
            model=model_id, provider=LlmProviders(provider)
        )
        #: Anthropic's schema as a tool: the answer's tool input is its text.
        self.json_mode = bool(self._optional.get("json_mode"))

    def body(self, prompt: Prompt) -> dict[str, Any]:
        """The request body LiteLLM would send for `prompt`."""
        messages: Any = copy.deepcopy(to_messages(prompt))
        optional = copy.deepcopy(self._optional)
        body: dict[str, Any] = self._config.transform_request(
            model=self.model_id,
            messages=messages,
            optional_params=optional,
            litellm_params={},
            headers={},
        )
        body.update(body.pop("extra_body", None) or {})
        body.pop("stream", None)
        body.pop("json_mode", None)
        return body

    def generation(self, answer: dict[str, Any], *, batch_id: str, latency: float) -> Generation:
        """The Generation of one answer (a chat body of the provider's shape); raises
        OutputValidationError for a structured answer that does not validate."""
        response = self._response(answer)
        choice = response.choices[0] if response.choices else None
        message = getattr(choice, "message", None)
        asked = self.asked
        if asked.logprobs and openai_logprobs(getattr(choice, "logprobs", None)) is None:
            logger.warning("%s: logprobs were asked, but the batch answer has none", self.name)
            asked = asked._replace(logprobs=False)  # the answer is paid for: kept
        tokens = getattr(response, "usage", None)  # LiteLLM's: cache writes kept apart
        usage = read_usage(tokens)
        route = f"{self.provider}/{self.model_id}"
        return Generation(
            text=getattr(message, "content", None) or "",
            finish_reason=getattr(choice, "finish_reason", None),
            usage=usage,
            model=getattr(response, "model", None) or self.model_id,
            provider=self.shown,
            latency_s=latency,
            raw=answer,
            cost=batch_cost(route, usage if tokens is None else tokens, self.params),
            name=self.name,
            batch_id=batch_id,
            **hosted_extras(response, asked, provider=self.shown, model=self.model_id),
        )

    def _response(self, answer: dict[str, Any]) -> Any:
        import httpx
        from litellm import ModelResponse

        if self.provider == "anthropic":
            return self._config.transform_parsed_response(
                completion_response=answer,
                raw_response=httpx.Response(200),
                model_response=ModelResponse(),
                json_mode=self.json_mode or None,
            )
        return ModelResponse(**answer)


def _optional_params(
    model_id: str, provider: str, wire: dict[str, Any], name: str
) -> dict[str, Any]:
    """LiteLLM's mapping of the params for `provider`; a param it refuses is ours to raise."""
    from litellm.utils import get_optional_params

    try:
        optional: dict[str, Any] = get_optional_params(
            model=model_id, custom_llm_provider=provider, **wire
        )
    except Exception as exc:
        message = str(getattr(exc, "message", None) or exc).split("\n")[0]
        raise InvalidParameterError(
            redact_text(
                f"a batch of {name!r} cannot send these params to {provider}: {message} "
                "(nothing was sent)",
                secret_values(wire),
            )
        ) from None
    optional.pop("stream", None)
    return optional
