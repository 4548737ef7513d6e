"""LiteLLM's providers and model list, known without importing LiteLLM."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from model_registry import _litellm_providers
from model_registry._litellm_providers import (
    LITELLM_CHAT_PROVIDERS,
    LITELLM_EMBEDDING_PROVIDERS,
    LITELLM_PARAMS,
    LITELLM_PROVIDERS,
)
from model_registry._model_list import model_list


def test_committed_litellm_data_matches_the_installed_litellm() -> None:
    script = Path(__file__).parent.parent / "scripts" / "generate_litellm_data.py"
    out = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_data_module_holds_data_only() -> None:
    tree = ast.parse(Path(_litellm_providers.__file__).read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert "max_tokens" in LITELLM_PARAMS
    assert "top_k" in LITELLM_PARAMS


def test_the_provider_list_holds_the_providers_users_name() -> None:
    for name in ("groq", "ollama", "azure", "mistral", "hosted_vllm", "openrouter", "together_ai"):
        assert name in LITELLM_CHAT_PROVIDERS


def test_embedding_only_providers_are_litellm_providers_too() -> None:
    # in LiteLLM's price map with embedding models (voyage) or with an embedding config only
    assert {"voyage", "jina_ai", "infinity"} <= LITELLM_EMBEDDING_PROVIDERS - LITELLM_CHAT_PROVIDERS
    assert {"openai", "cohere", "gemini"} <= LITELLM_EMBEDDING_PROVIDERS  # chat ones embed too
    assert LITELLM_PROVIDERS == LITELLM_CHAT_PROVIDERS | LITELLM_EMBEDDING_PROVIDERS
    # a name in LiteLLM's price map that is no provider LiteLLM routes is left out
    assert "vertex_ai-embedding-models" not in LITELLM_PROVIDERS


def test_model_list_is_read_as_data_without_importing_litellm() -> None:
    code = (
        "import sys\n"
        "from model_registry._model_list import model_list\n"
        "m = model_list()\n"
        "print(m is not None and m.is_listed('openai', 'gpt-4o'), 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_a_route_is_listed_by_its_whole_route_or_its_bare_id_under_its_provider() -> None:
    models = model_list()
    assert models is not None
    assert models.is_listed("openai", "gpt-4o")  # bare key, litellm_provider openai
    assert models.is_listed("gemini", "gemini-2.5-flash")  # key "gemini/gemini-2.5-flash"
    assert not models.is_listed("anthropic", "gpt-4o")  # listed, but under another provider
    assert not models.is_listed("openai", "gpt4o")
    assert models.has_models("anthropic")
    assert not models.has_models("no_such_provider")


def test_closest_ids_catch_a_dropped_character() -> None:
    models = model_list()
    assert models is not None
    assert models.closest("openai", "gpt4o")[0] == "gpt-4o"
    assert models.closest("openai", "GPT-4o") == ["gpt-4o"]
    assert all(s.startswith("claude-sonnet") for s in models.closest("anthropic", "claude-sonet"))


def test_suggestions_are_chat_models_only() -> None:
    models = model_list()
    assert models is not None
    assert models.is_listed("openai", "gpt-4o-mini-tts")  # listed: a text-to-speech model
    assert "gpt-4o-mini-tts" not in models.closest("openai", "gpt-4o-mini-ts", n=3)
    assert models.closest("openai", "gpt-4o-mini-ts", n=1) == ["gpt-4o-mini"]


def test_a_provider_s_models_filed_under_related_litellm_providers_count_as_its_own() -> None:
    models = model_list()
    assert models is not None
    assert models.is_listed("vertex_ai", "claude-haiku-4-5")  # vertex_ai-anthropic_models
    assert models.is_listed("vertex_ai", "gemini-2.5-flash")  # vertex_ai-language-models
    assert models.is_listed("bedrock", "us.writer.palmyra-x4-v1:0")  # bedrock_converse
    # LiteLLM reads bedrock/converse/<id> as an option, not as part of the id
    assert models.is_listed("bedrock", "converse/anthropic.claude-3-5-sonnet-20240620-v1:0")
