"""Local adapter, part 4: a call's prompt as the engine takes it.

Text goes through the model's chat template (or as is, with `raw=True`). Messages with
image parts (OpenAI's `{"type": "image_url", "image_url": {"url": ...}}`) go through vLLM's
own chat renderer, which loads the images into the engine's multimodal input: a `data:`
URL as it is, a local file (a path or a `file://` URL) read here into a data URL, an
`http(s)` URL fetched by vLLM only with `allow_image_downloads=True`. A model without a
vision encoder is refused before any generation.
"""

from __future__ import annotations

import base64
import mimetypes
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model_registry._prompts import Message, Prompt, to_messages
from model_registry._redaction import redact_text
from model_registry.errors import InvalidParameterError

__all__ = ["has_images", "local_prompt"]

#: How much of a URL an error message shows (data URLs run to megabytes).
_SHOWN = 80


def has_images(messages: list[Message]) -> bool:
    """Whether any message has an `image_url` content part."""
    return any(_image_parts(message) for message in messages)


def _image_parts(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list | tuple):
        return []
    return [p for p in content if isinstance(p, Mapping) and p.get("type") == "image_url"]


async def local_prompt(
    client: Any, entry: Any, prompt: Prompt, options: Mapping[str, Any], template: Any
) -> tuple[Any, Any]:
    """The engine's prompt for one call of `client` (a `VLLMClient`), and the tokenization
    kwargs to pass with it (None: none)."""
    if options.get("raw", False):
        if not isinstance(prompt, str):
            raise InvalidParameterError("raw=True takes a string prompt, not chat messages")
        return {"prompt": prompt}, None
    messages = to_messages(prompt)
    if has_images(messages):
        return await _with_images(client, entry, messages, options, template), None
    tokenizer = entry.tokenizer
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise InvalidParameterError(
            f"model {client.model_id!r} has no chat template; pass raw=True to send the "
            f"prompt as a plain completion"
        )
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **template
    )
    # The template writes the special tokens (BOS) itself, as vLLM's chat endpoint does.
    return {"prompt": text}, {"add_special_tokens": False}


async def _with_images(
    client: Any, entry: Any, messages: list[Message], options: Mapping[str, Any], template: Any
) -> Any:
    if not entry.engine.model_config.is_multimodal_model:
        raise InvalidParameterError(
            f"model {client.model_id!r} ({client.name!r}) is text-only: it has no vision "
            "encoder, so it cannot take the image parts of this prompt; send text only, or "
            "use a vision-language model"
        )
    allow = options.get("allow_image_downloads", False)
    if not isinstance(allow, bool):
        raise InvalidParameterError(f"'allow_image_downloads' must be true or false, got {allow!r}")
    local = [_local_message(m, i, allow) for i, m in enumerate(messages)]
    from vllm.renderers.params import ChatParams

    kwargs = {**template, "add_generation_prompt": True}
    _, prompts = await entry.engine.renderer.render_chat_async(
        [local], ChatParams(chat_template_kwargs=kwargs)
    )
    return prompts[0]


def _local_message(message: Message, index: int, allow_downloads: bool) -> dict[str, Any]:
    if not _image_parts(message):
        return dict(message)
    content: list[Any] = [
        _local_part(part, f"prompt message {index}, part {j}", allow_downloads)
        if isinstance(part, Mapping) and part.get("type") == "image_url"
        else part
        for j, part in enumerate(message["content"])
    ]
    return {**message, "content": content}


def _local_part(part: Mapping[str, Any], where: str, allow_downloads: bool) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise InvalidParameterError(
            f"{where}: an image_url part needs {{'image_url': {{'url': ...}}}} with a data: "
            f"URL, a local file path or an https URL, got {_shown(str(image))}"
        )
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "data":
        return dict(part)
    if scheme in ("http", "https"):
        if allow_downloads:
            return dict(part)
        raise InvalidParameterError(
            f"{where}: image {_shown(url)} is on the network, and a local model fetches "
            "images only when allowed: pass allow_image_downloads=True (to the call, "
            "get_client() or the alias defaults), or give a data: URL or a local file path"
        )
    if scheme == "file" or len(scheme) <= 1:  # a path ("C:\\..." reads as scheme "c")
        return {"type": "image_url", "image_url": {"url": _data_url(url, scheme, where)}}
    raise InvalidParameterError(
        f"{where}: image {_shown(url)} has an unknown scheme {scheme!r}; give a data: URL, "
        "a local file path or an https URL (with allow_image_downloads=True)"
    )


def _data_url(url: str, scheme: str, where: str) -> str:
    path = Path(
        urllib.request.url2pathname(urllib.parse.urlsplit(url).path) if scheme == "file" else url
    )
    path = path.expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidParameterError(
            f"{where}: image file {str(path)!r} cannot be read ({exc.strerror or exc}); "
            "check the path"
        ) from None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _shown(text: str) -> str:
    text = redact_text(text)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
