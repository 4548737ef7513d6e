"""The batch endpoints of `model_registry.testing`'s fake server: their routes, the OpenAI
endpoints' authorization, the counting of refusals, and the control calls (`configure`,
`stats`, `jobs`) that `FakeOpenAIServer.configure_batches` and friends make.

Imported by the server process (`_testing_server`); aiohttp and the standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from model_registry._testing_batch_anthropic import AnthropicBatches
from model_registry._testing_batch_jobs import ANTHROPIC, OPENAI, Batches, RuleFor
from model_registry._testing_batch_openai import OpenAIBatches
from model_registry._testing_replies import error_response

Handler = Callable[[web.Request], Awaitable[web.Response]]
#: The prefixes each provider's paths are served under: `api_base` with or without `/v1`.
PREFIXES = ("/v1", "")


class BatchRoutes:
    """The batch side of the fake server, routed onto its aiohttp application."""

    def __init__(self, rule_for: RuleFor, created: int, api_key: str | None) -> None:
        self.api_key = api_key
        self.batches = Batches(rule_for, created)
        self.openai = OpenAIBatches(self.batches)
        self.anthropic = AnthropicBatches(self.batches, api_key)

    def add_routes(self, app: web.Application, control: str) -> None:
        """Route the OpenAI and Anthropic batch endpoints and the batch control calls."""
        o, a = self.openai, self.anthropic
        openai = [
            ("POST", "/files", o.upload),
            ("GET", "/files/{file_id}", o.get_file),
            ("DELETE", "/files/{file_id}", o.delete_file),
            ("GET", "/files/{file_id}/content", o.content),
            ("POST", "/batches", o.create),
            ("GET", "/batches", o.list),
            ("GET", "/batches/{batch_id}", o.retrieve),
            ("POST", "/batches/{batch_id}/cancel", o.cancel),
        ]
        anthropic = [
            ("POST", "/messages/batches", a.create),
            ("GET", "/messages/batches", a.list),
            ("GET", "/messages/batches/{batch_id}", a.retrieve),
            ("DELETE", "/messages/batches/{batch_id}", a.delete),
            ("POST", "/messages/batches/{batch_id}/cancel", a.cancel),
            ("GET", "/messages/batches/{batch_id}/results", a.results),
        ]
        for prefix in PREFIXES:
            for method, path, handler in openai:
                app.router.add_route(method, prefix + path, self._guarded(OPENAI, handler))
            for method, path, handler in anthropic:
                app.router.add_route(method, prefix + path, self._guarded(ANTHROPIC, handler))
        app.router.add_post(f"{control}/batches/configure", self.configure)
        app.router.add_get(f"{control}/batches/stats", self.stats)
        app.router.add_get(f"{control}/batches/jobs", self.jobs)

    def _guarded(self, provider: str, handler: Handler) -> Handler:
        """`handler` behind the provider's authorization, its 4xx answers counted."""

        async def guarded(request: web.Request) -> web.Response:
            response = self._refusal(provider, request) or await handler(request)
            if 400 <= response.status < 500:
                self.batches.counts[provider].rejected += 1
            return response

        return guarded

    def _refusal(self, provider: str, request: web.Request) -> web.Response | None:
        if provider == ANTHROPIC:
            return self.anthropic.refusal(request)
        key = self.api_key
        if key is None or request.headers.get("Authorization") == f"Bearer {key}":
            return None
        return error_response(
            401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )

    def reset(self) -> None:
        self.batches.reset()

    async def configure(self, request: web.Request) -> web.Response:
        self.batches.configure(await request.json())
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.batches.summary(request.query.get("provider")))

    async def jobs(self, request: web.Request) -> web.Response:
        return web.json_response(self.batches.job_list(request.query.get("provider")))
