"""Every Python block of the docs pages listed here runs, so they cannot drift from the
library (README.md's blocks run in tests/test_readme.py). A listed page's blocks need no
fixture: each starts what it uses (the loopback server of `model_registry.testing`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The pages whose blocks run as they stand.
RUNNABLE = ("testing.md", "embeddings.md", "events.md")
#: Generous: a block starts a loopback server and imports LiteLLM on a loaded machine.
_BLOCK_DEADLINE_S = 300
_FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _blocks() -> list[object]:
    params = []
    for page in RUNNABLE:
        text = (DOCS / page).read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            params.append(pytest.param(page, line, match.group(1), id=f"{page}:{line}"))
    return params


@pytest.mark.parametrize(("page", "line", "source"), _blocks())
def test_docs_block_runs(page: str, line: int, source: str, tmp_path: Path) -> None:
    # In a fresh interpreter, as a reader runs it: nothing left by other tests in this
    # process (a provider's cooldown, LiteLLM's cached clients) can change or stall it.
    script = tmp_path / f"{Path(page).stem}_line_{line}.py"
    script.write_text("\n" * line + source, encoding="utf-8")  # tracebacks: the page's lines
    try:
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=_BLOCK_DEADLINE_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"docs/{page} block at line {line} still running after {_BLOCK_DEADLINE_S} s")
    assert done.returncode == 0, f"docs/{page} block at line {line}:\n{done.stderr[-2000:]}"


def test_every_runnable_page_has_a_block() -> None:
    assert {p.values[0] for p in _blocks()} == set(RUNNABLE)  # type: ignore[attr-defined]
