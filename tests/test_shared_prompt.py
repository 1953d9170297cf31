"""The shared-prompt GRPO step computes what TRL's own step computes: the same per-token log-probs and entropies,
and the same gradients of the LoRA parameters, on a real GRPOTrainer over the tiny Qwen2 with left-padded prompts
of different lengths repeated in groups, both for the policy and for the KL reference adapter."""

from __future__ import annotations

import pytest
import torch
from trl import GRPOTrainer

from swirl.data import load_dataset_dict
from swirl.models.adapters import save_adapter
from swirl.training.swirl_config import SwirlConfig
from swirl.training.phases import grpo_trainer, phase2_dataset
from swirl.training.shared_prompt import SharedPromptGRPOTrainer


@pytest.fixture
def trainer(world_model, tokenizer, small_dataset, tmp_path):
    for role in ("fwm", "idm"):
        save_adapter(world_model, role, tmp_path / "start" / role)
    pairs = load_dataset_dict(small_dataset)["state_only"].select(range(4)).select_columns(["state", "next_state"])
    config = SwirlConfig(model="tiny-qwen2", phase_steps=1, num_generations=2, prompts_per_step=2, max_action_tokens=4)
    adapters = {role: tmp_path / "start" / role for role in ("fwm", "idm")}
    trainer, _ = grpo_trainer(2, config, tokenizer, adapters, phase2_dataset(tokenizer, pairs), tmp_path / "phase2")
    return trainer


def group_batch(tokenizer) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Three prompts of different lengths, each repeated 3 times (left-padded), with completions of 1-4 tokens
    (right-padded): the shape of a GRPO batch."""
    prompts = ["a short prompt", "a somewhat longer prompt with more words in it", "mid length prompt here"]
    completions = ["x", "move forward", "turn left now", "pick up"]
    prompt_ids = [tokenizer(text)["input_ids"] for text in prompts for _ in range(3)]
    completion_ids = [tokenizer(completions[i % 4])["input_ids"] + [tokenizer.eos_token_id] for i in range(9)]
    width, length = max(map(len, prompt_ids)), max(map(len, completion_ids))
    pad = tokenizer.pad_token_id
    ids = [[pad] * (width - len(p)) + p + c + [pad] * (length - len(c)) for p, c in zip(prompt_ids, completion_ids)]
    mask = [[0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (length - len(c))
            for p, c in zip(prompt_ids, completion_ids)]
    return torch.tensor(ids), torch.tensor(mask), length


def test_the_trainer_is_the_shared_prompt_one(trainer):
    assert isinstance(trainer, SharedPromptGRPOTrainer)
    assert trainer.model.generate.__qualname__.startswith("share_prompts_in_generate")  # its sampling too


@pytest.mark.parametrize("adapter", ["default", "ref"])
def test_shared_prompt_logps_and_gradients_match_trls(trainer, tokenizer, adapter):
    model = trainer.model
    model.eval()  # LoRA dropout off: with it, TRL's own method gives another answer on every call
    model.set_adapter(adapter)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(f".{adapter}." in name and "lora_" in name)
    ids, mask, completion_length = group_batch(tokenizer)
    results = {}
    for label, method in (("trl", GRPOTrainer._get_per_token_logps_and_entropies),
                          ("shared", SharedPromptGRPOTrainer._get_per_token_logps_and_entropies)):
        model.zero_grad()
        logps, entropies, _ = method(trainer, model, ids, mask, completion_length, compute_entropy=True)
        completion_mask = mask[:, -completion_length:]
        (logps * completion_mask).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
        results[label] = (logps * completion_mask, entropies * completion_mask, grads)
    (trl_logps, trl_entropy, trl_grads), (logps, entropy, grads) = results["trl"], results["shared"]
    assert trl_logps.shape == logps.shape == (9, completion_length)
    torch.testing.assert_close(logps, trl_logps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(entropy, trl_entropy, rtol=1e-4, atol=1e-5)
    assert grads.keys() == trl_grads.keys() and len(grads) > 0
    for name in grads:
        torch.testing.assert_close(grads[name], trl_grads[name], rtol=1e-3, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads.values())  # the prompt's LoRA layers got a gradient
    model.set_adapter("default")


def test_generation_from_shared_prompts_is_the_same(world_model, tokenizer):
    from swirl.training.shared_prompt import share_prompts_in_generate

    world_model.eval()
    ids, mask, completion_length = group_batch(tokenizer)
    prompt_length = ids.size(1) - completion_length
    prompts, prompt_mask = ids[:, :prompt_length], mask[:, :prompt_length]
    settings = dict(max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = world_model.generate(input_ids=prompts, attention_mask=prompt_mask, **settings)
    shared = share_prompts_in_generate(world_model)(input_ids=prompts, attention_mask=prompt_mask, **settings)
    assert torch.equal(shared, expected)
    scores = dict(output_scores=True, return_dict_in_generate=True, **settings)
    expected = world_model.generate(input_ids=prompts, attention_mask=prompt_mask, **scores).scores
    shared = share_prompts_in_generate(world_model)(input_ids=prompts, attention_mask=prompt_mask, **scores).scores
    for step_shared, step_expected in zip(shared, expected):  # the sampling distribution of every step
        torch.testing.assert_close(step_shared, step_expected, rtol=1e-4, atol=1e-4)
