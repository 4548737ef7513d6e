"""What `model_registry.testing`'s fake server answers: chat completions and their chunks,
the faults a rule or a prompt asks for, OpenAI-shaped errors, and the enforced rate limit.

Imported by the server process (`_testing_server`); it needs only aiohttp and the
standard library.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import re
from typing import Any

from aiohttp import web

__all__ = [
    "Answer",
    "RateWindow",
    "error_response",
    "fault_response",
    "prompt_text",
    "reply_text",
    "rules_in_prompt",
]

_PROMPT_KNOB = re.compile(r"!(status|delay|drop|once|serial)=(\S+)")
#: Usage details a prompt asks to be reported (OpenAI's shape): `!cached=N`, `!reasoning=N`.
_USAGE_KNOB = re.compile(r"!(cached|reasoning)=(\d+)")


def error_response(status: int, message: str, etype: str, code: str | None) -> web.Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return web.json_response(body, status=status)


class RateWindow:
    """A strict provider's request limit for one model: a request is admitted only if the
    trailing 60 s then hold at most `rpm` admitted requests and the trailing 1 s at most
    1.5x rpm/60 (rounded down, at least 1). Refused requests are not admitted."""

    def __init__(self, rpm: float) -> None:
        per_second = max(1, math.floor(1.5 * rpm / 60))
        self.bounds = ((60.0, max(1, math.floor(rpm))), (1.0, per_second))
        self.admitted = collections.deque[float]()  # the last 60 s, oldest first

    def admit(self, now: float) -> float:
        """0.0 when the request at `now` is admitted (and recorded), else the seconds until
        it would have been."""
        times = self.admitted
        while times and times[0] <= now - 60.0:
            times.popleft()
        waits = [times[-n] + span - now for span, n in self.bounds if len(times) >= n]
        wait = max(waits, default=0.0)
        if wait <= 0.0:
            times.append(now)
        return max(wait, 0.0)

    def refusal(self, model: str, wait: float) -> web.Response:
        """An OpenAI-shaped 429 saying when to come back (`Retry-After` rounded up)."""
        (_, per_minute), (_, per_second) = self.bounds
        millis = math.ceil(wait * 1000)
        message = (
            f"Rate limit reached for {model} on requests per min (RPM): Limit {per_minute} "
            f"({per_second} a second). Please try again in {millis}ms."
        )
        response = error_response(429, message, "requests", "rate_limit_exceeded")
        response.headers["Retry-After"] = str(math.ceil(wait))
        response.headers["retry-after-ms"] = str(millis)
        return response


def prompt_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def rules_in_prompt(body: dict[str, Any]) -> dict[str, Any]:
    """Faults asked for by the prompt itself: `!status=500`, `!delay=0.5`, `!drop=1`,
    `!once=500` (the first request with this prompt only), `!serial=1`."""
    rule: dict[str, Any] = {}
    for knob, value in _PROMPT_KNOB.findall(prompt_text(body)):
        rule[knob] = int(value) if knob in ("status", "once") else float(value)
    return rule


def reply_text(body: dict[str, Any], rule: dict[str, Any]) -> str:
    """The rule's `reply`, else "echo: " and the last user message."""
    messages = body.get("messages") or []
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    content = last.get("content")
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) for part in content)
    return str(rule.get("reply") or f"echo: {content}")


def _usage(body: dict[str, Any], words: list[str]) -> dict[str, Any]:
    """Token counts: one per whitespace-separated word; the details a prompt asks for with
    `!cached=N` (`prompt_tokens_details.cached_tokens`) and `!reasoning=N`
    (`completion_tokens_details.reasoning_tokens`)."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": len(words),
        "total_tokens": prompt + len(words),
    }
    for knob, value in _USAGE_KNOB.findall(prompt_text(body)):
        if knob == "cached":
            usage["prompt_tokens_details"] = {"cached_tokens": int(value)}
        else:
            usage["completion_tokens_details"] = {"reasoning_tokens": int(value)}
    return usage


class Answer:
    """One chat completion to send: its id, model, text, usage and finish reason."""

    def __init__(self, body: dict[str, Any], model: str, reply: str, rule: dict[str, Any]) -> None:
        self.ident = f"chatcmpl-{os.urandom(6).hex()}"
        self.model = model
        self.reply = reply
        self.words = reply.split(" ")
        self.usage = _usage(body, self.words)
        self.finish = rule.get("finish_reason", "stop")

    def _head(self, kind: str, created: int) -> dict[str, Any]:
        return {"id": self.ident, "object": kind, "created": created, "model": self.model}

    def completion(self, created: int) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.reply}
        choice = {"index": 0, "message": message, "finish_reason": self.finish}
        return {**self._head("chat.completion", created), "choices": [choice], "usage": self.usage}

    def chunk(self, created: int, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {**self._head("chat.completion.chunk", created), "choices": choices, **extra}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    def delta(self, created: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self.chunk(created, [{"index": 0, "delta": delta, "finish_reason": finish}])


def fault_response(request: web.Request, rule: dict[str, Any]) -> web.Response | None:
    """The fault a rule asks for (a dropped connection, a status, a fixed body), or None."""
    if rule.get("drop"):
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError
    if rule.get("status"):
        message = rule.get("message") or f"injected error {rule['status']}"
        etype = rule.get("error_type") or "server_error"
        response = error_response(rule["status"], message, etype, rule.get("error_code"))
        response.headers.update(rule.get("headers") or {})
        return response
    if rule.get("body") is not None:
        headers = {"Content-Type": rule.get("content_type") or "application/json"}
        return web.Response(status=200, body=rule["body"].encode(), headers=headers)
    return None
