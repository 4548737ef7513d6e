"""Hosted kwargs that look misspelt (`max_tokns`, `temprature`) warn, and strict refuses them;
a name near no known parameter is a provider's own and passes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model_registry import InvalidParameterError, resolve
from model_registry._kwarg_names import edit_distance, kwarg_typo_warning
from model_registry.resolve import STRICT_ENV_VAR, alias_warnings


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(STRICT_ENV_VAR, raising=False)
    yield


def _warning(key: str, near: str, where: str = "") -> str:
    at = f" ({where})" if where else ""
    return (
        f"kwarg {key!r}{at} is not a known parameter; did you mean {near!r}? It is sent as "
        "written; to send a provider's own parameter of that name, put it in extra_body"
    )


@pytest.mark.parametrize(
    ("key", "near"),
    [
        ("max_tokns", "max_tokens"),
        ("temprature", "temperature"),
        ("Temperature", "temperature"),
        ("reasoning_efort", "reasoning_effort"),
        ("response_fromat", "response_format"),
        ("num_retires", "num_retries"),
        ("extra_bdy", "extra_body"),
        ("top_pp", "top_p"),
        ("presence_penality", "presence_penalty"),
        ("stop_sequence", "stop_sequences"),
    ],
)
def test_a_near_miss_of_a_known_parameter_warns_naming_it(key: str, near: str) -> None:
    assert kwarg_typo_warning(key) == _warning(key, near)
    resolution = resolve("gpt-4o", **{key: 1})
    assert resolution.warnings == (_warning(key, near),)
    assert dict(resolution.params) == {key: 1}  # sent as written, as before


def test_both_typos_of_the_issue_warn_and_strict_refuses_the_call() -> None:
    resolution = resolve("openai:gpt-4.1", max_tokns=5, temprature=0.2)
    assert resolution.warnings == (
        _warning("max_tokns", "max_tokens"),
        _warning("temprature", "temperature"),
    )
    with pytest.raises(InvalidParameterError) as caught:
        resolve("openai:gpt-4.1", strict=True, max_tokns=5)
    assert str(caught.value) == (
        "kwarg 'max_tokns' is not a known parameter; did you mean 'max_tokens'? Strict mode "
        "refuses a kwarg that looks misspelt: correct it, put a provider's own parameter of "
        "that name in extra_body, or pass strict=False"
    )


@pytest.mark.parametrize(
    "key",
    [
        "top_k",
        "thinking",
        "safety_settings",
        "input_cost_per_token",
        "max_tokens",
        "temperature",
        "api_base",
        "extra_body",
        "seed",
        "top_a",
        "min_p",
        "user_id",
        "chat_template_kwargs",
    ],
)
def test_known_names_and_names_near_nothing_pass_as_before(key: str) -> None:
    assert kwarg_typo_warning(key) is None
    assert resolve("gpt-4o", strict=True, **{key: 1}).warnings == ()


def test_extra_body_is_the_escape_hatch() -> None:
    assert resolve("gpt-4o", strict=True, extra_body={"max_tokns": 5}).warnings == ()


def test_local_kwargs_are_not_checked_here() -> None:
    # the local adapter routes local kwargs itself, with its own did-you-mean
    assert resolve("local:org/model", strict=True, max_tokns=5).warnings == ()


def test_a_misspelt_alias_default_warns_naming_the_alias_and_its_file(
    user_aliases: Callable[[str], Path],
) -> None:
    path = user_aliases(
        """
        [aliases."fast"]
        provider = "openai"
        model_id = "gpt-4.1-mini"
        [aliases."fast".defaults]
        temprature = 0.2
        top_k = 5
        """
    )
    where = f"alias 'fast' defaults in {path}"
    expected = _warning("temprature", "temperature", where)
    assert resolve("fast").warnings == (expected,)
    assert alias_warnings() == [expected]
    with pytest.raises(InvalidParameterError, match="Strict mode refuses"):
        resolve("fast", strict=True)


def test_edit_distance_stops_past_its_limit() -> None:
    assert edit_distance("max_tokns", "max_tokens", 2) == 1
    assert edit_distance("kitten", "sitting", 3) == 3
    assert edit_distance("kitten", "sitting", 2) == 3  # over the limit: limit + 1
    assert edit_distance("a", "abcdef", 2) == 3


def test_the_check_imports_no_litellm() -> None:
    code = (
        "import sys\n"
        "from model_registry import resolve\n"
        "assert resolve('gpt-4o', max_tokns=5).warnings\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
