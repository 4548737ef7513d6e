"""An engine output whose finish_reason is vLLM's "error" is an `APIError`, never a
`Generation` with that reason (vLLM's own output types, no engine needed)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from model_registry.clients._asked import Asked
from model_registry.clients._vllm_output import Tally, local_generation
from model_registry.errors import APIError

pytestmark = pytest.mark.local


def _output(finish_reason: str) -> object:
    from vllm.outputs import CompletionOutput, RequestOutput

    completion = CompletionOutput(0, "ab", [5, 6], None, None, finish_reason=finish_reason)
    return RequestOutput("r1", None, [1, 2, 3], None, [completion], finished=True)


@pytest.mark.parametrize("reason", ["error", "stop"])
def test_an_engine_error_finish_raises_and_a_stop_is_a_generation(reason: str) -> None:
    client = SimpleNamespace(provider="local", model_id="/m/tiny", name="tiny")
    tally = Tally(delta=False)
    tally.add(_output(reason))
    asked = (Asked(None, False), 0)
    if reason == "error":
        with pytest.raises(APIError, match="finish_reason 'error'") as caught:
            local_generation(client, tally, time.perf_counter(), asked, None, None)
        assert (caught.value.provider, caught.value.model) == ("local", "/m/tiny")
    else:
        generation = local_generation(client, tally, time.perf_counter(), asked, None, None)
        assert (generation.text, generation.finish_reason) == ("ab", "stop")
        assert generation.usage.prompt_tokens == 3
