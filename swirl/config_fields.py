"""Fields shared by the run configs (``SwirlConfig``, ``WAVConfig``): where the MiniGrid data comes from and which
base model + LoRA shape the adapters use, with one help text each; and the one way a config rejects bad values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass
class MiniGridDataFields:
    """The dataset folder, or how to build it (``swirl.training.loop.prepare_dataset``)."""

    dataset: str | None = field(default=None, metadata={"help": "dataset folder from `swirl data minigrid`; built "
                                                                  "from the env_* fields below when missing."})
    env_ids: list[str] = field(default_factory=lambda: ["swirl/WAV-KeyDelivery-v0"],
                               metadata={"help": "envs to build the dataset from when `dataset` does not exist."})
    env_episodes: int = field(default=40, metadata={"help": "training episodes per env (half labelled, half state-only)."})
    env_max_steps: int = field(default=20, metadata={"help": "steps per episode at most."})
    env_policy: str = field(default="expert", metadata={"help": "random or expert (with env_epsilon random actions)."})
    env_epsilon: float = field(default=0.3, metadata={"help": "random-action share of the expert policy."})
    env_test_episodes: int = field(default=10, metadata={"help": "held-out test episodes per env."})


@dataclass
class LoRAModelFields:
    """The base model and the shape of every LoRA adapter trained on it."""

    model: str = field(default="smollm2-135m", metadata={"help": "base model: Hub id, folder, smollm2-135m or tiny-qwen2."})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})


def reject_invalid(config: Any, checks: Sequence[tuple[bool, str, str]]) -> None:
    """Raise a one-line ``ValueError`` naming the first field whose check fails: ``(ok, field name, why)``."""
    for ok, name, why in checks:
        if not ok:
            raise ValueError(f"{name} {why} (got {getattr(config, name)!r})")
