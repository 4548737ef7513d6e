"""The tiny-model builder behind `model_registry.testing.build_tiny_model`: a Llama with
random weights (hidden 64, 2 layers, 4 heads, 2 KV heads, 512 positions), a byte-level BPE
tokenizer trained on local text (model_registry's sources, standard-library docstrings) with
`<think>` and `<tool_call>` markup tokens, and a ChatML chat template whose end-of-turn
`<|im_end|>` is the EOS (like Qwen3's, it opens an empty think block when `enable_thinking`
is false).

torch, transformers and tokenizers (which vLLM brings) are imported inside the builder, so
importing this module costs nothing.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from model_registry.errors import BackendNotInstalledError

END_OF_TURN = "<|im_end|>"
BOS = "<|begin_of_text|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (BOS, "<|im_start|>", END_OF_TURN, PAD)
#: Markup tokens of reasoning and tool-call parsers (vLLM's "deepseek_r1", "qwen3" and
#: "hermes" need them in the vocabulary), added after training as plain (non-special) tokens,
#: so they stay in the decoded text as in Qwen3's tokenizer.
MARKUP_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>")
MAX_MODEL_LEN = 512
VOCAB_SIZE = 1024
#: What the builder imports (all three come with vLLM).
NEEDS = ("torch", "transformers", "tokenizers")
INSTALL_HINT = (
    "build_tiny_model needs torch, transformers and tokenizers, which vLLM brings: "
    "pip install 'vllm>=0.32,<0.33' (in a checkout: uv sync --extra local; CPU machines: "
    "see the README, 'Local models')"
)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)

_PACKAGE = Path(__file__).resolve().parent


def require_builder_libraries() -> None:
    """Raise `BackendNotInstalledError` naming what is missing and how to install it."""
    missing = []
    for name in NEEDS:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise BackendNotInstalledError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def _untyped(name: str) -> Any:
    """Module `name`, typed Any: CI type-checks without torch and transformers installed,
    and their annotations differ between versions."""
    return importlib.import_module(name)


def _training_text() -> Iterator[str]:
    """model_registry's own Python sources, then some standard-library docstrings."""
    for path in sorted(_PACKAGE.glob("**/*.py")):
        yield path.read_text(encoding="utf-8")
    import asyncio
    import collections
    import dataclasses
    import json
    import pathlib
    import string
    import textwrap

    for module in (asyncio, collections, dataclasses, json, pathlib, string, textwrap):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                yield doc


def train_tokenizer(out: Path) -> Any:
    """Train the byte-level BPE tokenizer, save it (with the chat template) into `out`;
    the transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    transformers = _untyped("transformers")

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    hf_tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=END_OF_TURN,
        pad_token=PAD,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=MAX_MODEL_LEN,
    )
    hf_tokenizer.add_tokens(list(MARKUP_TOKENS))
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    hf_tokenizer.save_pretrained(out)
    return hf_tokenizer


def text_config(tokenizer: Any, vocab_size: int) -> Any:
    """The tiny Llama's config (hidden 64, 2 layers, 4 heads, 2 KV heads) for `tokenizer`."""
    transformers = _untyped("transformers")
    ids = tokenizer.convert_tokens_to_ids
    return transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,  # 16 is unsupported by vLLM on CPU
        max_position_embeddings=MAX_MODEL_LEN,
        bos_token_id=ids(BOS),
        eos_token_id=ids(END_OF_TURN),
        pad_token_id=ids(PAD),
        tie_word_embeddings=False,
        torch_dtype="float32",
    )


def zero_markup_logits(lm_head: Any, tokenizer: Any, extra: tuple[str, ...] = ()) -> None:
    """Zero the output rows of the special and markup tokens (and `extra` ones)."""
    # Special tokens decode to nothing, and a greedy run that got stuck on one gave an
    # empty text (once in CI: bf16 sums on CPU vary with what else is in the batch).
    # A zero logit for them keeps every answer visible: the largest of ~1,000 random
    # logits is well above zero. (EOS comes only from stop rules and max_tokens then.)
    # The markup tokens get zero logits too: a random model never writes them unless a
    # test forces it (grammar, logit_bias).
    torch = _untyped("torch")
    with torch.no_grad():
        for token in SPECIAL_TOKENS + MARKUP_TOKENS + extra:
            lm_head[tokenizer.convert_tokens_to_ids(token)] = 0.0


def save_random_model(out: Path, tokenizer: Any, seed: int) -> None:
    """A 2-layer Llama with random weights for `tokenizer`'s vocabulary, saved into `out`."""
    torch, transformers = _untyped("torch"), _untyped("transformers")

    # The trained vocabulary first, then rows for the markup tokens added after training:
    # the random weights of the trained part stay as they were before those tokens.
    config = text_config(tokenizer, vocab_size=len(tokenizer) - len(MARKUP_TOKENS))
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    zero_markup_logits(model.lm_head.weight, tokenizer)
    model.generation_config.bos_token_id = config.bos_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(out)


def built(out: Path) -> bool:
    """Whether `out` already holds a built model (then the builders leave it as it is)."""
    return (out / "config.json").is_file() and (out / "tokenizer.json").is_file()


#: What `build_tiny_model` builds (`_testing_vision` builds "vision").
TinyKind = Literal["chat", "vision", "embedding"]


def build(path: str | Path, seed: int, kind: str = "chat") -> Path:
    """Build the tiny model into `path` unless it already holds one; the directory.
    `kind="embedding"`: the same weights under an embedding architecture (mean pooling),
    which vLLM runs with its pooling runner without being told."""
    if kind not in ("chat", "embedding"):
        raise ValueError(
            f"kind={kind!r}: build_tiny_model builds 'chat', 'vision' or 'embedding' models"
        )
    out = Path(path)
    if built(out):
        return out
    require_builder_libraries()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out)
    save_random_model(out, tokenizer, seed)
    if kind == "embedding":
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        config.update(architectures=["LlamaBidirectionalModel"], pooling="avg")
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out
