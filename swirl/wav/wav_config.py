"""``WAVConfig``: every knob of a WAV acquisition run, parsed by ``trl.TrlParser`` (YAML preset + CLI flags)."""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from swirl.config_fields import (LoRAModelFields, MiniGridDataFields, StateFormatFields, TrackingFields,
                                 reject_invalid)
from swirl.models.state_view import StateView, state_view
from swirl.sampling import SAMPLERS

METHODS = ("wav", "random", "uncertainty", "progress", "oracle")
SCORE_LOSSES = ("fields", "nll", "masked")
INVERSE_MODELS = ("sparse", "dense", "llm")
BACKENDS = ("llm", "structured")


ACQUISITION_PREFIX = "acquisition_"  # a SWIRL run's names for AcquisitionFields (TrlParser reads flat dataclasses)


@dataclass
class AcquisitionFields:
    """What an acquisition does: rounds of labels from a pool, scored how, with which world models. Defined once
    for a WAV run (``WAVConfig`` inherits these names) and a SWIRL run that acquires its labels first
    (``SwirlConfig`` declares each as ``acquisition_<name>`` with :func:`acquisition_field`, since ``trl.TrlParser``
    reads flat dataclasses only, and reads them back as one object with ``SwirlConfig.acquisition_fields()``)."""

    rounds: int = field(default=4, metadata={"help": "acquisition rounds after the warm start."})
    budget: int = field(default=16, metadata={"help": "labels acquired per round (the top-B of the pool)."})
    seed_labels: int = field(default=32, metadata={"help": "labelled transitions the models start from (random "
                                                            "rows of the labelled split)."})
    pool_states: int = field(default=32, metadata={"help": "states drawn from the state-only split; every action "
                                                            "of each state is a candidate."})
    subgoals: int = field(default=4, metadata={"help": "K: subgoals sampled per pool state (wav)."})
    score_loss: str = field(default="fields", metadata={"help": "verification loss l(s~, s^): fields (mismatch "
                                                                 "fraction of the parsed states), nll (FWM NLL of "
                                                                 "s~ given (s, a~), no generation) or masked "
                                                                 "(mismatch of the steps s -> s~ and s -> s^ on the "
                                                                 "sparse inverse model's kept features: what "
                                                                 "actions change, noise left out)."})
    backend: str = field(default="llm", metadata={"help": "the world models acquisition verifies with: llm (LoRA "
                                                          "adapters of `model`: fwm, subgoal, idm) or structured "
                                                          "(small torch models over the structured MiniGrid state, "
                                                          "the WAV paper's kind; seconds to minutes on a CPU)."})

    def acquisition_checks(self, prefix: str = "") -> list[tuple[bool, str, str]]:
        """The checks of these fields for :func:`reject_invalid`, each named as the config spells it."""
        return [
            (self.rounds >= 0, prefix + "rounds", "must be >= 0"),
            (self.budget >= 1, prefix + "budget", "must be >= 1"),
            (self.seed_labels >= 1, prefix + "seed_labels", "must be >= 1 (the models need a warm start)"),
            (self.pool_states >= 1, prefix + "pool_states", "must be >= 1"),
            (self.subgoals >= 1, prefix + "subgoals", "must be >= 1"),
            (self.score_loss in SCORE_LOSSES, prefix + "score_loss", f"must be one of {', '.join(SCORE_LOSSES)}"),
            (self.backend in BACKENDS, prefix + "backend", f"must be one of {', '.join(BACKENDS)}"),
        ]


def acquisition_field(name: str, default: Any = MISSING) -> Field:
    """``SwirlConfig``'s ``acquisition_<name>``: the field of :class:`AcquisitionFields` with its help text, and its
    default unless another is given."""
    source = {f.name: f for f in fields(AcquisitionFields)}[name]
    return field(default=source.default if default is MISSING else default, metadata=dict(source.metadata))


@dataclass
class WAVConfig(AcquisitionFields, StateFormatFields, TrackingFields, MiniGridDataFields, LoRAModelFields):
    """Pool-based active collection of action labels (WAV's Algorithm 1) and its four baselines."""

    output_dir: str = field(default="runs/wav", metadata={"help": "where rounds, labels, adapters and metrics go."})
    method: str = field(default="wav", metadata={"help": "wav, random, uncertainty, progress, oracle; several "
                                                          "comma-separated, or `all` (each runs in its own folder)."})
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "seeds: seed labels, pool and training."})
    # data (the dataset and env_* fields are MiniGridDataFields)
    env_max_steps: int = field(default=30, metadata={"help": "steps per episode at most."})
    eval_rows: int = field(default=64, metadata={"help": "test rows evaluated after every round."})
    inverse_model: str = field(default="sparse", metadata={"help": "WAV's inverse model: sparse (the masked "
                                                                    "structured-state IDM), dense (the same without "
                                                                    "the mask) or llm (the idm adapter; llm backend "
                                                                    "only)."})
    sparse_idm_l1: float = field(default=0.1, metadata={"help": "L1 weight on the sparse IDM's mask (paper: 0.1)."})
    sparse_idm_steps: int = field(default=600, metadata={"help": "optimiser steps of the sparse IDM per round."})
    uncertainty_samples: int = field(default=4, metadata={"help": "FWM samples per candidate for `uncertainty`."})
    # the structured backend
    structured_steps: int = field(default=1000, metadata={"help": "structured: optimiser steps of the forward model "
                                                                  "on the seed labels."})
    structured_round_steps: int = field(default=300, metadata={"help": "structured: steps per round on the grown "
                                                                       "labelled set (continuing the previous round's)."})
    structured_subgoal_steps: int = field(default=600, metadata={"help": "structured: steps of the subgoal generator "
                                                                         "on the state-only pairs."})
    structured_codes: int = field(default=8, metadata={"help": "structured: latent codes of the subgoal generator "
                                                               "(kinds of change it can propose)."})
    structured_batch_size: int = field(default=128, metadata={"help": "structured: minibatch size."})
    structured_learning_rate: float = field(default=3e-3, metadata={"help": "structured: AdamW learning rate."})
    # model (model, dtype and lora_* are LoRAModelFields)
    warm_start_steps: int = field(default=60, metadata={"help": "SFT steps of fwm (and idm) on the seed labels."})
    subgoal_steps: int = field(default=60, metadata={"help": "SFT steps of the subgoal generator on state-only pairs."})
    round_steps: int = field(default=20, metadata={"help": "SFT steps per round on the grown labelled set "
                                                           "(continuing from the previous round's adapters)."})
    sft_learning_rate: float = field(default=2e-4, metadata={"help": "SFT learning rate."})
    round_learning_rate: float | None = field(default=None, metadata={"help": "SFT learning rate of the rounds' "
                                                                             "fwm and idm, which continue the warm "
                                                                             "start's adapters on the grown set (None: "
                                                                             "sft_learning_rate). A warm start that "
                                                                             "needs a high rate can overshoot its own "
                                                                             "minimum when the rounds reuse it."})
    sft_batch_size: int = field(default=8, metadata={"help": "SFT batch size per device."})
    sft_group_by_length: bool = field(default=False, metadata={"help": "Batch rows of similar length together: "
                                                                        "less padding, so cheaper SFT steps where "
                                                                        "lengths vary (2x on the protocol's rooms, "
                                                                        "whose noisy room writes long diffs; the "
                                                                        "SFT eval loss is grouped too)."})
    sft_eval_rows: int = field(default=0, metadata={"help": "test rows for each adapter's eval loss before and after "
                                                            "its SFT, a diagnostic: every round's evaluation already "
                                                            "measures the FWM's NLL on eval_rows. 0 skips it (on 2 "
                                                            "CPU cores 200 rows cost ~2 min per SFT)."})
    temperature: float = field(default=0.7, metadata={"help": "temperature of subgoal and uncertainty samples."})
    top_p: float = field(default=0.96, metadata={"help": "nucleus sampling of subgoal and uncertainty samples."})
    max_state_tokens: int = field(default=256, metadata={"help": "max new tokens of a generated state."})
    max_action_tokens: int = field(default=8, metadata={"help": "max new tokens of a generated action (llm IDM)."})
    sampler: str = field(default="auto", metadata={"help": "auto, hf or vllm."})
    methods: list[str] = field(default_factory=list, init=False, metadata={"help": "parsed from `method`."})

    def __post_init__(self) -> None:
        self.check_report_to()
        names = [name.strip() for name in self.method.split(",") if name.strip()]
        self.methods = list(METHODS) if names == ["all"] else names
        unknown = [name for name in self.methods if name not in METHODS]
        checks = [
            (bool(self.methods) and not unknown, "method", f"must name some of {', '.join(METHODS)} (or all)"),
            (bool(self.seeds), "seeds", "must list at least one seed"),
            *self.acquisition_checks(),
            (self.round_learning_rate is None or self.round_learning_rate > 0, "round_learning_rate",
             "must be > 0 (or None for sft_learning_rate)"),
            (self.sft_eval_rows >= 0, "sft_eval_rows", "must be >= 0 (0 skips the SFT eval loss)"),
            (self.uncertainty_samples >= 2, "uncertainty_samples", "must be >= 2 (disagreement needs two samples)"),
            (self.inverse_model in INVERSE_MODELS, "inverse_model", f"must be one of {', '.join(INVERSE_MODELS)}"),
            (self.backend == "llm" or self.inverse_model != "llm", "inverse_model",
             "must be sparse or dense with the structured backend (llm is an adapter of the llm backend)"),
            (self.score_loss != "masked" or self.inverse_model != "llm", "score_loss",
             "masked reads the sparse inverse model's mask: it needs inverse_model sparse or dense, not llm"),
            (min(self.structured_steps, self.structured_round_steps, self.structured_subgoal_steps) >= 1,
             "structured_steps", "and structured_round_steps, structured_subgoal_steps must be >= 1"),
            (self.structured_codes >= 1, "structured_codes", "must be >= 1"),
            (self.sparse_idm_l1 >= 0, "sparse_idm_l1", "must be >= 0"),
            (self.temperature > 0, "temperature", "must be > 0"),
            (self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}"),
        ]
        reject_invalid(self, checks)
        self.check_state_format()
        self.check_data_fields()
        self.check_lora_layers()
        self.state_view  # noqa: B018 -- built once now, so a state_front_cell the view cannot show fails here

    @property
    def state_view(self) -> StateView:
        """Text states; next states written in full or as diffs (``state_format``)."""
        return state_view("text", self.domain, self.state_format, self.state_front_cell)
