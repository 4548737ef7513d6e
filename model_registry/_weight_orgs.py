"""Names that resolution reads as data: organisations publishing weights, model families.

`WEIGHT_ORGS` are Hugging Face organisations, spelled exactly as on the Hub: an `ORG/REPO`
name whose ORG is one of them is never taken for a misspelt provider (`Groq/...`,
`meta-llama/...`, `fireworks-ai/...` stay local weights).
"""

from __future__ import annotations

__all__ = [
    "BARE_FAMILIES",
    "FIRST_PARTY_PROVIDERS",
    "OPEN_WEIGHT_FAMILIES",
    "PUBLISHING_PROVIDERS",
    "WEIGHT_ORGS",
]

WEIGHT_ORGS: frozenset[str] = frozenset(
    """
    01-ai AI-MO BAAI CohereForAI CohereLabs EleutherAI Groq HuggingFaceH4 HuggingFaceTB
    HuggingFaceM4 LGAI-EXAONE LiquidAI MiniMaxAI Nanbeige NousResearch OpenGVLab Qwen
    Salesforce Snowflake THUDM TIGER-Lab TheBloke Writer ai21labs allenai amd apple
    baichuan-inc bigcode bigscience cerebras databricks deepseek-ai facebook fireworks-ai
    google ibm-granite ibm-research internlm llava-hf lmsys meta-llama microsoft mistralai
    mistral-community moonshotai mosaicml nvidia openai openbmb openchat perplexity-ai
    prithivida sentence-transformers stabilityai tencent tiiuae togethercomputer
    unsloth upstage xai-org zai-org
    """.split()  # noqa: SIM905
)

#: LiteLLM providers that serve only their own models, and the model families of theirs
#: whose weights are published (a `google/gemma-...` repo is weights, not Gemini).
FIRST_PARTY_PROVIDERS = ("gemini", "anthropic", "openai", "xai", "vertex_ai")
OPEN_WEIGHT_FAMILIES = ("gemma", "gpt-oss", "codegemma", "paligemma", "medgemma", "grok-1")

#: Providers named like an organisation publishing weights (besides those in WEIGHT_ORGS):
#: a route of theirs may be meant as a Hugging Face repo, so the typo guard says how to
#: write that; a route of any other provider (anthropic, groq, xai) never is.
PUBLISHING_PROVIDERS = frozenset(
    {"mistral", "deepseek", "cohere", "moonshot", "meta_llama", "snowflake"}
)

#: Bare model ids by first-party family: prefix (lower case) -> LiteLLM provider.
BARE_FAMILIES = {
    "mistral-": "mistral",
    "codestral-": "mistral",
    "magistral-": "mistral",
    "ministral-": "mistral",
    "grok-": "xai",
    "command-": "cohere",
}
