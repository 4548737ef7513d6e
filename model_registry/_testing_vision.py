"""The tiny vision-language model behind `build_tiny_model(path, kind="vision")`: a BLIP-2
with random weights (a 1-layer vision tower on 28-pixel images, a 1-layer Q-Former with 4
query tokens, the chat model's 2-layer Llama), its image processor built here, no hub
download. vLLM puts an image's 4 tokens at the start of the prompt (BLIP-2 takes one image
a prompt); the chat template is the chat model's.

torch and transformers are imported inside the builder, so importing this module costs
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_registry import _testing_model as chat

__all__ = ["IMAGE_TOKEN", "build_vision"]

IMAGE_TOKEN = "<image>"
#: The side of the square images the vision tower sees (the processor resizes to it), its
#: patches, and the query tokens that stand for an image in the prompt.
IMAGE_SIZE = 28
PATCH_SIZE = 14
QUERY_TOKENS = 4


def _processor(out: Path, tokenizer: Any) -> Any:
    transformers = chat._untyped("transformers")
    # The PIL image processor: vLLM's CPU build runs without torchvision.
    blip = chat._untyped("transformers.models.blip.image_processing_pil_blip")

    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", IMAGE_TOKEN]})
    image_processor = blip.BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = transformers.Blip2Processor(
        image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=QUERY_TOKENS
    )
    processor.save_pretrained(out)
    return processor


def _model(out: Path, tokenizer: Any, seed: int) -> None:
    torch, transformers = chat._untyped("torch"), chat._untyped("transformers")

    ids = tokenizer.convert_tokens_to_ids
    text = chat.text_config(tokenizer, vocab_size=len(tokenizer))
    small = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1}
    vision = transformers.Blip2VisionConfig(
        **small, num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE
    )
    qformer = transformers.Blip2QFormerConfig(
        **small, num_attention_heads=2, encoder_hidden_size=64, vocab_size=len(tokenizer)
    )
    config = transformers.Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=QUERY_TOKENS,
        image_token_index=ids(IMAGE_TOKEN),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = transformers.Blip2ForConditionalGeneration(config)
    chat.zero_markup_logits(model.get_output_embeddings().weight, tokenizer, (IMAGE_TOKEN,))
    model.generation_config.bos_token_id = text.bos_token_id
    model.generation_config.eos_token_id = text.eos_token_id
    model.save_pretrained(out)


def build_vision(path: str | Path, seed: int) -> Path:
    """Build the tiny BLIP-2 into `path` unless it already holds a model; the directory."""
    out = Path(path)
    if chat.built(out):
        return out
    chat.require_builder_libraries()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = chat.train_tokenizer(out)
    _processor(out, tokenizer)
    _model(out, tokenizer, seed)
    return out
