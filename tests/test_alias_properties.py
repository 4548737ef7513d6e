"""Property tests: any alias file either loads or raises AliasConfigError naming the file.

The quick profile runs in CI; `uv run pytest tests/test_alias_properties.py
--hypothesis-profile=long` runs 1,000 examples per property.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from model_registry import AliasConfigError, load_registry, validate_files

PROVIDERS = ["openai", "anthropic", "gemini", "deepseek", "local", "fleet", "opnai", "", "LOCAL"]
KEYS = ["provider", "model_id", "defaults", "description", "model-id", "temprature", "", "é"]

names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    names,
    st.sampled_from(PROVIDERS),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
alias_tables = st.dictionaries(
    st.sampled_from(KEYS) | names,
    st.one_of(st.sampled_from(PROVIDERS), values),
    max_size=5,
)
provider_tables = st.dictionaries(
    st.sampled_from(["litellm_prefix", "api_base", "api_key_env", "default_model", "x"]),
    values,
    max_size=4,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "aliases": st.dictionaries(names, alias_tables | values, max_size=6) | values,
        "providers": st.dictionaries(
            st.sampled_from(["fleet", "openai", "bad name", ""]) | names,
            provider_tables | values,
            max_size=3,
        ),
        "alias": values,
    },
)


def _encode(document: dict[str, Any]) -> bytes | None:
    try:
        return msgspec.toml.encode(document)
    except (msgspec.EncodeError, TypeError, ValueError):
        return None  # not representable in TOML (e.g. None values): covered by raw text below


def _check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_registry(path, layered=False)
    except AliasConfigError as error:
        assert error.path == str(path)
        assert str(error).startswith(str(path))
        assert all(problem.startswith(str(path)) for problem in error.problems)
        assert validate_files(path) == list(error.problems)
    else:
        assert validate_files(path) == []


COMMON = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)


@COMMON
@given(document=documents)
@example(document={"aliases": {"x": {"provider": "openai", "defaults": {"a": {"b": {"c": 1}}}}}})
@example(document={"aliases": {"": {"provider": "openai"}}})
@example(document={"aliases": {"x": {"provider": "openai", "defaults": {"t": float("nan")}}}})
@example(document={"aliases": {"模型": {"provider": "local", "model_id": "路径/模型"}}})
def test_any_structured_file_loads_or_raises_alias_config_error(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    data = _encode(document)
    if data is not None:
        _check(tmp_path / "aliases.toml", data)


TOML_PIECES = [
    '[aliases."x"]\n',
    '[aliases."x".defaults]\n',
    "[aliases]\n",
    '[providers."p"]\n',
    'provider = "openai"\n',
    'provider = "local"\n',
    'model_id = "m"\n',
    "temperature = 0.2\n",
    "defaults = 1\n",
    "x = [1, 2\n",
    "= 3\n",
    '"unterminated\n',
    "[[aliases]]\n",
    "a.b.c.d.e.f = 1\n",
    "\x00",
    "\ufeff",
    "\u2028",
]


@COMMON
@given(pieces=st.lists(st.sampled_from(TOML_PIECES) | st.text(max_size=12), max_size=12))
def test_any_text_loads_or_raises_alias_config_error(tmp_path: Path, pieces: list[str]) -> None:
    _check(tmp_path / "aliases.toml", "".join(pieces).encode("utf-8", "surrogatepass"))


@COMMON
@given(data=st.binary(max_size=200))
def test_any_bytes_load_or_raise_alias_config_error(tmp_path: Path, data: bytes) -> None:
    _check(tmp_path / "aliases.toml", data)


def test_duplicate_keys_deep_nesting_and_huge_files(tmp_path: Path) -> None:
    cases = {
        "dup.toml": b'[aliases."x"]\nprovider = "openai"\nprovider = "gemini"\n',
        "deep.toml": b'[aliases."x"]\nprovider = "openai"\n[aliases."x".defaults]\nv = '
        + b"[" * 5000
        + b"]" * 5000
        + b"\n",
        "huge.toml": "".join(
            f'[aliases."a{i}"]\nprovider = "openai"\nmodel_id = "m{i}"\n' for i in range(20_000)
        ).encode(),
    }
    for name, data in cases.items():
        _check(tmp_path / name, data)
    assert len(load_registry(tmp_path / "huge.toml", layered=False).aliases) == 20_000


def test_unicode_alias_names_round_trip(tmp_path: Path) -> None:
    names_ = ["модель", "模型/本地", "emoji-🙂", "tab\tname", string.punctuation]
    text = "".join(
        f'[aliases.{msgspec.json.encode(n).decode()}]\nprovider = "openai"\n' for n in names_
    )
    path = tmp_path / "u.toml"
    path.write_text(text, encoding="utf-8")
    assert sorted(load_registry(path, layered=False).aliases) == sorted(names_)
