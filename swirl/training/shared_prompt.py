"""A GRPO step that reads each prompt once per group.

A GRPO batch holds G samples of every prompt, and TRL scores each sample (policy, then the KL reference) as a
whole sequence, prompt included. SWIRL's prompts are long (a state, ~130 tokens) and its completions short (a diff
or an action, ~10 tokens), so almost all of a step's forward and backward pass is the same prompt read G times
(``benchmarks/grpo_step.py``: the update was 3/4 of a step). :class:`SharedPromptGRPOTrainer` reads the distinct
prompts once, with gradients, copies their key/value cache to the rows of their group (the copy is part of the
graph, so the prompt's share of the gradient is summed over the group, as it is when every row reads it), and
reads only the completions on top. The per-token log-probs are those of TRL's own method (tested to match), so
the loss, the KL term and everything TRL logs are unchanged.

Generation gets the same treatment (:func:`share_prompts_in_generate`): the distinct prompts are read once into a
cache that ``generate`` continues for every sample of the group.

It falls back to TRL's method wherever the shortcut is not known to be the same: image inputs, MoE auxiliary
losses, several processes (DDP would see two forward passes before one backward), gradient checkpointing and
sliding-window attention. It does not chunk the batch (TRL's ``batch_size``): the prompts are read once anyway. One difference remains in
training mode: with LoRA dropout a prompt's dropout mask is drawn once for its group instead of once per row.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from transformers import DynamicCache
from trl import GRPOTrainer


class SharedPromptGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` whose per-token log-probs, and (without vLLM) whose sampling, read every distinct
    prompt once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.args.use_vllm and plain_causal_cache(self.model):  # TRL unwraps to this model for sampling
            self.model.generate = share_prompts_in_generate(self.model)

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                                           logits_to_keep: int, batch_size: int | None = None,
                                           compute_entropy: bool = False, compute_aux_loss: bool = False,
                                           **multimodal: Any) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
        unwrapped = self.accelerator.unwrap_model(model)
        if (compute_aux_loss or any(value is not None for value in multimodal.values())
                or self.accelerator.num_processes > 1 or input_ids.size(1) <= logits_to_keep
                or not plain_causal_cache(unwrapped)):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal)
        with self.accelerator.autocast():  # as TRL's own pass runs (bf16 on GPUs)
            return shared_prompt_logps(model, unwrapped, input_ids, attention_mask, logits_to_keep, compute_entropy)


def cache_argument(backbone: Any) -> str:
    """The name a forward or ``generate`` takes a key/value cache under: transformers 5.25 renamed
    ``past_key_values`` to ``cache`` (the old name goes in 5.40)."""
    return "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"


def expanded_cache(read: Any, rows: torch.Tensor) -> DynamicCache:
    """A new cache whose row ``i`` is row ``rows[i]`` of the cache a backbone returned (``index_select``: the copy
    is differentiable)."""
    prompt_cache = read.cache if getattr(read, "cache", None) is not None else read.past_key_values
    cache = DynamicCache()
    for index, layer in enumerate(prompt_cache.layers):
        cache.update(layer.keys.index_select(0, rows), layer.values.index_select(0, rows), index)
    return cache


def share_prompts_in_generate(model: Any) -> Callable[..., Any]:
    """``model.generate`` that reads each distinct prompt of a batch once: all its tokens but the last go through the
    decoder stack into a cache, copied to the rows that repeat it; ``generate`` continues from there (it reads the
    last prompt token and samples as usual). Positions are counted as ``generate`` counts them (from the first
    non-pad token). Other calls (images, a cache given, no repeated prompt) go to the original ``generate``."""
    original = model.generate

    def generate(*args: Any, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 **kwargs: Any) -> Any:
        plain = (not args and input_ids is not None and attention_mask is not None and input_ids.size(1) > 1
                 and not {"pixel_values", "cache", "past_key_values", "inputs_embeds"} & kwargs.keys())
        if plain:
            length = input_ids.size(1)
            distinct, row_prompt = torch.unique(torch.cat([input_ids, attention_mask], dim=1), dim=0, return_inverse=True)
            plain = distinct.size(0) < input_ids.size(0)
        if not plain:
            return original(*args, input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        ids, mask = distinct[:, :length - 1], distinct[:, length:2 * length - 1]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        backbone = causal_backbone(model)
        with torch.no_grad():
            read = backbone(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = {cache_argument(backbone): expanded_cache(read, row_prompt)}
        return original(input_ids=input_ids, attention_mask=attention_mask, **cache, **kwargs)

    return generate


def plain_causal_cache(model: Any) -> bool:
    """Whether a model keeps a plain cache a prompt can be read into once and copied: not with gradient
    checkpointing (transformers drops the cache in training then) nor with a sliding attention window."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = causal_lm.config.get_text_config()
    sliding = getattr(config, "use_sliding_window", False) or getattr(config, "layer_types", None) and any(
        kind != "full_attention" for kind in config.layer_types)
    return not getattr(causal_lm, "is_gradient_checkpointing", False) and not sliding


def causal_backbone(model: Any) -> Any:
    """The decoder stack (no LM head) of a causal LM, through a ``PeftModel`` if there is one: its LoRA layers
    follow the active adapter, so the policy and the ``ref`` adapter are both read through it."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(causal_lm, causal_lm.base_model_prefix)


def shared_prompt_logps(model: Any, unwrapped: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        completion_length: int, compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None, None]:
    """Per-token log-probs (and entropies) of the last ``completion_length`` tokens of each row, reading each
    distinct prompt (all but those tokens) once.

    The prompt without its last token is read by the decoder stack into a cache; each row gets its prompt's cache
    (``index_select``: differentiable); the row's last prompt token and its completion are then read on top by the
    model's own forward with TRL's fused LM head, scoring the completion tokens (``shift_labels``). Positions are
    counted from the start of the padded row, as TRL's single forward counts them."""
    prefix_length = input_ids.size(1) - completion_length - 1
    prompts = torch.cat([input_ids[:, :prefix_length], attention_mask[:, :prefix_length]], dim=1)
    distinct, row_prompt = torch.unique(prompts, dim=0, return_inverse=True)
    backbone = causal_backbone(unwrapped)
    read = backbone(input_ids=distinct[:, :prefix_length], attention_mask=distinct[:, prefix_length:], use_cache=True)
    cache = {cache_argument(backbone): expanded_cache(read, row_prompt)}
    completion = input_ids[:, -completion_length:]
    labels = completion.masked_fill(attention_mask[:, -completion_length:] == 0, -100)
    shift_labels = torch.cat([labels, labels.new_full((labels.size(0), 1), -100)], dim=1)
    outputs = model(input_ids=input_ids[:, prefix_length:], attention_mask=attention_mask, shift_labels=shift_labels,
                    fused_lm_head=True, **cache)
    entropies = outputs.entropy[:, :completion_length] if compute_entropy else None
    return outputs.log_probs[:, :completion_length], entropies, None
