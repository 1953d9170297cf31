"""Every knob of a SWIRL run, parsed by ``trl.TrlParser`` (YAML preset + CLI overrides): ``SwirlConfig`` on MiniGrid
(optionally with WAV acquisition first), ``SwirlManiSkillConfig`` on ManiSkill3 text states, ``SwirlFrozenLakeConfig``
on FrozenLake. All share the loop's fields (``SwirlLoopFields``) and the model fields; they differ in where the data
comes from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from swirl.builders.frozenlake_dataset import FrozenLakeDataFields
from swirl.config_fields import (LoRAModelFields, ManiSkillDataFields, MiniGridDataFields, StateFormatFields,
                                 TrackingFields, reject_invalid)
from swirl.models.state_view import STATE_MODALITIES, StateView, state_view
from swirl.sampling import SAMPLERS
from swirl.wav.wav_config import ACQUISITION_PREFIX, METHODS, AcquisitionFields, acquisition_field


@dataclass
class SwirlLoopFields(StateFormatFields, TrackingFields):
    """The loop: warm start, then ``iterations`` x (phase I, phase II), evaluation and the Hub."""

    output_dir: str = field(default="runs/swirl", metadata={"help": "where adapters, metrics and checkpoints go."})
    # data (the dataset and env_* fields come from the data fields class)
    max_state_only_pairs: int | None = field(default=None, metadata={"help": "state-only pairs per iteration: "
                                                                         "iteration k takes the k-th block of this "
                                                                         "many from the seeded shuffle of the pool "
                                                                         "(wrapping round when it runs out), so "
                                                                         "iterations see different pairs (None: the "
                                                                         "whole pool every iteration)."})
    eval_rows: int = field(default=32, metadata={"help": "test rows for the per-phase evaluation."})
    eval_rollout_horizon: int = field(default=0, metadata={"help": "also score open-loop FWM rollouts of horizons "
                                                                   "1..H from test states in each stage's evaluation "
                                                                   "(MiniGrid text states; 0: none)."})
    eval_rollout_starts: int = field(default=16, metadata={"help": "rollouts start from at most this many test "
                                                                   "states."})
    state_modality: str = field(default="text", metadata={"help": "how prompts show states: text, image or "
                                                                   "image+text (image: a VLM and a dataset with "
                                                                   "images; predictions are always text)."})
    # model (model, dtype and lora_* are LoRAModelFields)
    fwm_adapter: str | None = field(default=None, metadata={"help": "start from this FWM adapter (skips its warm start)."})
    idm_adapter: str | None = field(default=None, metadata={"help": "start from this IDM adapter (skips its warm start)."})
    # warm start (SFT)
    sft_steps: int = field(default=100, metadata={"help": "SFT optimiser steps per adapter in the warm start."})
    sft_learning_rate: float = field(default=2e-4, metadata={"help": "SFT learning rate."})
    sft_batch_size: int = field(default=8, metadata={"help": "SFT batch size per device."})
    sft_eval_rows: int | None = field(default=None, metadata={"help": "test rows for each warm-start adapter's "
                                                                      "eval loss before and after SFT (default: "
                                                                      "eval_rows; 0 skips it)."})
    # SWIRL
    iterations: int = field(default=2, metadata={"help": "SWIRL iterations (each: phase I then phase II)."})
    phase_steps: int | None = field(default=20, metadata={"help": "GRPO steps per phase (None: one pass over the "
                                                                    "phase's pairs, ceil(pairs / prompts per "
                                                                    "step))."})
    learning_rate: float = field(default=5e-5, metadata={"help": "GRPO learning rate (paper: 5e-5)."})
    beta: float = field(default=0.1, metadata={"help": "KL weight to the phase-start reference (paper: 0.1)."})
    num_generations: int = field(default=4, metadata={"help": "GRPO group size G (paper: 16)."})
    prompts_per_step: int = field(default=2, metadata={"help": "prompts per GRPO step per device."})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature (paper: 0.7)."})
    top_p: float = field(default=0.96, metadata={"help": "nucleus sampling (paper: 0.96)."})
    max_state_tokens: int = field(default=256, metadata={"help": "max new tokens of a generated state."})
    max_action_tokens: int = field(default=8, metadata={"help": "max new tokens of a generated action."})
    phase1_anchor: float = field(default=0.0, metadata={"help": "weight of phase I's anchor reward, 1 when a "
                                                                   "sampled next state is the observed s' (a "
                                                                   "Monte-Carlo form of the ELBO's reconstruction "
                                                                   "term P(s' | s, z)); 0 (default) is the paper's "
                                                                   "objective, which never looks at s'."})
    shared_prompt: bool = field(default=True, metadata={"help": "read each prompt once per GRPO group in the "
                                                                "policy and reference passes, not once per sample "
                                                                "(swirl.training.shared_prompt: the same "
                                                                "log-probs, several times cheaper with long states "
                                                                "and short answers; off: TRL's own pass)."})
    reward_clip: float = field(default=-10.0, metadata={"help": "rewards are clamped below at this value."})
    annotation_min_logprob: float = field(default=-2.0, metadata={"help": "keep an IDM-annotated pair when the "
                                                                        "action's mean token log-prob is at least this."})
    sampler: str = field(default="auto", metadata={"help": "auto, hf or vllm (annotation and evaluation)."})
    save_steps: int = field(default=5, metadata={"help": "checkpoint a phase every this many steps (for resume)."})
    seed: int = field(default=0, metadata={"help": "seed of the whole run."})
    # Hub
    push_to_hub: bool = field(default=False, metadata={"help": "push the final fwm and idm adapters to the Hub."})
    hub_model_id: str | None = field(default=None, metadata={"help": "ORG/NAME on the Hub (with push_to_hub)."})

    def __post_init__(self) -> None:
        self.check_report_to()
        checks = [
            (self.iterations >= 0, "iterations", "must be >= 0"),
            (0 <= self.eval_rollout_horizon <= self.env_max_steps, "eval_rollout_horizon",
             "must be between 0 and env_max_steps (a rollout replays that many recorded steps)"),
            (self.eval_rollout_starts >= 1, "eval_rollout_starts", "must be >= 1"),
            (self.num_generations >= 2, "num_generations", "must be >= 2 (GRPO compares samples of a group)"),
            (self.phase_steps is None or self.phase_steps >= 1, "phase_steps", "must be >= 1 (None: one pass)"),
            (self.max_state_only_pairs is None or self.max_state_only_pairs >= 1, "max_state_only_pairs",
             "must be >= 1 (None: the whole pool)"),
            (self.phase1_anchor >= 0, "phase1_anchor", "must be >= 0 (0: the paper's objective)"),
            (self.beta >= 0, "beta", "must be >= 0"),
            (self.temperature > 0, "temperature", "must be > 0 for GRPO sampling"),
            (0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (self.reward_clip < 0, "reward_clip", "must be negative (it bounds log-likelihoods from below)"),
            (self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}"),
            (self.state_modality in STATE_MODALITIES, "state_modality", f"must be one of {', '.join(STATE_MODALITIES)}"),
            (not self.lora_vision or self.state_modality != "text", "lora_vision",
             "needs image states (with text states the vision tower gets no gradient)"),
            (not self.lora_vision or self.sampler != "vllm", "lora_vision",
             "does not work with sampler vllm (vLLM serves LoRA on the language model only)"),
            (not self.push_to_hub or bool(self.hub_model_id), "hub_model_id", "is required with push_to_hub"),
        ]
        reject_invalid(self, checks)
        self.check_state_format()
        self.check_lora_layers()
        self.check_data_fields()
        self.state_view  # noqa: B018 -- built once now, so a state_front_cell the view cannot show fails here

    @property
    def state_view(self) -> StateView:
        """How this run's prompts show states (its domain decides which states can be images) and write next
        states (``state_format``)."""
        return state_view(self.state_modality, self.domain, self.state_format, self.state_front_cell)


@dataclass
class SwirlConfig(SwirlLoopFields, MiniGridDataFields, LoRAModelFields):
    """A SWIRL run on MiniGrid: data, model, (WAV acquisition,) warm start, then ``iterations`` x (phase I, II)."""

    # WAV acquisition before the warm start (the two papers in one loop)
    acquisition: str = field(default="none", metadata={"help": "none, or a WAV acquisition method (wav, random, "
                                                                "uncertainty, progress, oracle): the warm start then "
                                                                "trains on acquisition_seed_labels labelled rows plus "
                                                                "the labels the method acquires, not the whole "
                                                                "labelled split."})
    # the acquisition's own fields, defined once in swirl.wav.wav_config.AcquisitionFields (see acquisition_fields)
    acquisition_backend: str = acquisition_field("backend")
    acquisition_rounds: int = acquisition_field("rounds", default=2)
    acquisition_budget: int = acquisition_field("budget")
    acquisition_seed_labels: int = acquisition_field("seed_labels")
    acquisition_pool_states: int = acquisition_field("pool_states")
    acquisition_subgoals: int = acquisition_field("subgoals")
    acquisition_score_loss: str = acquisition_field("score_loss")
    acquisition_sft_steps: int | None = field(default=None, metadata={"help": "SFT steps of the acquisition's own "
                                                                              "fwm and subgoal generator (a quarter "
                                                                              "of them per round); default: sft_steps."})
    acquisition_eval_rows: int | None = field(default=None, metadata={"help": "test rows of the acquisition rounds' "
                                                                              "own evaluations (default: eval_rows)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        reject_invalid(self, [
            (self.acquisition in ("none", *METHODS), "acquisition", f"must be none or one of {', '.join(METHODS)}"),
            (self.acquisition_sft_steps is None or self.acquisition_sft_steps >= 1, "acquisition_sft_steps",
             "must be >= 1 (None: sft_steps)"),
            (self.acquisition_eval_rows is None or self.acquisition_eval_rows >= 1, "acquisition_eval_rows",
             "must be >= 1 (None: eval_rows)"),
            *self.acquisition_fields().acquisition_checks(ACQUISITION_PREFIX),
            (self.acquisition == "none" or self.state_modality == "text", "acquisition",
             "works on text states only (WAV's sparse IDM reads the codec's text); use state_modality: text"),
        ])

    def acquisition_fields(self) -> AcquisitionFields:
        """This run's ``acquisition_<name>`` fields as the one object a WAV run is configured with."""
        return AcquisitionFields(**{f.name: getattr(self, ACQUISITION_PREFIX + f.name) for f in fields(AcquisitionFields)})


@dataclass
class SwirlManiSkillConfig(SwirlLoopFields, ManiSkillDataFields, LoRAModelFields):
    """A SWIRL run on ManiSkill3 text states (continuous states and actions): the same loop as on MiniGrid."""

    output_dir: str = field(default="runs/swirl-maniskill", metadata={"help": "where adapters, metrics and "
                                                                              "checkpoints go."})
    max_state_tokens: int = field(default=512, metadata={"help": "max new tokens of a generated state."})
    max_action_tokens: int = field(default=32, metadata={"help": "max new tokens of a generated action."})


@dataclass
class SwirlFrozenLakeConfig(SwirlLoopFields, FrozenLakeDataFields, LoRAModelFields):
    """A SWIRL run on FrozenLake (swirl.envs.frozenlake): the same loop as on MiniGrid."""

    output_dir: str = field(default="runs/swirl-frozenlake", metadata={"help": "where adapters, metrics and "
                                                                               "checkpoints go."})


RunConfig = SwirlConfig | SwirlManiSkillConfig | SwirlFrozenLakeConfig  # what the loop (swirl.training.loop) runs
