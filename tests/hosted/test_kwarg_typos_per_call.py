"""A per-call kwarg that looks misspelt is logged once per key and still sent (respx)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from model_registry import get_client
from tests.hosted.test_wire import OPENAI_RESPONSE, OPENAI_URL

pytestmark = pytest.mark.usefixtures("provider_keys")


async def test_a_misspelt_per_call_kwarg_is_logged_once_and_still_sent(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx_mock.post(OPENAI_URL).mock(return_value=httpx.Response(200, json=OPENAI_RESPONSE))
    async with get_client("openai:gpt-4.1") as client:
        with caplog.at_level("WARNING", logger="model_registry"):
            for _ in range(3):
                await client.generate("hi", frequency_penaltz=0.2)
    logged = [r.getMessage() for r in caplog.records if "frequency_penaltz" in r.getMessage()]
    assert len(logged) == 1
    assert "did you mean 'frequency_penalty'" in logged[0]
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert len(bodies) == 3
    assert all(body["frequency_penaltz"] == 0.2 for body in bodies)
