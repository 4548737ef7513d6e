"""Shared fixtures: real alias files on disk, and a clean provider registry per test."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from model_registry import aliases, providers

# No test may reach the Hugging Face hub, and huggingface_hub reads this once, at its import
# (whichever test imports it first): set it before any test runs.
for _var in ("HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without MODEL_REGISTRY_ALIASES, registered providers or a cached load."""
    monkeypatch.delenv(aliases.ALIASES_ENV_VAR, raising=False)
    saved = dict(providers._registered)
    aliases.clear_cache()
    yield
    providers._registered.clear()
    providers._registered.update(saved)
    aliases.clear_cache()


@pytest.fixture
def write_toml(tmp_path: Path) -> Callable[..., Path]:
    """Write a dedented TOML text to a file under tmp_path and return its path."""

    def write(text: str, name: str = "aliases.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def user_aliases(
    write_toml: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Path]:
    """Write an alias file and point MODEL_REGISTRY_ALIASES at it."""

    def use(text: str) -> Path:
        path = write_toml(text, "user_aliases.toml")
        monkeypatch.setenv(aliases.ALIASES_ENV_VAR, str(path))
        return path

    return use


# Hypothesis profiles: "ci" (default, quick) and "long" (--hypothesis-profile=long).
settings.register_profile("ci", max_examples=100)
settings.register_profile("long", max_examples=1000)
settings.load_profile("ci")
