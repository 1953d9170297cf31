"""Shared fixtures: the tiny model (built once per machine under $SWIRL_HOME), adapters, a small dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

if "PYTEST_XDIST_WORKER" in os.environ:
    # Two workers on two cores: torch's default of one thread per core would oversubscribe the CPU
    # (4 threads on 2 cores runs several times slower). Subprocesses inherit the setting.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    from swirl.models.loading import load_tokenizer

    return load_tokenizer("tiny-qwen2")


@pytest.fixture
def base():
    """A fresh tiny Qwen2 (0.1M parameters besides embeddings), fp32 on CPU."""
    from swirl.models.loading import load_base_model

    return load_base_model("tiny-qwen2", device="cpu")


def random_lora(r: int = 4, target_modules: str = "all-linear", dropout: float = 0.1):
    """A LoRA config whose B matrices start random (not zero), so adapters differ from the base at once."""
    from swirl.models.adapters import lora_config

    config = lora_config(r=r, alpha=8, dropout=dropout, target_modules=target_modules)
    config.init_lora_weights = False
    return config


@pytest.fixture
def world_model(base):
    """The tiny base with two random adapters, ``fwm`` (active) and ``idm``."""
    import torch

    from swirl.models.adapters import with_adapters

    torch.manual_seed(0)
    return with_adapters(base, {"fwm": random_lora(), "idm": random_lora()})


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A small MiniGrid transition dataset on disk (WAV task, expert with random actions)."""
    from swirl.builders.minigrid_dataset import build_minigrid_dataset
    from swirl.data import save_dataset_dict

    dataset = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=8, max_steps=12, policy="expert",
                                     epsilon=0.3, test_episodes=6, seed=3, progress=False)
    return save_dataset_dict(dataset, tmp_path_factory.mktemp("data") / "keydelivery")


def launch_recipe(script: str, preset: str, output_dir: Path, *flags: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``accelerate launch recipes/<script> --config recipes/<preset> [flags]`` in one CPU process, as a user runs it."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "recipes" / script),
               "--config", str(REPO / "recipes" / preset), "--output_dir", str(output_dir), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
