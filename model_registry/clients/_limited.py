"""The limits one client calls under: its provider's limiter (shared by every client of
that provider, endpoint and key in the process), its name's, and `get_client(limits=)`'s.

A hosted client always has its provider's limiter (unlimited when none is declared), so a
429/503 with Retry-After (`ModelCallError.retry_after`) pauses every client of that
provider. When no limit is declared, a call only reads the cooldown's deadline: no
acquire, no token estimate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from model_registry.errors import ModelCallError
from model_registry.limits import (
    Limiter,
    Limits,
    Permit,
    acquire,
    alias_key,
    estimate_tokens,
    limiter_for,
    provider_key,
    take_request,
)
from model_registry.types import Prompt, Resolution

__all__ = ["CallLimits"]

logger = logging.getLogger("model_registry")
_LONG_COOLDOWN = 60.0  # seconds: a longer Retry-After is logged


class CallLimits:
    """The limiters of one client; `binding` is False while no declared limit applies."""

    def __init__(self) -> None:
        self.limiters: tuple[Limiter, ...] = ()
        #: The provider's limiter: Retry-After cools it down (None: a local client without).
        self.cooldown: Limiter | None = None
        self.binding = False
        self._counts_tokens = False
        self._params: Mapping[str, Any] = {}

    def configure(
        self,
        resolution: Resolution,
        provider: Limits | None,
        alias: Limits | None,
        code: Limits | None,
    ) -> None:
        """Take the limiters of `resolution`'s provider (hosted: always), its name's (when
        declared) and `get_client(name, limits=)`'s (shared by the clients made with it)."""
        limiters: list[Limiter] = []
        params = resolution.params
        if resolution.kind == "hosted" or provider is not None:
            key = provider_key(resolution.provider, params.get("api_base"), _api_key(resolution))
            self.cooldown = limiter_for(key, provider or Limits())
            limiters.append(self.cooldown)
        if alias is not None:
            limiters.append(limiter_for(alias_key(resolution.name), alias))
        if code is not None:
            name = f"get_client({resolution.name!r}, limits=)"
            limiters.append(limiter_for(alias_key(name), code))
        self.limiters = tuple(limiters)
        declared = [limiter.limits for limiter in limiters if limiter.limits != Limits()]
        self.binding = bool(declared)
        self._counts_tokens = any(limits.tpm is not None for limits in declared)
        self._params = params

    async def wait_cooldown(self) -> None:
        """Wait out a cooldown of the provider, if one is in force (an attribute read if not)."""
        if self.cooldown is not None and self.cooldown.cooldown_until:
            await self.cooldown.wait_cooldown()

    @contextlib.asynccontextmanager
    async def permit(
        self, prompt: Prompt, kwargs: Mapping[str, Any]
    ) -> AsyncIterator[Permit | None]:
        """A permit from every limiter (None when no limit binds; a cooldown is still waited)."""
        if not self.binding:
            await self.wait_cooldown()
            yield None
            return
        tokens = 0
        if self._counts_tokens:
            max_tokens = kwargs.get("max_tokens", self._params.get("max_tokens"))
            tokens = estimate_tokens(prompt, max_tokens if isinstance(max_tokens, int) else None)
        async with acquire(self.limiters, tokens) as permit:
            yield permit

    async def before_retry(self) -> None:
        """Before a call's retry: wait out any cooldown and, where an `rpm` binds, take
        another request from its bucket (the server counts a retry like any request)."""
        if self.binding:
            await take_request(self.limiters)
        else:
            await self.wait_cooldown()

    def cool_down(self, error: ModelCallError) -> None:
        """A 429/503 with Retry-After pauses every client of this provider that long (a
        long pause is logged: calls waiting it out are not silently stuck)."""
        seconds, limiter = error.retry_after, self.cooldown
        if seconds is None or limiter is None:
            return
        if seconds > _LONG_COOLDOWN and seconds > limiter.cooldown_remaining() + 1:
            until = time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))
            logger.warning(
                "%s asked to wait %.0f s (Retry-After): every call to it waits until %s",
                error.provider,
                seconds,
                until,
            )
        limiter.cool_down(seconds)


def _api_key(resolution: Resolution) -> str | None:
    """The API key calls use (the provider limiter's key hashes it)."""
    key = resolution.params.get("api_key")
    env_var = resolution.spec.api_key_env
    if not key and env_var:
        key = os.environ.get(env_var)
    return key if isinstance(key, str) else None
