"""Images on local models: OpenAI `image_url` parts reach a vision model's engine (the tiny
BLIP-2 of `build_tiny_model(kind="vision")`) from a data URL, a local file, or (when
allowed) an http URL; a text-only model refuses them before any generation."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from model_registry import InvalidParameterError
from model_registry.testing import build_tiny_model
from tests.local.conftest import ENGINE_KWARGS

pytestmark = pytest.mark.local

#: The tokens that stand for one image in the tiny BLIP-2's prompt (its query tokens).
IMAGE_TOKENS = 4


def png(color: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    return buffer.getvalue()


def asking(url: str, text: str = "What is in the picture?") -> list[dict[str, Any]]:
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": parts}]


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "red.png"
    path.write_bytes(png("red"))
    return path


@pytest.fixture(scope="module")
def data_url(picture: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()


@pytest.fixture(scope="module")
async def seer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """The tiny vision model on its own engine (greedy)."""
    from model_registry import get_client

    model = build_tiny_model(tmp_path_factory.mktemp("tiny-vision"), kind="vision")
    client = await get_client(f"local:{model}", temperature=0.0, **ENGINE_KWARGS)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def image_server(picture: Path) -> Iterator[str]:
    """An http server on 127.0.0.1 serving the picture's folder; its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(picture.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_an_image_prompt_generates_from_a_data_url_and_a_local_file(
    seer: Any, data_url: str, picture: Path
) -> None:
    text_only = await seer.generate(
        [{"role": "user", "content": "What is in the picture?"}], max_tokens=1
    )
    from_data = await seer.generate(asking(data_url), max_tokens=8)
    assert from_data.text and from_data.finish_reason == "length"
    # The image reached the engine: its tokens are in the prompt.
    assert from_data.usage.prompt_tokens == text_only.usage.prompt_tokens + IMAGE_TOKENS
    for url in (str(picture), picture.as_uri()):
        from_file = await seer.generate(asking(url), max_tokens=8)
        assert from_file.text == from_data.text  # the same pixels, greedy
        assert from_file.usage.prompt_tokens == from_data.usage.prompt_tokens
    stream = seer.stream(asking(data_url), max_tokens=8)
    assert "".join([delta async for delta in stream]) == from_data.text


async def test_an_http_image_is_fetched_only_when_allowed(
    seer: Any, image_server: str, data_url: str
) -> None:
    url = f"{image_server}/red.png"
    with pytest.raises(InvalidParameterError, match="allow_image_downloads=True") as caught:
        await seer.generate(asking(url), max_tokens=8)
    assert "prompt message 0, part 1" in str(caught.value)
    with pytest.raises(InvalidParameterError, match="allow_image_downloads") as caught:
        await seer.generate(asking("https://user:s3cret@example.com/x.png"))
    assert "s3cret" not in str(caught.value)
    fetched = await seer.generate(asking(url), max_tokens=8, allow_image_downloads=True)
    assert fetched.text == (await seer.generate(asking(data_url), max_tokens=8)).text


async def test_a_missing_image_file_is_named(seer: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(InvalidParameterError, match=f"image file '{missing}' cannot be read"):
        await seer.generate(asking(str(missing)))


async def test_an_image_on_a_text_only_model_is_refused_naming_it(tiny: Any, data_url: str) -> None:
    with pytest.raises(InvalidParameterError, match="is text-only") as caught:
        await tiny.generate(asking(data_url), max_tokens=8)
    assert tiny.model_id in str(caught.value)


def test_build_tiny_model_builds_chat_vision_or_embedding_models(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'chat', 'vision' or 'embedding'"):
        build_tiny_model(tmp_path, kind="audio")  # type: ignore[arg-type]
