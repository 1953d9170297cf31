"""The KL reference of each GRPO phase is the phase-start policy adapter, not the bare base model.

``run_grpo_phase`` hands TRL a ``PeftModel`` whose policy adapter (``default``) is already trained; with
``beta > 0`` TRL's ``GRPOTrainer`` then copies it into a frozen ``ref`` adapter at construction and computes the
reference log-probs under ``ref`` (it would disable the adapters, i.e. use the base model, without one). The
adapters here start with random LoRA B matrices, so the base model, the phase-start adapter and the trained
adapter all give different log-probs; LoRA dropout is 0 so that log-probs do not depend on train/eval mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import random_lora
from peft import get_peft_model_state_dict
from safetensors.torch import load_file

from swirl.data import load_dataset_dict
from swirl.models.adapters import save_adapter, with_adapters
from swirl.models.loading import load_base_model
from swirl.sampling import HFSampler
from swirl.training.swirl_config import SwirlConfig
from swirl.training.phases import PHASE_ROLES, annotate_latent_actions, grpo_trainer, phase2_dataset

CONFIG = dict(model="tiny-qwen2", phase_steps=2, num_generations=2, prompts_per_step=2, learning_rate=1e-2,
              beta=0.1, max_action_tokens=4, max_state_tokens=8, save_steps=100, seed=0)


@pytest.fixture
def start(base, tmp_path) -> dict[str, Path]:
    """Phase-start fwm and idm adapters on disk, both far from the base model (random B, no dropout)."""
    torch.manual_seed(0)
    model = with_adapters(base, {"fwm": random_lora(dropout=0.0), "idm": random_lora(dropout=0.0)})
    return {role: save_adapter(model, role, tmp_path / "start" / role) for role in ("fwm", "idm")}


def phase_dataset(phase: int, config: SwirlConfig, tokenizer, start: dict[str, Path], small_dataset):
    pairs = load_dataset_dict(small_dataset)["state_only"].select(range(6)).select_columns(["state", "next_state"])
    if phase == 2:
        return phase2_dataset(tokenizer, pairs)
    annotator = with_adapters(load_base_model("tiny-qwen2", device="cpu"), {"fwm": start["fwm"], "idm": start["idm"]})
    dataset, _ = annotate_latent_actions(annotator, tokenizer, HFSampler(annotator, tokenizer), pairs,
                                         SwirlConfig(**CONFIG, annotation_min_logprob=-1e9))
    return dataset


def completion_logps(model, batch: dict, temperature: float) -> torch.Tensor:
    """Per-token log-probs of the batch's completions under ``model`` as it stands (TRL's temperature scaling)."""
    completion_ids = batch["completion_ids"]
    ids = torch.cat([batch["prompt_ids"], completion_ids], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -completion_ids.size(1) - 1:-1] / temperature
    return logits.log_softmax(-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def reference_batch(trainer, model, rows: list[dict]) -> dict:
    """One rollout batch through TRL's own path (sampling, rewards, reference log-probs), in eval mode."""
    model.eval()
    batch = trainer._generate_and_score_completions(rows)
    assert "ref_per_token_logps" in batch
    return batch


def masked_max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((a - b).abs() * mask).max())


def adapter_weights(model, adapter: str) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in get_peft_model_state_dict(model, adapter_name=adapter).items()}


@pytest.mark.parametrize("phase", [1, 2])
def test_kl_reference_is_the_phase_start_policy_adapter(phase, start, tokenizer, small_dataset, tmp_path):
    config = SwirlConfig(**CONFIG)
    policy, _ = PHASE_ROLES[phase]
    dataset = phase_dataset(phase, config, tokenizer, start, small_dataset)
    trainer, model = grpo_trainer(phase, config, tokenizer, start, dataset, tmp_path / f"phase{phase}")
    on_disk = load_file(str(start[policy] / "adapter_model.safetensors"))
    # An independent copy of the phase-start policy, and the bare base model, to score the same tokens with.
    phase_start = with_adapters(load_base_model("tiny-qwen2", device="cpu"), {"default": start[policy]}).eval()
    rows = [trainer.train_dataset[i] for i in range(config.prompts_per_step) for _ in range(config.num_generations)]

    # At construction: a frozen `ref` adapter, a copy of the phase-start policy.
    assert "ref" in model.peft_config and model.active_adapter == "default"
    ref_start = adapter_weights(model, "ref")
    assert ref_start.keys() == on_disk.keys()
    assert all(torch.equal(ref_start[key], on_disk[key]) for key in on_disk)
    assert all(torch.equal(adapter_weights(model, "default")[key], on_disk[key]) for key in on_disk)
    assert not any(param.requires_grad for name, param in model.named_parameters() if ".ref." in name)

    # TRL's reference log-probs are the phase-start adapter's, not the base model's.
    batch = reference_batch(trainer, model, rows)
    ref, mask = batch["ref_per_token_logps"], batch["completion_mask"]
    assert mask.sum() > 0
    assert masked_max_diff(ref, completion_logps(phase_start, batch, config.temperature), mask) < 1e-5
    with phase_start.disable_adapter():
        assert masked_max_diff(ref, completion_logps(phase_start, batch, config.temperature), mask) > 1e-2

    trainer.train()

    # The policy moved; `ref` did not (never in the optimizer) and is still the phase-start adapter on disk.
    optimized = {id(param) for group in trainer.optimizer.param_groups for param in group["params"]}
    assert not any(id(param) in optimized for name, param in model.named_parameters() if ".ref." in name)
    ref_after, default_after = adapter_weights(model, "ref"), adapter_weights(model, "default")
    assert all(torch.equal(ref_after[key], on_disk[key]) for key in on_disk)
    assert any(not torch.equal(default_after[key], on_disk[key]) for key in on_disk)

    # The KL term: ~0 at the first step (policy == reference), > 0 once the policy has moved.
    kl = [entry["kl"] for entry in trainer.state.log_history if "kl" in entry]
    assert len(kl) == config.phase_steps
    assert abs(kl[0]) < 1e-5 and kl[-1] > 1e-5

    # After training, the reference log-probs are still the phase-start adapter's, not the trained policy's.
    batch = reference_batch(trainer, model, rows)
    ref, mask = batch["ref_per_token_logps"], batch["completion_mask"]
    assert masked_max_diff(ref, completion_logps(phase_start, batch, config.temperature), mask) < 1e-5
    assert model.active_adapter == "default"
    assert masked_max_diff(ref, completion_logps(model, batch, config.temperature), mask) > 1e-4
