"""Vision-language world models (the Qwen2-VL family): what differs from a text-only LLM, in one place.

* **The processor is the model's "tokenizer"** (what TRL calls the ``processing_class``): it expands each
  image placeholder of a rendered prompt into the image's tokens and turns the images into
  ``pixel_values``. swirl passes it wherever a text model's tokenizer goes; :func:`text_tokenizer` gives
  the tokenizer inside it for plain text work (EOS, padding, decoding).
* **States can be shown as images** (:class:`StateView`): ``state_modality`` ``text``, ``image`` or
  ``image+text``. A VLM never draws images: what it predicts (a next state, an action) is always text.
* **LoRA adapts the language model only**; the vision tower stays frozen unless ``lora_vision`` is set
  (peft's ``"all-linear"`` would also adapt the vision tower's linear layers).
"""

from __future__ import annotations

from typing import Any, Sequence

from swirl.errors import SwirlError
from swirl.models.state_view import StateView

# Every linear layer of the language model's decoder blocks, and nothing in the vision tower (peft full-matches it).
LANGUAGE_MODEL_LINEAR = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


def is_processor(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a multimodal processor (a VLM's) rather than a plain tokenizer."""
    from transformers import ProcessorMixin  # lazy: transformers is heavy; importing swirl.models stays light

    return isinstance(tokenizer, ProcessorMixin)


def text_tokenizer(tokenizer: Any) -> Any:
    """The text tokenizer: ``tokenizer`` itself, or the one inside a VLM's processor."""
    return tokenizer.tokenizer if is_processor(tokenizer) else tokenizer


def require_vlm(view: StateView, tokenizer: Any, model_name: str) -> None:
    """Image states need a VLM (its processor places the images): one line saying so, before any work."""
    if view.has_images and not is_processor(tokenizer):
        raise SwirlError(f"state_modality {view.modality} needs a vision-language model (e.g. tiny-qwen2-vl or "
                         f"Qwen/Qwen2.5-VL-3B-Instruct); {model_name} is text-only")


def is_vision_config(config: Any) -> bool:
    """Whether a ``transformers`` config describes a vision-language model (it has a vision tower)."""
    return getattr(config, "vision_config", None) is not None


def lora_target_modules(model: Any, vision_tower: bool = False) -> str:
    """peft ``target_modules`` for ``model``: every linear layer of a text model; of a VLM, its language model's
    only, unless ``vision_tower``."""
    return "all-linear" if vision_tower or not is_vision_config(model.config) else LANGUAGE_MODEL_LINEAR


def vision_token_ids(config: Any) -> list[int]:
    """The special tokens a VLM must never generate (an ``<|image_pad|>`` in a text would break its next
    forward pass: image tokens must match image features)."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return [value for value in (getattr(config, name, None) for name in names) if value is not None]


def encode_with_images(processor: Any, prompt: str, images: Sequence[Any]) -> dict[str, Any]:
    """One rendered prompt and its images through the processor: the token ids (each image placeholder
    expanded to that image's tokens) and the image tensors the model takes (Qwen2-VL: ``pixel_values``,
    ``image_grid_thw``; other processors' own names)."""
    placeholders = prompt.count(image_placeholder(processor))
    if placeholders != len(images):
        raise ValueError(f"the prompt has {placeholders} image placeholders but {len(images)} images were given")
    encoded = processor(text=[prompt], images=list(images) or None, return_tensors="pt", add_special_tokens=False)
    tensors = {key: value for key, value in encoded.items() if key not in ("input_ids", "attention_mask")}
    return {"input_ids": encoded["input_ids"][0].tolist(), "image_inputs": tensors if images else {}}


def image_placeholder(processor: Any) -> str:
    """The token a rendered prompt holds per image before the processor expands it (Qwen: ``<|image_pad|>``)."""
    return getattr(processor, "image_token", "<|image_pad|>")


def vision_inputs(encoded_rows: Sequence[dict[str, Any]], input_ids: Any, image_token_id: int) -> dict[str, Any]:
    """The model inputs a batch of :func:`encode_with_images` rows adds to (padded) ``input_ids``: each image
    tensor of the rows concatenated in batch order, and ``mm_token_type_ids`` (1 on image tokens, which
    Qwen2-VL's M-RoPE needs to place them) rebuilt for the padded batch."""
    import torch  # lazy: torch is heavy; importing swirl.models stays light

    names = dict.fromkeys(name for row in encoded_rows for name in row["image_inputs"])
    inputs = {name: torch.cat([row["image_inputs"][name] for row in encoded_rows if name in row["image_inputs"]])
              for name in names if name != "mm_token_type_ids"}
    if "mm_token_type_ids" in names:
        inputs["mm_token_type_ids"] = (input_ids == image_token_id).long()
    return inputs
