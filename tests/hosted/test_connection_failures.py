"""Failures with no HTTP answer, against real sockets on 127.0.0.1: an `APIConnectionError`
with no status (none came), a message naming the URL and what happened, and the attempts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType

import pytest

from model_registry import APIConnectionError, get_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},'
    b'"finish_reason":null}]}\n\n'
)


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest, litellm: ModuleType) -> Iterator[str]:
    """Each test runs on both of LiteLLM's HTTP transports."""
    litellm.disable_aiohttp_transport = request.param == "httpx"
    try:
        yield request.param
    finally:
        litellm.disable_aiohttp_transport = False


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)


async def _banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An SSH server: it reads what comes and answers with its banner."""
    await _read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
    await writer.drain()
    writer.close()


async def _one_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 event stream that sends one chunk and ends cleanly, with no finish reason."""
    await _read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n0\r\n\r\n"
    )
    await writer.drain()
    writer.close()


async def _cut_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 event stream that sends one chunk and drops the connection."""
    await _read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(CHUNK):x}\r\n".encode()
        + CHUNK
        + b"\r\n"
    )
    await writer.drain()
    writer.transport.abort()


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def banner_url() -> AsyncIterator[str]:
    async for url in _serve(_banner):
        yield url


async def _call(api_base: str, *, stream: bool, num_retries: int = 0, **kwargs: object) -> None:
    client = get_client(
        "openai:m", api_base=api_base, api_key="sk-test", num_retries=num_retries, **kwargs
    )
    async with client:
        if stream:
            async for _ in client.stream("hi"):
                pass
        else:
            await client.generate("hi")


@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream"])
async def test_a_server_that_does_not_speak_http_is_a_connection_error_with_no_status(
    transport: str, banner_url: str, stream: bool
) -> None:
    with pytest.raises(APIConnectionError) as caught:
        await _call(banner_url, stream=stream)
    error = caught.value
    assert error.status_code is None
    assert "(HTTP" not in str(error)
    if transport == "aiohttp":  # httpx may see the banner only as a closed connection
        assert error.message.startswith(
            f"the server at {banner_url}/chat/completions did not answer in HTTP ("
        )
        assert "SSH-2.0-OpenSSH_9.6p1" in error.message
        assert error.message.endswith(
            "check api_base: its host and port may belong to another service"
        )
    else:
        assert f"{banner_url}/chat/completions" in error.message


@pytest.mark.parametrize("handler", [_one_chunk, _cut_off], ids=["clean-end", "dropped"])
async def test_a_stream_that_ends_after_one_chunk_is_a_connection_error_with_no_status(
    transport: str, handler: Handler
) -> None:
    deltas: list[str] = []
    async for url in _serve(handler):
        client = get_client("openai:m", api_base=url, api_key="sk-test", num_retries=0)
        async with client:
            with pytest.raises(APIConnectionError) as caught:
                async for delta in client.stream("hi"):
                    deltas.append(delta)
    assert deltas == ["Hel"]
    assert caught.value.status_code is None
    assert "(HTTP" not in str(caught.value)
    assert "litellm" not in caught.value.message.lower()


def _refused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("stream", [False, True], ids=["generate", "stream"])
async def test_a_refused_connection_names_the_url_and_the_attempts(
    transport: str, stream: bool
) -> None:
    port = _refused_port()
    with pytest.raises(APIConnectionError) as caught:
        await _call(f"http://127.0.0.1:{port}/v1", stream=stream, num_retries=1, timeout=60)
    error = caught.value
    assert error.status_code is None
    assert error.message == (
        f"connection refused by http://127.0.0.1:{port}/v1/chat/completions: nothing listens "
        "there; check api_base and that the server is running"
    )
    assert error.__notes__ == ["2 attempts made (num_retries=1), none answered"]


async def test_a_refused_connection_names_the_url_without_its_password(litellm: ModuleType) -> None:
    litellm.disable_aiohttp_transport = True  # aiohttp refuses a URL password with an api key
    try:
        port = _refused_port()
        with pytest.raises(APIConnectionError) as caught:
            await _call(f"http://alice:s3cret-pw@127.0.0.1:{port}/v1", stream=False)
    finally:
        litellm.disable_aiohttp_transport = False
    shown = str(caught.value) + "".join(caught.value.__notes__)
    assert f"connection refused by http://127.0.0.1:{port}/v1/chat/completions:" in shown
    assert "s3cret" not in shown and "alice" not in shown
    assert caught.value.__notes__ == ["1 attempt made (num_retries=0), none answered"]
