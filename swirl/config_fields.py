"""Fields shared by the run configs (``SwirlConfig``, ``SwirlManiSkillConfig``, ``WAVConfig``): where the data comes
from (MiniGrid or ManiSkill) and which base model + LoRA shape the adapters use, with one help text each; and
the one way a config rejects bad values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence


@dataclass
class MiniGridDataFields:
    """The dataset folder, or how to build it (``swirl.training.loop.prepare_dataset``)."""

    domain: ClassVar[str] = "minigrid"

    dataset: str | None = field(default=None, metadata={"help": "dataset folder from `swirl data minigrid`; built "
                                                                  "from the env_* fields below when missing."})
    env_ids: list[str] = field(default_factory=lambda: ["swirl/WAV-KeyDelivery-v0"],
                               metadata={"help": "envs to build the dataset from when `dataset` does not exist."})
    env_episodes: int = field(default=40, metadata={"help": "training episodes per env (half labelled, half state-only)."})
    env_max_steps: int = field(default=20, metadata={"help": "steps per episode at most."})
    env_policy: str = field(default="expert", metadata={"help": "random or expert (with env_epsilon random actions)."})
    env_epsilon: float = field(default=0.3, metadata={"help": "random-action share of the expert policy."})
    env_test_episodes: int = field(default=10, metadata={"help": "held-out test episodes per env."})

    env_tile_size: int = field(default=16, metadata={"help": "pixels per grid cell of the state images (image "
                                                            "state_modality)."})

    def build_dataset(self, seed: int, images: bool = False):
        """The dataset, with renders of every state when ``images``."""
        from data_builders.minigrid import build_minigrid_dataset

        return build_minigrid_dataset(self.env_ids, episodes=self.env_episodes, max_steps=self.env_max_steps,
                                      policy=self.env_policy, epsilon=self.env_epsilon,
                                      test_episodes=self.env_test_episodes, images=images,
                                      tile_size=self.env_tile_size, seed=seed, progress=False)


@dataclass
class ManiSkillDataFields:
    """The dataset folder, or how to build it from ManiSkill3 tasks (``swirl.training.loop.prepare_dataset``)."""

    domain: ClassVar[str] = "maniskill"
    dataset: str | None = field(default=None, metadata={"help": "dataset folder from `swirl data maniskill`; built "
                                                                  "from the env_* fields below when missing."})
    env_ids: list[str] = field(default_factory=lambda: ["PickCube-v1"],
                               metadata={"help": "ManiSkill tasks to build the dataset from when `dataset` does not exist."})
    env_episodes: int = field(default=20, metadata={"help": "training episodes per task (half labelled, half state-only)."})
    env_max_steps: int = field(default=50, metadata={"help": "steps per episode at most."})
    env_policy: str = field(default="expert", metadata={"help": "random, or expert (a scripted pick/push controller "
                                                                 "with env_epsilon random actions)."})
    env_epsilon: float = field(default=0.2, metadata={"help": "random-action share of the expert policy."})
    env_test_episodes: int = field(default=4, metadata={"help": "held-out test episodes per task."})
    env_fields: list[str] | None = field(default=None, metadata={"help": "state fields in the text (default: every "
                                                                           "field of the state_dict observation)."})
    env_precision: int = field(default=3, metadata={"help": "decimals of every state value in the text."})
    env_action_precision: int = field(default=2, metadata={"help": "decimals of every action value in the text."})
    env_control_mode: str = field(default="pd_ee_delta_pos", metadata={"help": "ManiSkill controller (the action "
                                                                             "space); the experts need pd_ee_delta_pos."})

    def build_dataset(self, seed: int, images: bool = False):
        """The dataset, with the task camera's image of every state when ``images``."""
        from data_builders.maniskill import build_maniskill_dataset

        return build_maniskill_dataset(self.env_ids, episodes=self.env_episodes, max_steps=self.env_max_steps,
                                       policy=self.env_policy, epsilon=self.env_epsilon,
                                       test_episodes=self.env_test_episodes, fields=self.env_fields,
                                       images="sensor" if images else "none",
                                       precision=self.env_precision, action_precision=self.env_action_precision,
                                       control_mode=self.env_control_mode, seed=seed, progress=False)


@dataclass
class LoRAModelFields:
    """The base model and the shape of every LoRA adapter trained on it."""

    model: str = field(default="smollm2-135m", metadata={"help": "base model: Hub id or folder of a causal LM or a "
                                                                  "Qwen2-VL-family VLM, or smollm2-135m, tiny-qwen2, "
                                                                  "tiny-qwen2-vl."})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_vision: bool = field(default=False, metadata={"help": "VLMs: also adapt the vision tower's linear layers "
                                                               "(default: the language model only, vision frozen)."})


def reject_invalid(config: Any, checks: Sequence[tuple[bool, str, str]]) -> None:
    """Raise a one-line ``ValueError`` naming the first field whose check fails: ``(ok, field name, why)``."""
    for ok, name, why in checks:
        if not ok:
            raise ValueError(f"{name} {why} (got {getattr(config, name)!r})")
