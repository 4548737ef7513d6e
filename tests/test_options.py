"""One table of our own kwargs (`_options`): the alias schema, get_client, the hosted and local
params checks and the store key all read it; and alias files load the same whatever was
imported before."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import AliasConfigError, InvalidParameterError, get_client, load_registry
from model_registry import aliases as aliases_module
from model_registry._options import CALL_OPTIONS, NOT_IN_KEY, OWN_KWARGS
from model_registry.store import EXCLUDED_FROM_KEY, ResultStore

WriteToml = Callable[..., Path]

#: Values that would pass any other check, so only the table can refuse them.
OWN_VALUES = {
    "results_db": "run.sqlite",
    "concurrency": 4,
    "progress": True,
    "return_exceptions": True,
    "limits": {"rpm": 5},
    "fallbacks": ["gpt-4o"],
    "strict": True,
    "batch_api": True,
    "batch_size": 10,
}


def test_the_values_here_cover_the_table() -> None:
    assert set(OWN_VALUES) == set(OWN_KWARGS)


@pytest.mark.parametrize("key", sorted(OWN_KWARGS))
def test_our_kwargs_in_alias_defaults_name_where_they_go(write_toml: WriteToml, key: str) -> None:
    path = write_toml(f'[aliases."a"]\nprovider = "openai"\n[aliases."a".defaults]\n{key} = 1\n')
    with pytest.raises(AliasConfigError) as caught:
        load_registry(path, layered=False)
    assert str(caught.value) == (
        f"{path}: alias 'a': key 'defaults.{key}' is not a call kwarg: {OWN_KWARGS[key]}"
    )
    assert (caught.value.alias, caught.value.key) == ("a", key)


#: Ours that get_client takes itself.
GET_CLIENT_TAKES = {"limits", "fallbacks", "strict", "results_db"}


@pytest.mark.parametrize("key", sorted(OWN_KWARGS.keys() - GET_CLIENT_TAKES))
def test_our_kwargs_given_to_get_client_are_refused_with_where_they_go(key: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        get_client("openai:gpt-4.1", api_key="x", **{key: OWN_VALUES[key]})
    assert str(caught.value) == (
        f"{key} is not a kwarg of get_client('openai:gpt-4.1'): {OWN_KWARGS[key]}"
    )


@pytest.mark.parametrize("key", sorted(OWN_KWARGS.keys() - {"results_db"}))  # a call's store
async def test_our_kwargs_given_to_a_hosted_call_are_refused_before_the_network(key: str) -> None:
    async with get_client("openai:gpt-4.1", api_key="x", api_base="http://127.0.0.1:9") as c:
        with pytest.raises(InvalidParameterError) as caught:
            await c.generate("x", **{key: OWN_VALUES[key]})
    assert (
        str(caught.value)
        == f"{key} is not a kwarg of a call to 'openai:gpt-4.1': " + (OWN_KWARGS[key])
    )


def test_the_store_key_leaves_out_our_kwargs_and_the_call_options() -> None:
    assert EXCLUDED_FROM_KEY == NOT_IN_KEY == frozenset(OWN_KWARGS) | CALL_OPTIONS
    messages = [{"role": "user", "content": "hi"}]
    plain = {"temperature": 0.2}
    options = {**OWN_VALUES, "timeout": 3, "num_retries": 2, "max_retries": 1}
    options |= {"metadata": {"a": 1}, "stream_options": {"x": 1}}
    key = ResultStore.request_key("openai/gpt-4.1", messages, plain)
    assert ResultStore.request_key("openai/gpt-4.1", messages, {**plain, **options}) == key
    # the key of this request as stores written before the table hold it
    assert key == "0adeabc12045a76e3a35563c8414cbc42b7761d550f323fde0a177110387ec4f"


# --- the fallback-name check is passed, never installed --------------------------------

BAD_FALLBACK = '[aliases."a"]\nprovider = "openai"\nfallbacks = ["no-such-model-xyz"]\n'


def test_the_alias_loader_checks_fallback_names_with_the_check_it_is_given(
    write_toml: WriteToml,
) -> None:
    path = write_toml(BAD_FALLBACK)
    with pytest.raises(AliasConfigError) as caught:
        aliases_module.load_registry(path, layered=False, name_check=lambda _, n: f"{n} is bad")
    assert str(caught.value) == (
        f"{path}: alias 'a': fallback 'no-such-model-xyz' does not resolve: "
        "no-such-model-xyz is bad"
    )
    # without a check, a name that is no alias is taken as it is
    loaded = aliases_module.load_registry(path, layered=False)
    assert loaded.aliases["a"].fallbacks == ("no-such-model-xyz",)
    assert not hasattr(aliases_module, "install_name_check")


def test_loading_a_file_gives_the_same_error_whatever_was_imported_first(
    write_toml: WriteToml,
) -> None:
    path = write_toml(BAD_FALLBACK)

    def error_in_a_child(first: str) -> str:
        code = (
            f"{first}\n"
            "from model_registry import AliasConfigError, load_registry\n"
            "try:\n"
            f"    load_registry({str(path)!r}, layered=False)\n"
            "except AliasConfigError as exc:\n"
            "    print(exc)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
        return done.stdout

    alone = error_in_a_child("import model_registry.aliases")
    assert "fallback 'no-such-model-xyz' does not resolve: unknown model" in alone
    assert error_in_a_child("import model_registry.resolve, model_registry.api") == alone


@pytest.mark.parametrize("key", sorted(OWN_KWARGS))
def test_our_kwargs_in_local_params_are_refused_with_where_they_go(key: str) -> None:
    pytest.importorskip("vllm")
    from model_registry.clients._vllm_params import split_params

    with pytest.raises(InvalidParameterError) as caught:
        split_params({key: OWN_VALUES[key]}, where=" of a call")
    assert str(caught.value) == f"parameter {key!r} of a call cannot be set: {OWN_KWARGS[key]}"
