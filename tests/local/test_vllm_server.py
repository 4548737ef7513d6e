"""A fleet of vLLM servers is reached through LiteLLM: one real server on the tiny model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import get_client
from tests.local.conftest import SERVED_NAME

pytestmark = pytest.mark.local


async def test_an_alias_reaches_a_vllm_server_through_litellm(
    vllm_server: str, user_aliases: Callable[[str], Path]
) -> None:
    user_aliases(
        f"""
        [providers."fleet"]
        litellm_prefix = "hosted_vllm"
        api_base = "{vllm_server}"

        [aliases."fleet-tiny"]
        provider = "fleet"
        model_id = "{SERVED_NAME}"
        [aliases."fleet-tiny".defaults]
        temperature = 0.0
        """
    )
    async with get_client("fleet-tiny") as client:
        assert client.kind == "hosted"
        g = await client.generate("Hello, fleet.", max_tokens=6, ignore_eos=True)
        assert g.provider == "fleet"
        assert g.usage.completion_tokens == 6
        assert g.finish_reason == "length"
        assert g.text
        stream = client.stream("Hello, fleet.", max_tokens=6, ignore_eos=True)
        assert "".join([d async for d in stream]) == g.text
