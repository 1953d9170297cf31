"""Warm-start SFT with TRL's SFTTrainer on the tiny model: loss goes down, only LoRA weights move."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from swirl.models.adapters import lora_config, with_adapters
from swirl.models.loading import load_base_model
from swirl.sft import SwirlSFTConfig, run_sft, sft_datasets


def sft_config(tmp_path, dataset, role, **overrides):
    options = dict(output_dir=str(tmp_path / "out"), role=role, dataset=str(dataset), model="tiny-qwen2",
                   max_steps=30, learning_rate=3e-3, per_device_train_batch_size=8, per_device_eval_batch_size=16,
                   logging_steps=10, max_eval_samples=48, seed=0, disable_tqdm=True)
    return SwirlSFTConfig(**(options | overrides))


@pytest.mark.parametrize("role", ["fwm", "idm"])
def test_sft_lowers_test_loss_and_only_trains_lora(tmp_path, small_dataset, tokenizer, role):
    config = sft_config(tmp_path, small_dataset, role)
    train, test = sft_datasets(config, tokenizer)
    model = with_adapters(load_base_model("tiny-qwen2", device="cpu"), {"default": lora_config(r=8, alpha=16)})
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    metrics = run_sft(model, tokenizer, train, test, config)
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"] - 0.1
    after = dict(model.named_parameters())
    lora = [name for name in before if "lora_" in name]
    base = [name for name in before if "lora_" not in name]
    assert lora and base
    assert all(torch.equal(before[name], after[name]) for name in base)
    assert sum(not torch.equal(before[name], after[name]) for name in lora) == len(lora)


def test_sft_cli_takes_a_yaml_preset_and_flags_and_saves_the_adapter(tmp_path, small_dataset):
    out = tmp_path / "run"
    preset = tmp_path / "sft.yaml"
    preset.write_text(f"model: tiny-qwen2\ndataset: {small_dataset}\nmax_steps: 5\nlora_r: 8\n"
                      "per_device_train_batch_size: 4\nmax_eval_samples: 8\ndisable_tqdm: true\n")
    command = [sys.executable, "-m", "swirl.cli", "sft", "--config", str(preset), "--role", "idm",
               "--output_dir", str(out), "--lora_r", "4"]  # flags override the preset
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out / "idm")) == ["adapter_config.json", "adapter_model.safetensors", "metrics.json"]
    metrics = json.loads((out / "idm" / "metrics.json").read_text())
    assert metrics["role"] == "idm" and metrics["train_rows"] > 0
    assert json.loads((out / "idm" / "adapter_config.json").read_text())["r"] == 4


def test_sft_config_errors_are_one_line(tmp_path, small_dataset):
    result = subprocess.run([sys.executable, "-m", "swirl.cli", "sft", "--role", "policy", "--dataset",
                             str(small_dataset), "--output_dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["swirl: error: role must be one of fwm, idm, subgoal, got 'policy'"]


def test_sft_runs_under_accelerate_launch(tmp_path, small_dataset):
    out = tmp_path / "accel"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "swirl.sft",
               "--role", "fwm", "--dataset", str(small_dataset), "--model", "tiny-qwen2", "--output_dir", str(out),
               "--max_steps", "3", "--lora_r", "4", "--per_device_train_batch_size", "4", "--max_eval_samples", "8",
               "--disable_tqdm", "true"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "fwm" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("group_by_length", [False, True])
def test_sft_adapter_groups_batches_by_length_only_when_asked(tmp_path, small_dataset, tokenizer, monkeypatch,
                                                              group_by_length):
    """Asked, the trainer draws its batches with transformers' length-grouped sampler over the tokenized rows' true
    lengths (prompt + completion); otherwise with a plain random sampler."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from swirl import sft
    from swirl.data import load_dataset_dict
    from swirl.models.state_view import state_view

    trainers = []

    class RecordedTrainer(sft.SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(sft, "SFTTrainer", RecordedTrainer)
    rows = load_dataset_dict(small_dataset)["labelled"]
    sft.sft_adapter("tiny-qwen2", tokenizer, "fwm", rows, rows.select(range(0)), tmp_path / "fwm", lora=(4, 8, 0.0),
                    steps=1, batch_size=4, view=state_view("text", "minigrid", "diff"), group_by_length=group_by_length)

    (trainer,) = trainers
    sampler = trainer._get_train_sampler()
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert len(set(lengths)) > 1  # rows of different lengths: there is something to group
    if group_by_length:
        assert isinstance(sampler, LengthGroupedSampler) and sampler.batch_size == 4
        assert list(sampler.lengths) == lengths
    else:
        assert type(sampler) is torch.utils.data.RandomSampler
