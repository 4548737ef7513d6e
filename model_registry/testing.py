"""Test doubles for pipelines built on model_registry: a fake OpenAI server, a tiny model.

Run a pipeline offline, with no keys, against a real HTTP server that fails on cue::

    from model_registry import get_client
    from model_registry.testing import fake_openai_server

    async with fake_openai_server() as server:
        client = get_client("openai:any", api_base=server.url, api_key="sk-fake")
        g = await client.generate("hi")              # g.text == "echo: hi"
        server.configure("any", status=503, times=1)  # the next call for "any" fails once
        assert server.stats("any").requests == 1

The server is real (aiohttp on 127.0.0.1, in its own process, so it answers while the
test's loop is busy) and speaks what LiteLLM's OpenAI client sends: `POST
/v1/chat/completions` (JSON, or server-sent events when `"stream": true`, usage on the last
chunk when `stream_options.include_usage`), `POST /v1/embeddings` (a unit vector per text,
seeded by its hash, `dimensions` floats, default 8; docs/embeddings.md) and `GET /v1/models`. The reply echoes the last
user message (`"echo: <text>"`), one token per word, unless a rule sets `reply`. Any model
name is accepted; rules and counts are kept per model name, so tests that use distinct
names stay apart while sharing one server.

Fault rules, per model: `server.configure(model, ...)` replaces the model's rule:

- `status=503` (with `message`, `error_type`, `error_code`): answer with that HTTP status
  and an OpenAI-shaped error body; `headers={"retry-after": "2"}` adds response headers
  (a `Retry-After` for 429/503);
- `times=N`: the fault (status, drop, body) hits only the first N requests, then the
  model answers normally (a retry succeeds);
- `delay=S`: wait S seconds before answering (a slow server, a timeout);
- `drop=True`: close the connection without an answer;
- `chunk_delay=S`: S seconds between the chunks of a stream;
- `trickle=S`: send a plain JSON answer in a few pieces S seconds apart;
- `body="..."`, `content_type="text/html"`: answer 200 with exactly this body (a login
  page, broken JSON, an empty body) instead of a completion;
- `reply="text"`, `finish_reason="length"`: what a normal answer says;
- `rpm=600`: enforce a rate limit as a strict provider does. A request is refused with
  a 429 (an OpenAI-shaped `rate_limit_exceeded` error, `Retry-After` in seconds rounded
  up and `retry-after-ms`: how long until it would have been admitted) when admitting it
  would put more than `rpm` requests in the trailing 60 s, or more than 1.5x rpm/60
  (rounded down, at least 1) in the trailing 1 s. Refused requests are not admitted
  and reach no other knob; the count starts afresh with each `configure` and `reset()`.

Fault rules, per prompt (written anywhere in a message; handy for one bad prompt inside
`generate_many`): `!status=500`, `!delay=0.5`, `!drop=1`; `!once=500` fails only the
first request with that exact prompt (its retry succeeds); `!serial=1` ends the answer
with ` #N`, N the server's request count (repeated prompts get distinct answers).
`!cached=N` and `!reasoning=N` report N cached prompt tokens and N reasoning tokens in the
answer's usage (OpenAI's `prompt_tokens_details` and `completion_tokens_details`).
Tool calls: `!tool=NAME:ARGS` in the last (user) message answers with a call of NAME whose
arguments are ARGS as written (several knobs, several calls); without one, a request with
`tools` and `tool_choice` "required" (or a named function) calls that tool with an example
value per required argument. Streams send the calls as OpenAI's `delta.tool_calls`.

What the server saw: `server.stats(model)` (or `stats()` for all models) gives
`requests` (refused ones included), `rejected` (429s of an enforced `rpm`), `in_flight`,
`max_in_flight`, `disconnects` (clients that hung up before the answer was complete)
and the latest 20 request `bodies` and `headers`; `request_starts(model)` the arrival
times (`time.monotonic()`, refused requests included); `wait_idle()` /
`await_idle()` wait until nothing is in flight; `reset()` forgets rules and counts.

Batch endpoints (docs/testing.md shows them): OpenAI Files + Batches under `server.url`,
Anthropic Message Batches under `server.anthropic_url`, in their documented shapes. A
batched request gets the answer it would get alone (model and prompt rules included); jobs
live in the server process, so they outlive the client that made them.
`server.configure_batches(...)` sets how the jobs created from then on behave:

- `duration=S`: a job ends S seconds after its creation (0: at once), or `polls=N`: at
  its Nth retrieval; requests finish in input order, evenly over that span;
- `fail_ids=[...]`, `fail_prompts=[...]` (substrings), `fail_status=500`: those requests
  fail with that status; `expire_ids`, `expire_prompts`: those expire when the job ends
  (OpenAI: the job `expired`, each `batch_expired` in the error file);
- `cancel_polls=N`: a cancel keeps the requests finished by then and cancels the rest,
  after N more retrievals showing it cancelling;
- `results_order="reversed"`: result files list the last request first;
- limits, by default as documented: `openai_max_requests=50_000`,
  `openai_max_bytes=200_000_000` (a larger upload is refused; a job over the count fails
  validation), `anthropic_max_requests=100_000`, `anthropic_max_bytes=256_000_000`.

`server.batch_stats(provider)` ("openai", "anthropic", None: both) counts `jobs_created`,
`files_uploaded`, `requests` (in jobs), `polls`, `lists`, `cancels`, `downloads`,
`rejected` (4xx); `batch_jobs()` lists the jobs. `stats()` does not count batched requests.

`fake_openai_server()` is for async code, `run_openai_server()` for synchronous code,
and `openai_server_fixture()` makes a pytest fixture of it (in a conftest:
`openai_server = openai_server_fixture()`). Run it alone for a CLI or a load test:
`python -m model_registry.testing --port 8000`.

`build_tiny_model(path)` builds a random-weight Llama that vLLM loads in seconds (for
tests of a local pipeline; it needs torch and transformers, which vLLM brings).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from model_registry import _testing_model, _testing_vision

__all__ = [
    "BatchStats",
    "FakeOpenAIServer",
    "ModelStats",
    "build_tiny_model",
    "fake_openai_server",
    "openai_server_fixture",
    "run_openai_server",
]

#: The server process's module, and the folder it is imported from (this package's parent,
#: first on the child's path, so the child runs this very copy of the package).
_SERVER_MODULE = "model_registry._testing_server"
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_READY = "OPENAI_SERVER_READY"  # the line _testing_server prints once it listens
_CONTROL = "/_control"


@dataclass(frozen=True)
class ModelStats:
    """What the server saw for one model (or for all models, as `stats()`)."""

    requests: int
    disconnects: int
    max_in_flight: int
    in_flight: int
    #: Requests refused with a 429 by an enforced `rpm` (`configure(model, rpm=...)`).
    rejected: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class BatchStats:
    """What the batch endpoints saw (of one provider, or of both, as `batch_stats()`)."""

    jobs_created: int
    files_uploaded: int
    #: Requests inside the jobs created (a request sent in two jobs counts twice).
    requests: int
    #: Retrievals of one job (`GET .../batches/{id}`).
    polls: int
    lists: int
    cancels: int
    #: File contents and result files read.
    downloads: int
    #: 4xx answers of the batch endpoints (a bad key, a limit, a malformed request).
    rejected: int


class FakeOpenAIServer:
    """Handle on a running fake server: its URL, and control calls (synchronous, over
    loopback, well under a millisecond)."""

    def __init__(self, host: str, port: int, api_key: str | None, pid: int | None = None) -> None:
        self.host = host
        self.port = port
        #: The key requests must carry (`Authorization: Bearer ...`), or None: any.
        self.api_key = api_key
        #: The server process's id (benchmarks pin it to a core).
        self.pid = pid
        self._root = f"http://{host}:{port}"
        #: The OpenAI base URL, ending in /v1: pass it as `api_base`.
        self.url = f"{self._root}/v1"
        #: The same as `url`.
        self.base_url = self.url
        #: The Anthropic base URL (no /v1): the batch endpoints are under `/v1/messages/batches`.
        self.anthropic_url = self._root

    def _control(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self._root}{_CONTROL}/{path}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def configure(
        self,
        model: str,
        *,
        status: int | None = None,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        drop: bool = False,
        times: int | None = None,
        reply: str | None = None,
        finish_reason: str = "stop",
        headers: dict[str, str] | None = None,
        body: str | None = None,
        content_type: str = "application/json",
        trickle: float = 0.0,
        rpm: float | None = None,
    ) -> None:
        """Set the rule for requests naming `model`, replacing any earlier one (the
        module's docstring describes each knob). ValueError: `rpm` below 1."""
        if rpm is not None and not 1 <= rpm < float("inf"):
            raise ValueError(f"rpm must be a finite number >= 1, got {rpm!r}")
        rule = dict(locals())
        del rule["self"]
        rule["headers"] = headers or {}
        self._control("configure", rule)

    def configure_batches(
        self,
        *,
        duration: float = 0.0,
        polls: int | None = None,
        fail_ids: Iterable[str] = (),
        fail_prompts: Iterable[str] = (),
        fail_status: int = 500,
        expire_ids: Iterable[str] = (),
        expire_prompts: Iterable[str] = (),
        cancel_polls: int = 0,
        results_order: Literal["input", "reversed"] = "input",
        openai_max_requests: int = 50_000,
        openai_max_bytes: int = 200_000_000,
        anthropic_max_requests: int = 100_000,
        anthropic_max_bytes: int = 256_000_000,
    ) -> None:
        """Set how the jobs created from now on behave, replacing earlier settings (the
        module's docstring describes each knob). ValueError: a negative count or time."""
        if duration < 0 or (polls is not None and polls < 0) or cancel_polls < 0:
            raise ValueError("duration, polls and cancel_polls must not be negative")
        if results_order not in ("input", "reversed"):
            raise ValueError(f"results_order must be 'input' or 'reversed', got {results_order!r}")
        knobs = dict(locals())
        del knobs["self"]
        for name in ("fail_ids", "fail_prompts", "expire_ids", "expire_prompts"):
            knobs[name] = [str(item) for item in knobs[name]]
        self._control("batches/configure", knobs)

    def batch_stats(self, provider: Literal["openai", "anthropic"] | None = None) -> BatchStats:
        """Counts of the batch endpoints of `provider`, or of both when None."""
        return BatchStats(**self._control("batches/stats" + _query(provider, "provider")))

    def batch_jobs(self, provider: Literal["openai", "anthropic"] | None = None) -> list[Any]:
        """Every batch job (of `provider`), oldest first: dicts of `id`, `provider`, `state`
        ("running", "cancelling", "ended", "failed"), `custom_ids` and `counts`."""
        return list(self._control("batches/jobs" + _query(provider, "provider")))

    def reset(self) -> None:
        """Forget every rule and every count, the batch knobs, jobs and files too."""
        self._control("reset", {})

    def stats(self, model: str | None = None) -> ModelStats:
        """Counts for `model`, or for all requests when None."""
        return ModelStats(**self._control("stats" + _query(model)))

    def request_starts(self, model: str | None = None) -> list[float]:
        """When each request (for `model`) arrived, as `time.monotonic()` (Linux: the same
        clock in the test process), in arrival order."""
        return [float(t) for t in self._control("starts" + _query(model))]

    def wait_idle(self, model: str | None = None, within: float = 5.0) -> ModelStats:
        """Wait until no request (for `model`) is in flight; its stats then. Raises
        TimeoutError after `within` seconds."""
        deadline = time.monotonic() + within
        while (stats := self.stats(model)).in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats.in_flight} request(s) still in flight after {within} s")
            time.sleep(0.01)
        return stats

    async def await_idle(self, model: str | None = None, within: float = 5.0) -> ModelStats:
        """`wait_idle` for async code: polls in a thread, so the caller's loop keeps running."""
        return await asyncio.to_thread(self.wait_idle, model, within)

    def __repr__(self) -> str:
        return f"<FakeOpenAIServer {self.url}>"


def _query(value: str | None, name: str = "model") -> str:
    return f"?{name}={urllib.parse.quote(value)}" if value else ""


def _start(api_key: str | None, host: str, timeout: float) -> tuple[subprocess.Popen[str], int]:
    """Start the server process; it and its port once it listens."""
    command = [sys.executable, "-P", "-m", _SERVER_MODULE, "--host", host, "--port", "0"]
    if api_key is not None:
        command += ["--api-key", api_key]
    path = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    try:
        return process, _wait_ready(process, timeout)
    except BaseException:
        _stop(process)
        raise


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(_READY):
            return int(line.split()[1])
        if not line and process.poll() is not None:
            raise RuntimeError(
                f"the fake OpenAI server exited with code {process.returncode} before it "
                "listened (its error is above, on stderr)"
            )
    raise RuntimeError(f"the fake OpenAI server did not start within {timeout} s")


def _stop(process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """Terminate the server, kill it if it has not exited within `timeout` s, reap it."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def run_openai_server(
    *, api_key: str | None = None, host: str = "127.0.0.1", startup_timeout: float = 30.0
) -> Iterator[FakeOpenAIServer]:
    """Start the fake server in a child process, yield its handle, stop it on exit.

    `api_key`: when set, requests without `Authorization: Bearer <api_key>` get a 401.
    """
    process, port = _start(api_key, host, startup_timeout)
    try:
        yield FakeOpenAIServer(host, port, api_key, process.pid)
    finally:
        _stop(process)


@contextlib.asynccontextmanager
async def fake_openai_server(
    *, api_key: str | None = None, host: str = "127.0.0.1", startup_timeout: float = 30.0
) -> AsyncIterator[FakeOpenAIServer]:
    """`async with fake_openai_server() as server:` the fake server for async code: started
    and stopped in a thread, so the event loop keeps running meanwhile. `server.url` is the
    `api_base` to give a client; `api_key` as for `run_openai_server`."""
    process, port = await asyncio.to_thread(_start, api_key, host, startup_timeout)
    try:
        yield FakeOpenAIServer(host, port, api_key, process.pid)
    finally:
        await asyncio.to_thread(_stop, process)


def openai_server_fixture(
    *,
    scope: Literal["session", "package", "module", "class", "function"] = "session",
    api_key: str | None = None,
) -> Any:
    """A pytest fixture running one fake server for `scope`; assign it in a conftest:
    `openai_server = openai_server_fixture()` (`server.reset()` between tests if they
    share model names)."""
    import pytest

    @pytest.fixture(scope=scope)
    def _fixture() -> Iterator[FakeOpenAIServer]:
        with run_openai_server(api_key=api_key) as server:
            yield server

    return _fixture


def build_tiny_model(
    path: str | os.PathLike[str], *, kind: _testing_model.TinyKind = "chat", seed: int = 0
) -> Path:
    """Build a tiny random-weight Llama that vLLM loads in seconds into `path`; the directory.
    `get_client(f"local:{path}", max_model_len=512)` runs it (random text; `kind="vision"`:
    a BLIP-2 on it, one image a prompt; `"embedding"`: it embeds, its vectors of 64 numbers).
    A directory that holds a model is returned as is.
    Needs torch, transformers and tokenizers (vLLM brings them), else
    `BackendNotInstalledError` says what to install. Details: `_testing_model`.
    """
    if kind == "vision":
        return _testing_vision.build_vision(Path(path), seed)
    return _testing_model.build(Path(path), seed, kind)


if __name__ == "__main__":
    from model_registry._testing_server import main

    main()
