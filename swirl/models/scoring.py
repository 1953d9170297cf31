"""Teacher-forced log-likelihood of completions given prompts under a named adapter: SWIRL's reward engine.

Phase I rewards a sampled next state with ``mean_t log Q_idm(z_t | s, s', z_<t)``; phase II rewards a
sampled action with ``mean_t log P_fwm(s'_t | s, z, s'_<t)``. Both are :func:`log_likelihood` on the same
base model with the other role's adapter switched on (and frozen) for the call.

How it stays exact and fast:

* prompt and completion are tokenised separately and concatenated, so the scored tokens are exactly the
  completion's tokens whatever the tokenizer does at the boundary;
* rows are left-padded with explicit position ids, so every completion ends at the last position and only
  the last ``max completion length + 1`` positions need logits (``logits_to_keep``): no vocabulary-sized
  logits for prompt tokens;
* rows are sorted by length and packed into batches under a token budget (padding waste stays small,
  memory stays bounded); results come back in the caller's order.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, NamedTuple, Sequence

import torch

from swirl.models.adapters import use_adapter


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
) -> LogLikelihood:
    """Teacher-forced log P(completion | prompt) under ``adapter`` (the active one if None).

    The model is put in eval mode for the call (no dropout) and its mode, active adapter and adapter
    trainability are restored afterwards.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        empty = torch.zeros(0)
        return LogLikelihood(empty, empty.clone(), torch.zeros(0, dtype=torch.long))
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
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
                                             [len(completion_ids[i]) for i in batch], pad_id, device)
    finally:
        model.train(was_training)
    sums = totals.to(torch.float32)
    return LogLikelihood(sums / counts, sums, counts)


def _score_batch(model: Any, sequences: list[list[int]], completion_lengths: list[int], pad_id: int,
                 device: torch.device) -> torch.Tensor:
    longest = max(len(ids) for ids in sequences)
    keep = max(completion_lengths)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, ids in enumerate(sequences):  # left padding: every sequence ends at the last position
        input_ids[row, longest - len(ids):] = torch.tensor(ids)
        attention_mask[row, longest - len(ids):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    output = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=keep + 1,
        use_cache=False,
    )
    logits = output.logits[:, -(keep + 1):-1, :].float()  # predictions for the last `keep` tokens
    targets = input_ids[:, -keep:].to(device)
    token_logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    positions = torch.arange(keep, device=device).unsqueeze(0)
    in_completion = positions >= (keep - torch.tensor(completion_lengths, device=device)).unsqueeze(1)
    return torch.where(in_completion, token_logp, 0.0).sum(-1).double().cpu()  # padding never leaks in, not even NaN
