"""Every Python block of the docs pages listed here runs, so they cannot drift from the
library (README.md's blocks run in tests/test_readme.py). A listed page's blocks need no
fixture: each starts what it uses (the loopback server of `model_registry.testing`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: The pages whose blocks run as they stand.
RUNNABLE = ("testing.md", "embeddings.md")
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
def test_docs_block_runs(
    page: str, line: int, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile("\n" * line + source, str(DOCS / page), "exec", dont_inherit=True)
    exec(code, {"__name__": "__main__"})


def test_every_runnable_page_has_a_block() -> None:
    assert {p.values[0] for p in _blocks()} == set(RUNNABLE)  # type: ignore[attr-defined]
