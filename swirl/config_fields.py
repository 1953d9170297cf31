"""Fields shared by the run configs (``SwirlConfig``, ``SwirlManiSkillConfig``, ``WAVConfig``): where the data comes
from (MiniGrid or ManiSkill) and which base model + LoRA shape the adapters use, with one help text each; and
the one way a config rejects bad values or is parsed from YAML + flags (:func:`parse_config`)."""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Sequence

from swirl.errors import SwirlError
from swirl.tracking import check_trackers


@dataclass
class MiniGridDataFields:
    """The dataset folder, or how to build it (``swirl.builders.prepare.build_dataset``)."""

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
    env_test_split: str = field(default="all", metadata={"help": "test transitions to keep before balancing them "
                                                                "over actions: all, or identifiable (exactly one "
                                                                "action reproduces s' and s' != s, as in the WAV "
                                                                "paper's test set)."})

    env_tile_size: int = field(default=16, metadata={"help": "pixels per grid cell of the state images (image "
                                                            "state_modality)."})
    state_text: str = field(default="grid", metadata={"help": "how MiniGrid states are written: grid (one token per "
                                                               "cell, rows of the room) or objects (the room size, "
                                                               "the agent's x,y and direction, one line per object "
                                                               "with its x,y: no counting needed). Both are "
                                                               "lossless; a dataset in the other text is converted "
                                                               "on load."})

    def check_data_fields(self) -> None:
        """``state_text`` and ``env_test_split`` name known choices."""
        # lazy: swirl.builders sits above this module, and importing swirl.envs registers every env (minigrid)
        from swirl.builders.minigrid_dataset import TEST_SPLITS
        from swirl.envs.minigrid_text import STATE_TEXTS

        reject_invalid(self, [
            (self.state_text in STATE_TEXTS, "state_text", f"must be one of {', '.join(STATE_TEXTS)}"),
            (self.env_test_split in TEST_SPLITS, "env_test_split", f"must be one of {', '.join(TEST_SPLITS)}"),
        ])


@dataclass
class ManiSkillDataFields:
    """The dataset folder, or how to build it from ManiSkill3 tasks (``swirl.builders.prepare.build_dataset``)."""

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

    def check_data_fields(self) -> None:
        """The texts' precisions are decimals the builder can write (0..8)."""
        reject_invalid(self, [(0 <= self.env_precision <= 8, "env_precision", "must be in 0..8"),
                              (0 <= self.env_action_precision <= 8, "env_action_precision", "must be in 0..8")])


@dataclass
class StateFormatFields:
    """How a world model writes a next state (``swirl.envs.state_format``)."""

    state_format: str = field(default="full", metadata={"help": "full (the FWM writes the whole next state) or diff "
                                                                 "(it writes only what changes; the IDM reads the "
                                                                 "change). Metrics always compare full states."})
    state_front_cell: bool = field(default=False, metadata={"help": "MiniGrid: follow the state in every prompt with the "
                                                                    "cell the agent faces ('front 3,1 red key'), "
                                                                    "the cell pick up, drop, toggle and switch act "
                                                                    "on (text states only)."})

    def check_state_format(self) -> None:
        from swirl.envs.state_format import STATE_FORMATS  # lazy: importing swirl.envs registers every env (minigrid)

        reject_invalid(self, [(self.state_format in STATE_FORMATS, "state_format",
                               f"must be one of {', '.join(STATE_FORMATS)}")])


@dataclass
class TrackingFields:
    """What a user watching a run sees and where its numbers go (``swirl.progress``, ``swirl.tracking``); the
    names are TRL's, and every trainer of the run gets them."""

    report_to: str = field(default="none", metadata={"help": "trackers for every stage's trainer logs and "
                                                              "evaluation: none, tensorboard, trackio, wandb, ... "
                                                              "(comma-separated, as in TRL)."})
    run_name: str | None = field(default=None, metadata={"help": "tracker run name; each stage logs as "
                                                                  "<run_name>/<stage> (default: output_dir's "
                                                                  "folder name)."})
    project: str = field(default="swirl", metadata={"help": "trackio/wandb project the runs go to."})
    disable_tqdm: bool = field(default=False, metadata={"help": "no progress bars (the run's, the trainers' and "
                                                                 "those of annotation, evaluation and data builds)."})

    def check_report_to(self) -> None:
        check_trackers(self.report_to)


TRACKING_FIELDS = ("report_to", "run_name", "project", "disable_tqdm")  # may change when a run resumes


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
    lora_layers: int | None = field(default=None, metadata={"help": "LoRA on the top K decoder layers only (None: "
                                                                    "all); the backward pass stops at the lowest "
                                                                    "adapted layer, so a step is cheaper."})

    def check_lora_layers(self) -> None:
        """``lora_layers`` is at least 1 and leaves the vision tower alone (its upper bound, the model's number of
        layers, is checked where the model is loaded: ``swirl.models.adapters.top_layers``)."""
        reject_invalid(self, [
            (self.lora_layers is None or self.lora_layers >= 1, "lora_layers", "must be at least 1 (None: every layer)"),
            (self.lora_layers is None or not self.lora_vision, "lora_layers",
             "adapts the language model's top layers only; it does not combine with lora_vision"),
        ])


def field_defaults(config_class: type) -> dict[str, Any]:
    """Every field of a config dataclass that has a default, at that default (for resuming folders made before a
    field existed: :func:`swirl.paths.refuse_other_settings`)."""
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(config_class)
            if f.default is not MISSING or f.default_factory is not MISSING}


def reject_invalid(config: Any, checks: Sequence[tuple[bool, str, str]]) -> None:
    """Raise a one-line ``ValueError`` naming the first field whose check fails: ``(ok, field name, why)``."""
    for ok, name, why in checks:
        if not ok:
            raise ValueError(f"{name} {why} (got {getattr(config, name)!r})")


def parse_config(config_class: type, argv: Sequence[str] | None, description: str, prog: str | None = None) -> Any:
    """A TRL-style config (YAML via ``--config`` + flag overrides) parsed by ``trl.TrlParser``; a value its
    ``__post_init__`` rejects becomes one ``SwirlError`` line instead of a traceback. Help texts are plain text
    (a ``%`` in one is printed as written)."""
    from trl import TrlParser  # lazy: trl is heavy; building a config needs no parser

    parser = TrlParser((config_class,), prog=prog, description=description)
    for action in parser._actions:  # argparse %-formats help texts: a bare "10%" would crash --help
        if action.help:  # transformers' own texts already write "%%" (and "%(default)s"): left as they are
            action.help = re.sub(r"(?<!%)%(?![%(])", "%%", action.help)
    try:
        (config,) = parser.parse_args_and_config(args=list(argv) if argv is not None else None)
    except ValueError as error:
        raise SwirlError(str(error).strip().splitlines()[0]) from None
    return config
