"""docs/architecture.md is the map of the package: every module is named in it, and every
function it points to exists where it says."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import model_registry

PACKAGE = Path(model_registry.__file__).parent
REPO = PACKAGE.parent
MAP = REPO / "docs" / "architecture.md"
#: A module, or a function of the last module named before it: `api.py` ... `get_client()`.
TOKEN = re.compile(r"`([\w/]+\.py)`|`([\w.]+)\(\)`")


def _modules() -> list[str]:
    """Every module of the package as a path relative to it: "clients/base.py"."""
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py"))


def _named(text: str) -> set[str]:
    return set(re.findall(r"`([\w/]+\.py)`", text))


def test_every_module_of_the_package_is_named_in_the_architecture_map() -> None:
    named = _named(MAP.read_text(encoding="utf-8"))
    missing = [module for module in _modules() if module not in named]
    assert "__init__.py" in _modules() and "clients/_policy/__init__.py" in _modules()
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"


def test_the_map_names_no_module_that_is_gone() -> None:
    named = _named(MAP.read_text(encoding="utf-8"))
    ours = {m for m in named if not m.startswith(("tests/", "benchmarks/", "scripts/"))}
    # a module beside the package (the console script's `model_registry_cli.py`) counts
    gone = sorted(m for m in ours if not (PACKAGE / m).exists() and not (REPO / m).exists())
    assert not gone, f"docs/architecture.md names modules that do not exist: {', '.join(gone)}"


def test_every_function_the_map_points_to_is_defined_where_it_says() -> None:
    module, pointers = "", []
    for token in TOKEN.finditer(MAP.read_text(encoding="utf-8")):
        module = token[1] or module
        if token[2]:
            pointers.append((module, token[2]))
    assert len(pointers) >= 10  # the "where does X happen" section
    wrong = []
    for path, dotted in pointers:
        parts = ["model_registry", *Path(path).with_suffix("").parts]
        target = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        for attribute in dotted.split("."):
            target = getattr(target, attribute, None)
        if target is None:
            wrong.append(f"{path} {dotted}()")
    assert not wrong, f"docs/architecture.md points to what is not there: {', '.join(wrong)}"
