"""Every Python block in README.md runs, so the README cannot drift from the library.

Each block runs on its own, in a fresh namespace, in this process: top-level `await`
is allowed (a block that awaits runs as a coroutine under `asyncio.run`, as a user's
`python -m asyncio` session would). Hosted names go to the loopback OpenAI-compatible
server: every built-in hosted provider is re-registered with `register_provider` to
speak the OpenAI protocol at the server's `api_base`, the provider keys are dummies,
and the README's example server address (`http://127.0.0.1:8000/v1`) is the server's.
Local names in a block marked `<!-- readme-test: local -->` run on the tiny vLLM models
(an alias file in MODEL_REGISTRY_ALIASES points each README local name at the tiny model
of its kind, and the picture the image prompt reads is written to the working directory);
without vLLM they skip, and CI runs them in its local-engine step. A block the test
cannot run carries `<!-- readme-test: skip: <the reason> -->` right above it, visible
in the README's source.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from model_registry import aliases, providers
from tests.fixtures.openai_server import FakeOpenAIServer, openai_server_fixture
from tests.fixtures.tiny_model import tiny_model_dir, tiny_vision_dir

__all__ = ["tiny_model_dir", "tiny_vision_dir"]

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_SERVER = "http://127.0.0.1:8000/v1"
DUMMY_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY")
#: The local names the README's blocks use, each the tiny model of a kind (`build_tiny_model`):
#: "chat" for text and tool calls, "vision" for images; the embedding name runs the chat model,
#: which the block's `runner="pooling"` turns into an embedder.
LOCAL_ALIASES = {
    "Qwen/Qwen3-4B-Instruct-2507": "chat",
    "Qwen/Qwen2.5-VL-3B-Instruct": "vision",
    "Qwen/Qwen3-Embedding-0.6B": "chat",
}
#: The picture the README's image prompt reads from the working directory.
PICTURE = "cat.png"
REQUIRE_VLLM = "MODEL_REGISTRY_REQUIRE_VLLM"
#: Answers the server gives a model instead of its echo (the structured-output example).
REPLIES = {"gpt-4o-mini": '{"distractors": ["3", "5", "22"]}'}

#: What a block prints, by a fragment of its source: each text and how often it appears
#: (the tool-call, image and embedding block prints a call and vectors per name).
PRINTS = {
    "tools=[weather]": {"name='get_weather', arguments={'city': ": 2, "Embeddings(vectors=<2 x": 2}
}

_FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
_MARK = re.compile(r"<!--\s*readme-test:\s*(local|skip)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One ```python block: where it starts, its source, and its mark (if any)."""

    line: int
    source: str
    mark: str | None
    reason: str


def readme_blocks(text: str) -> list[Block]:
    """The Python blocks of a markdown text, each with the mark on the line above it."""
    blocks = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(above)
        if mark is not None and mark.group(1) == "skip" and not mark.group(2):
            raise ValueError(f"README.md:{line}: a skipped block must say why")
        blocks.append(
            Block(
                line,
                match.group(1),
                mark.group(1) if mark else None,
                (mark.group(2) or "") if mark else "",
            )
        )
    return blocks


def run_block(block: Block, server_url: str) -> None:
    """Compile the block as README.md's own lines and run it (awaiting it if it awaits)."""
    source = "\n" * block.line + block.source.replace(EXAMPLE_SERVER, server_url)
    # dont_inherit: the block runs as a user's file would, without this module's
    # `from __future__ import annotations` (pydantic reads the annotations it sees)
    code = compile(
        source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    namespace = {"__name__": "__main__"}
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))

openai_server = openai_server_fixture()


@pytest.fixture
def hosted_at_server(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeOpenAIServer]:
    """Every built-in hosted provider answers from the loopback server, with dummy keys."""
    openai_server.reset()
    for model, reply in REPLIES.items():
        openai_server.configure(model, reply=reply)
    for var in DUMMY_KEYS:
        monkeypatch.setenv(var, f"dummy-{var.lower()}")
    for spec in providers.BUILTIN_PROVIDERS.values():
        if spec.kind == "hosted":
            provider = msgspec.structs.replace(
                spec, litellm_prefix="openai", api_base=openai_server.base_url
            )
            providers.register_provider(provider)
    yield openai_server


def _vllm_installed() -> bool:
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture
def local_on_tiny_model(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's local aliases run the tiny model (offline, a small KV cache on CPU)."""
    if not _vllm_installed():
        if os.environ.get(REQUIRE_VLLM) == "1":
            pytest.fail(f"{REQUIRE_VLLM}=1 but vLLM is not installed", pytrace=False)
        pytest.skip("vLLM is not installed: the README's local blocks run in CI's local step")
    models = {
        "chat": request.getfixturevalue("tiny_model_dir"),
        "vision": request.getfixturevalue("tiny_vision_dir"),
    }
    tables = "".join(
        f'[aliases."{name}"]\nprovider = "local"\nmodel_id = "{models[kind]}"\n'
        f'[aliases."{name}".defaults]\n'
        f"kv_cache_memory_bytes = {64 * 2**20}\nenforce_eager = true\n"
        for name, kind in LOCAL_ALIASES.items()
    )
    (tmp_path / "local.toml").write_text(tables, encoding="utf-8")
    monkeypatch.setenv(aliases.ALIASES_ENV_VAR, str(tmp_path / "local.toml"))
    for var, value in {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}.items():
        monkeypatch.setenv(var, value)
    aliases.clear_cache()
    write_picture(tmp_path / PICTURE)  # the test's working directory


def write_picture(path: Path) -> None:
    """A small PNG (Pillow comes with vLLM), for the README's image prompt."""
    from PIL import Image

    Image.new("RGB", (40, 30), "orange").save(path, format="PNG")


def _params() -> list[object]:
    params = []
    for block in BLOCKS:
        marks: list[pytest.MarkDecorator] = []
        if block.mark == "local":
            marks.append(pytest.mark.local)
        elif block.mark == "skip":
            marks.append(pytest.mark.skip(reason=f"README.md:{block.line}: {block.reason}"))
        params.append(pytest.param(block, id=f"line{block.line}", marks=marks))
    return params


@pytest.mark.parametrize("block", _params())
def test_readme_block_runs(
    block: Block,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # files a block writes (a results_db) land here
    server = request.getfixturevalue("hosted_at_server")
    if block.mark == "local":
        request.getfixturevalue("local_on_tiny_model")
    capsys.readouterr()
    try:
        run_block(block, server.base_url)
    finally:  # a block's event handlers and spans end with it (the events section's)
        from model_registry import events
        from model_registry.otel import uninstrument

        uninstrument()
        for name in events.EVENT_NAMES:
            events.off(name)
    printed = capsys.readouterr().out
    for fragment, expected in PRINTS.items():
        if fragment in block.source:
            counts = {text: printed.count(text) for text in expected}
            assert counts == expected, f"README.md:{block.line} printed:\n{printed}"


def test_every_expected_print_names_a_readme_block() -> None:
    for fragment in PRINTS:
        assert any(fragment in block.source for block in BLOCKS), fragment


def test_the_readme_has_python_blocks_and_marks_few() -> None:
    assert len(BLOCKS) >= 5
    assert all(block.mark != "skip" for block in BLOCKS), [b.line for b in BLOCKS]


def test_blocks_are_found_with_their_marks() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n"
        "<!-- readme-test: local -->\n```python\ny = 2\n```\n"
        "<!-- readme-test: skip: needs a GPU -->\n```python\nz = 3\n```\n"
        "```bash\nnot python\n```\n"
    )
    assert readme_blocks(text) == [
        Block(2, "x = 1\n", None, ""),
        Block(6, "y = 2\n", "local", ""),
        Block(10, "z = 3\n", "skip", "needs a GPU"),
    ]
    with pytest.raises(ValueError, match="must say why"):
        readme_blocks("<!-- readme-test: skip -->\n```python\nz = 3\n```\n")


def test_a_block_that_awaits_runs_and_its_errors_point_at_the_readme() -> None:
    run_block(Block(1, "import asyncio\nawait asyncio.sleep(0)\n", None, ""), "")
    with pytest.raises(ZeroDivisionError) as caught:
        run_block(Block(41, "import asyncio\nawait asyncio.sleep(1 / 0)\n", None, ""), "")
    frame = caught.traceback[-1]
    assert (Path(str(frame.path)), frame.lineno + 1) == (README, 43)


def test_the_readme_is_a_short_users_guide() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300  # reference material goes to docs/*.md
    for history in ("the seed", "original registry"):
        assert history not in text.lower()
    for link in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)\)", text):
        assert (README.parent / link).is_file(), link
