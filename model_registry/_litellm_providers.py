"""LiteLLM's chat providers, as data: generated from `litellm.LITELLM_CHAT_PROVIDERS`.

Resolution needs to know them without importing LiteLLM (seconds), so the list is
committed here. Regenerate after upgrading LiteLLM (tests/test_litellm_data.py shows
the drift):

    uv run python -m model_registry._litellm_providers
"""

from __future__ import annotations

__all__ = ["LITELLM_CHAT_PROVIDERS", "LITELLM_VERSION"]

#: The LiteLLM release this list was generated from.
LITELLM_VERSION = "1.109.3"

# --- generated: do not edit by hand ---
LITELLM_CHAT_PROVIDERS: frozenset[str] = frozenset(
    {
        "ai21",
        "ai21_chat",
        "amazon_nova",
        "anthropic",
        "anthropic_text",
        "azure",
        "azure_ai",
        "azure_text",
        "baseten",
        "bedrock",
        "bytez",
        "cerebras",
        "chatgpt",
        "clarifai",
        "clf_ai_gateway",
        "cloudflare",
        "codestral",
        "cohere",
        "cohere_chat",
        "cometapi",
        "custom",
        "custom_openai",
        "dashscope",
        "databricks",
        "datarobot",
        "deepinfra",
        "deepseek",
        "docker_model_runner",
        "edenai",
        "empower",
        "featherless_ai",
        "fireworks_ai",
        "friendliai",
        "galadriel",
        "gdc",
        "gemini",
        "gigachat",
        "github",
        "github_copilot",
        "gradient_ai",
        "groq",
        "helicone",
        "heroku",
        "hosted_vllm",
        "huggingface",
        "inception",
        "lambda_ai",
        "lemonade",
        "litellm_proxy",
        "llamafile",
        "lm_studio",
        "maritalk",
        "meta_llama",
        "mistral",
        "modelscope",
        "moonshot",
        "morph",
        "nadir",
        "nebius",
        "nlp_cloud",
        "novita",
        "nscale",
        "nvidia_nim",
        "oci",
        "ollama",
        "ollama_chat",
        "oobabooga",
        "openai",
        "openai_like",
        "opencode_go",
        "openrouter",
        "ovhcloud",
        "perplexity",
        "petals",
        "predibase",
        "publicai",
        "qwen_ai_platform",
        "qwencloud",
        "replicate",
        "sagemaker",
        "sagemaker_chat",
        "sagemaker_nova",
        "sambanova",
        "scaledown",
        "tencent",
        "text-completion-codestral",
        "text-completion-inception",
        "text-completion-openai",
        "together_ai",
        "triton",
        "v0",
        "vercel_ai_gateway",
        "vertex_ai",
        "vertex_ai_beta",
        "vllm",
        "volcengine",
        "wandb",
        "watsonx",
        "watsonx_text",
        "xai",
    }
)
# --- end of generated part ---


def installed_chat_providers() -> frozenset[str]:
    """The chat providers of the installed LiteLLM (imports it: for the drift test only)."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    providers = litellm.LITELLM_CHAT_PROVIDERS  # type: ignore[attr-defined]
    return frozenset(str(getattr(p, "value", p)) for p in providers)


def _regenerate() -> None:
    import importlib.metadata
    import re
    from pathlib import Path

    names = "".join(f'        "{name}",\n' for name in sorted(installed_chat_providers()))
    block = f"frozenset(\n    {{\n{names}    }}\n)\n"
    path = Path(__file__)
    text = path.read_text(encoding="utf-8")
    text = re.sub(
        r"frozenset\(\n    \{\n.*?    \}\n\)\n", lambda _: block, text, count=1, flags=re.S
    )
    version = importlib.metadata.version("litellm")
    text = re.sub(r'LITELLM_VERSION = "[^"]*"', f'LITELLM_VERSION = "{version}"', text, count=1)
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {names.count(chr(10))} providers from litellm {version}")


if __name__ == "__main__":
    _regenerate()
