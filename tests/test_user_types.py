"""What a user's type checker sees: the README's Python blocks and the client's results
pass `mypy --strict` (one run for both: mypy takes seconds to start).

A README block with top-level `await` is checked as the body of an `async def`, the way
the README says to run it (`asyncio.run(main())`); the others as they are.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from tests.test_readme import BLOCKS, README, Block

mypy_api = pytest.importorskip("mypy.api")

#: The client's results as a user types them (`assert_type` fails mypy on any other type).
API_TYPES = """
from typing import Any, assert_type

import msgspec
from pydantic import BaseModel

from model_registry import Generation, get_client


class Verdict(BaseModel):
    label: str


class Point(msgspec.Struct):
    x: int


async def check() -> None:
    client = get_client("gpt-4.1-mini")
    g = await client.generate("Judge this", response_format=Verdict)
    assert_type(g, Generation[Verdict])
    assert_type(g.parsed.label, str)
    assert_type((await client.generate("x", response_format=Point)).parsed, Point)
    assert_type(await client.generate("x"), Generation[Any])
    assert_type(await client.generate_many(["a", "b"]), list[Generation])
    assert_type(
        await client.generate_many(["a"], return_exceptions=True),
        list[Generation | BaseException],
    )
    async for _, result in client.iter_many(["a"]):
        assert_type(result, Generation)
    async for _, outcome in client.iter_many(["a"], return_exceptions=True):
        assert_type(outcome, Generation | BaseException)
    stream = client.stream("x")
    async for delta in stream:
        assert_type(delta, str)
    assert_type(stream.result, Generation)
    assert_type(stream.result.usage.total_tokens, int | None)
"""


def checked_source(block: Block) -> str:
    """The block as mypy checks it: wrapped in `async def` when it awaits at top level."""
    code = compile(block.source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if not code.co_flags & inspect.CO_COROUTINE:
        return block.source
    return "async def readme_block() -> None:\n" + textwrap.indent(block.source, "    ")


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """mypy --strict over every README block and API_TYPES: the folder and its report."""
    folder = tmp_path_factory.mktemp("user_types")
    files = [folder / "api_types.py"]
    files[0].write_text(API_TYPES, encoding="utf-8")
    for block in BLOCKS:
        files.append(folder / f"readme_line{block.line}.py")
        files[-1].write_text(checked_source(block), encoding="utf-8")
    config = folder / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\n[mypy-litellm.*,vllm.*,transformers.*]\n"
        "ignore_missing_imports = True\n",
        encoding="utf-8",
    )
    out, err, _ = mypy_api.run(
        ["--config-file", str(config), "--cache-dir", str(folder / "cache"), *map(str, files)]
    )
    return folder, out + err


def test_a_block_that_awaits_is_checked_inside_an_async_def() -> None:
    block = Block(1, "import asyncio\nawait asyncio.sleep(0)\n", None, "")
    assert checked_source(block) == (
        "async def readme_block() -> None:\n    import asyncio\n    await asyncio.sleep(0)\n"
    )
    assert checked_source(Block(1, "x = 1\n", None, "")) == "x = 1\n"


def test_every_readme_block_passes_mypy_strict(mypy_report: tuple[Path, str]) -> None:
    folder, report = mypy_report
    errors = [line for line in report.splitlines() if "readme_line" in line]
    assert errors == [], "mypy --strict on README.md's blocks:\n" + _readme_lines(
        "\n".join(errors), folder
    )


def test_results_are_typed_generations(mypy_report: tuple[Path, str]) -> None:
    _, report = mypy_report
    assert [line for line in report.splitlines() if "api_types.py" in line] == []


def _readme_lines(report: str, folder: Path) -> str:
    """mypy's report with each `readme_lineN.py:M:` as the README.md line it stands for."""
    wrapped = {b.line: checked_source(b) != b.source for b in BLOCKS}

    def where(match: re.Match[str]) -> str:
        start, line = int(match[1]), int(match[2])
        return f"README.md:{start + line - wrapped[start]}:"

    return re.sub(rf"{re.escape(str(folder))}/readme_line(\d+)\.py:(\d+):", where, report)
