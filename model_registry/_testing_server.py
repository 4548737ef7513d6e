"""The process side of `model_registry.testing`'s fake OpenAI-compatible server.

Run as a module (`python -P -m model_registry._testing_server --port 0`): besides the
package's light `__init__` it imports only `_testing_replies` (what it answers),
`_testing_batches` (the batch endpoints, and the modules they are built from), aiohttp
(which LiteLLM brings) and the standard library, and prints `OPENAI_SERVER_READY <port>`
once it listens. The fault rules and the enforced rate limit (`rpm`) are documented in
`model_registry.testing`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import time
from typing import Any

from aiohttp import web

from model_registry._testing_batches import BatchRoutes
from model_registry._testing_replies import (
    Answer,
    RateWindow,
    error_response,
    fault_response,
    prompt_text,
    reply_text,
    rules_in_prompt,
)

#: The line the parent (`model_registry.testing`) waits for, followed by the port.
READY = "OPENAI_SERVER_READY"
CONTROL = "/_control"
#: How many bodies and headers each counter keeps (the latest ones).
KEEP = 20
#: The largest request body read (batch input files and Anthropic batches are large).
MAX_BODY = 1 << 30


class _ClientGone(Exception):
    """The client closed the connection while the server was still answering."""


async def _sleep_unless_gone(request: web.Request, seconds: float) -> None:
    """Sleep, but stop as soon as the client hangs up (aiohttp does not cancel handlers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        await asyncio.sleep(min(0.01, remaining))
        if request.transport is None or request.transport.is_closing():
            raise _ClientGone


async def _trickle(
    request: web.Request, text: str, seconds: float, pieces: int = 8
) -> web.StreamResponse:
    """Answer 200 with the JSON `text`, sent in `pieces` parts `seconds` apart."""
    data = text.encode()
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": str(len(data))}
    )
    await response.prepare(request)
    size = -(-len(data) // pieces)
    for start in range(0, len(data), size):
        if start:
            await _sleep_unless_gone(request, seconds)
        await response.write(data[start : start + size])
    await response.write_eof()
    return response


class _Counter:
    """What the server saw, overall or for one model."""

    def __init__(self) -> None:
        self.requests = 0
        self.rejected = 0  # 429s of an enforced `rpm`
        self.disconnects = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: time.monotonic() of each request's arrival (one clock for every process here)
        self.starts: list[float] = []

    def enter(self, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.starts.append(time.monotonic())
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.bodies = [*self.bodies[1 - KEEP :], body]
        self.headers = [*self.headers[1 - KEEP :], headers]

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if name != "starts"}


class FakeApp:
    """The server's state (rules, counters) and its request handlers."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.rules: dict[str, dict[str, Any]] = {}
        self.windows: dict[str, RateWindow] = {}  # per model: an enforced `rpm`
        self.total = _Counter()
        self.per_model: dict[str, _Counter] = {}
        self.failed_once: set[str] = set()  # prompts that asked for `!once=STATUS` and got it
        self.created = int(time.time())
        self.batch_routes = BatchRoutes(self.rule_for, self.created, api_key)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post(f"{CONTROL}/configure", self.configure)
        app.router.add_post(f"{CONTROL}/reset", self.reset)
        app.router.add_get(f"{CONTROL}/stats", self.stats)
        app.router.add_get(f"{CONTROL}/starts", self.starts)
        self.batch_routes.add_routes(app, CONTROL)
        return app

    # --- control -------------------------------------------------------------------

    async def configure(self, request: web.Request) -> web.Response:
        rule = await request.json()
        model, rpm = rule.pop("model"), rule.pop("rpm", None)
        self.rules[model] = {**rule, "seen": 0}
        self.windows.pop(model, None)
        if rpm is not None:
            self.windows[model] = RateWindow(rpm)
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self.rules.clear()
        self.windows.clear()
        self.failed_once.clear()
        self.batch_routes.reset()
        self.per_model.clear()  # requests still in flight leave the counters they entered
        # in place: requests in flight hold this object and leave it when they end
        in_flight = self.total.in_flight
        self.total.__init__()  # type: ignore[misc]
        self.total.in_flight = in_flight
        return web.json_response({"ok": True})

    def _counter(self, request: web.Request) -> _Counter:
        model = request.query.get("model")
        return self.total if model is None else self.per_model.get(model, _Counter())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._counter(request).to_dict())

    async def starts(self, request: web.Request) -> web.Response:
        return web.json_response(self._counter(request).starts)

    async def models(self, request: web.Request) -> web.Response:
        model = {"id": "fake-model", "object": "model", "created": self.created, "owned_by": "test"}
        return web.json_response({"object": "list", "data": [model]})

    # --- the OpenAI API ------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "request body is not JSON", "invalid_request_error", None)
        model = str(body.get("model", ""))
        headers = {k.lower(): v for k, v in request.headers.items()}
        counters = (self.total, self.per_model.setdefault(model, _Counter()))
        for counter in counters:
            counter.enter(body, headers)
        try:
            if (refusal := self.refusal(request, model)) is not None:
                for counter in counters:
                    counter.rejected += 1
                return refusal
            return await self.answer(request, body, model)
        except (_ClientGone, ConnectionResetError):
            for counter in counters:
                counter.disconnects += 1
            return web.Response(status=499)
        finally:
            for counter in counters:
                counter.in_flight -= 1

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries the key the server requires (if any)."""
        key = self.api_key
        return key is None or request.headers.get("Authorization") == f"Bearer {key}"

    def refusal(self, request: web.Request, model: str) -> web.Response | None:
        """A 429 when the model's enforced `rpm` does not admit this (authorized) request."""
        window = self.windows.get(model)
        if window is None or not self.authorized(request):
            return None
        wait = window.admit(time.monotonic())
        return window.refusal(model, wait) if wait else None

    def rule_for(self, body: dict[str, Any], model: str) -> tuple[dict[str, Any], bool, bool]:
        """The rule in force for this request, whether its fault applies, and `serial`."""
        rule = self.rules.get(model, {})
        if rule:
            rule["seen"] += 1
        faulty = bool(rule) and (rule.get("times") is None or rule["seen"] <= rule["times"])
        prompt_rule = rules_in_prompt(body)
        once, serial = prompt_rule.pop("once", None), prompt_rule.pop("serial", None)
        if once is not None and (text := prompt_text(body)) not in self.failed_once:
            self.failed_once.add(text)
            prompt_rule["status"] = int(once)
        if prompt_rule:
            rule, faulty = {**rule, **prompt_rule}, True
        return rule, faulty, bool(serial)

    async def answer(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        rule, faulty, serial = self.rule_for(body, model)
        if rule.get("delay"):
            await _sleep_unless_gone(request, rule["delay"])
        if not self.authorized(request):
            return error_response(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if faulty and (fault := fault_response(request, rule)) is not None:
            return fault
        reply = reply_text(body, rule)
        if serial:
            reply = f"{reply} #{self.total.requests}"
        answer = Answer(body, model, reply, rule)
        if not body.get("stream"):
            if rule.get("trickle"):
                text = json.dumps(answer.completion(self.created))
                return await _trickle(request, text, rule["trickle"])
            headers = rule.get("headers") or None
            return web.json_response(answer.completion(self.created), headers=headers)
        return await self.stream(request, body, rule, answer)

    async def stream(
        self, request: web.Request, body: dict[str, Any], rule: dict[str, Any], answer: Answer
    ) -> web.StreamResponse:
        """The answer as server-sent events, a word a chunk (`chunk_delay` apart)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        created = self.created
        await response.write(answer.delta(created, {"role": "assistant", "content": ""}))
        for i, word in enumerate(answer.words):
            if rule.get("chunk_delay"):
                await _sleep_unless_gone(request, rule["chunk_delay"])
            await response.write(answer.delta(created, {"content": f" {word}" if i else word}))
        await response.write(answer.delta(created, {}, answer.finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(answer.chunk(created, [], usage=answer.usage))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def serve(host: str, port: int, api_key: str | None) -> None:
    """Listen on `host:port` (0: any free port), print the ready line, serve until stopped."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    runner = web.AppRunner(FakeApp(api_key).application(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    print(f"{READY} {sock.getsockname()[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground (prints its port once ready)."""
    parser = argparse.ArgumentParser(
        description="A fake OpenAI-compatible server with injectable faults "
        "(see model_registry.testing)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--api-key", default=None, help="require this Bearer key (401 otherwise)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.api_key))


if __name__ == "__main__":
    main()
