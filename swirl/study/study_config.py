"""The study's settings: a SWIRL run's fields (shared by every arm) plus the regime, the seeds and the arms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from swirl.config_fields import field_defaults
from swirl.paths import refuse_other_settings
from swirl.training.swirl_config import SwirlConfig
from swirl.training.phases import planned_phase_steps

REGIMES = {"few": 0.05, "scarce": 0.1, "paper": 0.5}  # share of training episodes that keep their actions
ARMS = ("sft", "sft_more", "pseudo", "oracle_pairs", "swirl", "swirl_anchored", "wav_swirl", "upper")
DEFAULT_ARMS = tuple(arm for arm in ARMS if arm != "wav_swirl")  # wav_swirl costs 2 h a seed and is #19's question
SFT_ARMS = ("sft_more", "pseudo", "oracle_pairs")  # the warm start continued with SFT (arms.continued_sft_arm)
RUNS = ("swirl", "swirl_anchored", "wav_swirl", "upper")  # the arms that are whole SWIRL runs (their own folder)
STUDY_CONFIG = "quality_config.json"
# settings a resumed study may change: which seeds and arms run, how, and how the report is written
MAY_CHANGE = ("seeds", "arms", "jobs", "write_report", "bootstrap_samples", "output_dir", "report_only",
              "report_to", "run_name", "project", "disable_tqdm")


@dataclass
class QualityConfig(SwirlConfig):
    """A SWIRL run's settings (shared by every arm) plus the study's regime, seeds and arms."""

    output_dir: str = field(default="runs/quality", metadata={"help": "where the seeds' data and runs go."})
    regime: str = field(default="scarce", metadata={"help": "few (5% of the training episodes labelled), scarce "
                                                             "(10%) or paper (50%)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4], metadata={"help": "seeds (data, labels, "
                                                                                        "training)."})
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS), metadata={
        "help": "arms to run: " + ", ".join(ARMS) + " (default: all but wav_swirl)."})
    jobs: int = field(default=1, metadata={"help": "seeds run at once, each in its own process with cpu_count/jobs "
                                                   "torch threads (log: <output_dir>/seed_<k>.log); the results "
                                                   "are collected once all have finished."})
    test_rows_per_action: int = field(default=55, metadata={"help": "the test split keeps at most this many "
                                                                      "transitions of each true action (seeded), "
                                                                      "pooled over the envs: balanced over actions as "
                                                                      "far as the data allows (identifiable switch "
                                                                      "transitions are rare)."})
    noop_rows_per_action: int = field(default=15, metadata={"help": "held-out no-op transitions (the action changes "
                                                                      "nothing) per action on which every arm's FWM "
                                                                      "is also tested (0: none)."})
    anchor_weight: float = field(default=1.0, metadata={"help": "arm swirl_anchored: the weight of phase I's "
                                                                "observed-next-state reward (its phase1_anchor)."})
    extra_sft_learning_rate: float | None = field(default=None, metadata={
        "help": "learning rate of the continued-SFT arms (sft_more, pseudo, oracle_pairs; default: learning_rate, "
                "SWIRL's GRPO rate: the warm start's 2e-3 with a fresh optimiser wrecked the converged adapters, "
                "benchmarks/results/quality_seed0_extra_lr2e-3.md)."})
    upper_epochs_matched: bool = field(default=True, metadata={"help": "arm upper: scale sft_steps by its rows / the "
                                                                       "labelled rows, so that it sees its data as "
                                                                       "many times as sft sees its own (False: the "
                                                                       "same steps, a fraction of an epoch)."})
    pair_arms_from_scratch: bool = field(default=False, metadata={
        "help": "arms pseudo and oracle_pairs: train the fwm afresh on the labelled rows plus the labelled pairs with "
                "the warm start's recipe (sft_learning_rate, sft_steps scaled by rows, so as many epochs as sft): "
                "the most those pairs give by SFT, the headroom; arm sft_more then trains a fresh fwm on the "
                "labelled rows alone for as many steps as oracle_pairs, their steps-matched control (False: the warm "
                "start continued for SWIRL's steps at the extra SFT rate, a compute-matched baseline)."})
    pair_arms_steps: int | None = field(default=None, metadata={
        "help": "with pair_arms_from_scratch: the SFT steps of every fresh fwm (pseudo, oracle_pairs, sft_more), the "
                "same for all three, to compare them nearer convergence (None: sft's epochs over each one's rows)."})
    write_report: bool = field(default=True, metadata={"help": "write quality.json/md/png (the processes of "
                                                                "--jobs N leave it to the parent)."})
    bootstrap_samples: int = field(default=10000, metadata={"help": "bootstrap resamples of the seeds for each "
                                                                    "paired difference's 95% interval."})
    report_only: bool = field(default=False, metadata={"help": "write the report from the arms each seed has "
                                                               "finished and run nothing (an unfinished arm is left "
                                                               "out for that seed)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if unknown:
            raise ValueError(f"arms must be among {', '.join(ARMS)} (got {', '.join(unknown)})")
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {', '.join(REGIMES)} (got {self.regime!r})")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1 (got {self.jobs})")
        if self.anchor_weight <= 0:
            raise ValueError(f"anchor_weight must be > 0 (got {self.anchor_weight})")
        if self.pair_arms_steps is not None and (self.pair_arms_steps < 1 or not self.pair_arms_from_scratch):
            raise ValueError(f"pair_arms_steps must be >= 1 and needs pair_arms_from_scratch (got "
                             f"{self.pair_arms_steps})")
        if self.noop_rows_per_action < 0:
            raise ValueError(f"noop_rows_per_action must be >= 0 (got {self.noop_rows_per_action})")

    @property
    def extra_steps(self) -> int:
        """SFT steps the compute-matched arms add per adapter: the GRPO steps SWIRL gives each adapter (with
        ``phase_steps: None``, one pass over each iteration's ``max_state_only_pairs``)."""
        return self.iterations * planned_phase_steps(self, self.max_state_only_pairs or 1)

    @property
    def extra_learning_rate(self) -> float:
        return self.learning_rate if self.extra_sft_learning_rate is None else self.extra_sft_learning_rate

    def seed_dir(self, seed: int) -> Path:
        return Path(self.output_dir) / f"seed_{seed}"


def check_same_study(config: QualityConfig) -> None:
    """Refuse to resume a study folder made with other settings (only seeds, arms, jobs and the report's bootstrap
    may change): its seeds' data and finished stages would silently mix two studies."""
    refuse_other_settings(Path(config.output_dir) / STUDY_CONFIG,
                          {key: value for key, value in asdict(config).items() if key not in MAY_CHANGE},
                          made="holds a study", defaults=field_defaults(type(config)))
