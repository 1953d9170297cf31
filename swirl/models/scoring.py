"""Teacher-forced log-likelihood of completions given prompts under a named adapter: SWIRL's reward engine.

Phase I rewards a sampled next state with ``mean_t log Q_idm(z_t | s, s', z_<t)``; phase II rewards a
sampled action with ``mean_t log P_fwm(s'_t | s, z, s'_<t)``. Both are :func:`log_likelihood` on the same
base model with the other role's adapter switched on (and frozen) for the call.

How it stays exact and fast:

* prompt and completion are tokenised separately and concatenated, so the scored tokens are exactly the
  completion's tokens whatever the tokenizer does at the boundary. The prompt is encoded as TRL's trainers
  and swirl's samplers encode it (:func:`~swirl.models.prompts.encode_prompts`: with the tokenizer's special
  tokens, e.g. a Llama BOS), the completion with none, so for swirl's prompts (which end on a token boundary)
  prompt + completion are the very ids TRL's SFT trains on, and the completion is scored after the same
  prompt ids GRPO samples it from;
* rows are left-padded with explicit position ids, so every completion ends at the last position and only
  the last ``max completion length + 1`` positions need logits (``logits_to_keep``): no vocabulary-sized
  logits for prompt tokens;
* rows are sorted by length and packed into batches under a token budget (padding waste stays small,
  memory stays bounded); results come back in the caller's order.

With a VLM, each prompt can come with images (``images``, one list per prompt, in placeholder order): the
processor expands the prompt's placeholders into image tokens, and the batch carries the images' pixels;
the model places text and image tokens itself (M-RoPE), so no position ids are passed for it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, NamedTuple, Sequence

import torch

from swirl.models.adapters import use_adapter
from swirl.models.prompts import encode_prompts
from swirl.models.vision import encode_with_images, is_processor, is_vision_config, text_tokenizer, vision_inputs


class LogLikelihood(NamedTuple):
    """Per completion: mean and sum of token log-probabilities, and the number of tokens."""

    mean: torch.Tensor
    sum: torch.Tensor
    num_tokens: torch.Tensor


def length_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size (rows x longest) fits the budget."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > token_budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def log_likelihood(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    adapter: str | None = None,
    token_budget: int = 16384,
    images: Sequence[Sequence[Any]] | None = None,
) -> LogLikelihood:
    """Teacher-forced log P(completion | prompt [, images]) under ``adapter`` (the active one if None).

    ``tokenizer`` is the model's tokenizer, or its processor for a VLM (needed with ``images``). The model is
    put in eval mode for the call (no dropout) and its mode, active adapter and adapter trainability are
    restored afterwards.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if images is not None and len(images) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(images)} image lists")
    if images is not None and not is_processor(tokenizer):
        raise ValueError("scoring with images needs the VLM's processor as the tokenizer")
    if not prompts:
        empty = torch.zeros(0)
        return LogLikelihood(empty, empty.clone(), torch.zeros(0, dtype=torch.long))
    encoded: list[dict[str, Any]] | None = None
    if images is not None:
        encoded = [encode_with_images(tokenizer, prompt, row_images) for prompt, row_images in zip(prompts, images)]
        prompt_ids = [row["input_ids"] for row in encoded]
    tokenizer = text_tokenizer(tokenizer)
    if encoded is None:
        prompt_ids = encode_prompts(tokenizer, list(prompts))  # as TRL encodes string prompts
    completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    for index, (prompt, ids) in enumerate(zip(prompt_ids, completion_ids)):
        if not ids:
            raise ValueError(f"completion {index} is empty: nothing to score")
        if not prompt:
            raise ValueError(f"prompt {index} is empty: a completion needs a context to be scored in")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = model_device(model)
    totals = torch.zeros(len(prompts), dtype=torch.float64)
    counts = torch.tensor([len(ids) for ids in completion_ids], dtype=torch.long)
    lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)]
    was_training = model.training
    model.eval()
    try:
        with use_adapter(model, adapter) if adapter is not None else nullcontext():
            for batch in length_batches(lengths, token_budget):
                totals[batch] = _score_batch(model, [prompt_ids[i] + completion_ids[i] for i in batch],
                                             [len(completion_ids[i]) for i in batch], pad_id, device,
                                             None if encoded is None else [encoded[i] for i in batch])
    finally:
        model.train(was_training)
    sums = totals.to(torch.float32)
    return LogLikelihood(sums / counts, sums, counts)


def _score_batch(model: Any, sequences: list[list[int]], completion_lengths: list[int], pad_id: int,
                 device: torch.device, encoded: list[dict[str, Any]] | None = None) -> torch.Tensor:
    longest = max(len(ids) for ids in sequences)
    keep = max(completion_lengths)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, ids in enumerate(sequences):  # left padding: every sequence ends at the last position
        input_ids[row, longest - len(ids):] = torch.tensor(ids)
        attention_mask[row, longest - len(ids):] = 1
    if is_vision_config(model.config):  # a VLM derives its 3-D positions from the mask and the image grid
        inputs = vision_inputs(encoded or [], input_ids, getattr(model.config, "image_token_id", None))
    else:
        inputs = {"position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0)}
    output = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        **{name: value.to(device) for name, value in inputs.items()},
        logits_to_keep=keep + 1,
        use_cache=False,
    )
    logits = output.logits[:, -(keep + 1):-1, :].float()  # predictions for the last `keep` tokens
    targets = input_ids[:, -keep:].to(device)
    token_logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    positions = torch.arange(keep, device=device).unsqueeze(0)
    in_completion = positions >= (keep - torch.tensor(completion_lengths, device=device)).unsqueeze(1)
    return torch.where(in_completion, token_logp, 0.0).sum(-1).double().cpu()  # padding never leaks in, not even NaN
