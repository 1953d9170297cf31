"""Does phase I's reward point at the truth? A per-pair diagnostic of SWIRL's forward-model objective.

Phase I samples G next states ŝ from the FWM for each annotated pair (s, z) and rewards each with the frozen IDM,
``r(ŝ) = log Q(z | s, ŝ)``; GRPO then moves the FWM toward the samples with a positive group advantage
``A = (r - mean_G r) / (std_G r + 1e-4)`` (TRL's default ``scale_rewards="group"``). The FWM's changed-cell accuracy
can only rise if, within a group, the samples that ARE the observed s' get the higher rewards. This module
measures that from a stage's own samples (the warm start's, before any training, or a phase I's, after it): for
every pair, G samples at the phase's
temperature, each scored with the very reward classes the phase uses (:class:`IDMActionReward`, and
:class:`ObservedNextStateReward` for whether it is s'), then per group:

* ``correct_share``: samples that reproduce s' (the FWM's sample accuracy on these pairs);
* ``mixed_groups``: groups with a correct and a wrong sample, the only ones whose advantages can tell them apart;
* ``correct_advantage``: the mean group advantage of the correct samples in mixed groups (> 0: phase I pushes the
  FWM toward s'; about 0: the reward cannot see the difference; < 0: it pushes away);
* ``correct_wins``: over (correct, wrong) sample pairs of a group, how often the correct one has the higher reward
  (ties count half; 0.5 is a coin).

Split by whether z is an action recorded for (s, s'): where the IDM's label is wrong, the reward asks for z's
effect, not the observed one, by design.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swirl.config_fields import parse_config
from swirl.errors import SwirlError
from swirl.models.loading import load_tokenizer
from swirl.models.prompts import fwm_prompt
from swirl.paths import write_json_atomic, write_text_atomic
from swirl.study.arms import run_configs
from swirl.study.study_config import QualityConfig
from swirl.study.regime_data import seed_datasets
from swirl.study.labels import true_actions
from swirl.training.swirl_config import SwirlConfig
from swirl.training.loop import load_stage
from swirl.training.rewards import IDMActionReward, ObservedNextStateReward

GROUP_STD_EPSILON = 1e-4  # TRL's: the advantage's denominator is std + 1e-4


def group_alignment(rewards: list[float], correct: list[bool]) -> dict[str, Any]:
    """One group's numbers: its correct samples' mean advantage and the (correct, wrong) win rate, both None for
    a group that is all correct or all wrong.

    >>> line = group_alignment([-0.1, -2.0, -2.0, -0.5], [True, False, False, False])
    >>> line["correct"], line["samples"], round(line["correct_advantage"], 3), line["correct_wins"]
    (1, 4, 1.218, 1.0)
    >>> group_alignment([-0.1, -0.1], [False, False])["correct_wins"] is None
    True
    """
    mean, std = statistics.fmean(rewards), statistics.pstdev(rewards)
    advantages = [(r - mean) / (std + GROUP_STD_EPSILON) for r in rewards]
    right = [r for r, c in zip(rewards, correct) if c]
    wrong = [r for r, c in zip(rewards, correct) if not c]
    line: dict[str, Any] = {"correct": len(right), "samples": len(rewards), "correct_advantage": None,
                            "correct_wins": None}
    if right and wrong:
        line["correct_advantage"] = statistics.fmean(a for a, c in zip(advantages, correct) if c)
        line["correct_wins"] = statistics.fmean(1.0 if x > y else 0.5 if x == y else 0.0 for x in right for y in wrong)
    return line


def summarise(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The module's numbers over groups (see the module docstring)."""
    mixed = [g for g in groups if g["correct_advantage"] is not None]
    samples = sum(g["samples"] for g in groups)
    return {"pairs": len(groups),
            "correct_share": sum(g["correct"] for g in groups) / samples if samples else None,
            "mixed_groups": len(mixed) / len(groups) if groups else None,
            "correct_advantage": statistics.fmean(g["correct_advantage"] for g in mixed) if mixed else None,
            "correct_wins": statistics.fmean(g["correct_wins"] for g in mixed) if mixed else None}


def phase1_reward_alignment(run: SwirlConfig, stage: Path, pairs_file: Path, data_all: Path,
                            samples: int | None = None, max_pairs: int | None = None) -> dict[str, Any]:
    """Sample ``samples`` (default: the run's ``num_generations``) next states per pair of ``pairs_file`` (a phase
    I ``latent_actions.jsonl``) from ``stage``'s FWM at the run's temperature and top-p, score them as phase I
    does, and summarise per group: all pairs, and split by whether z was recorded for the pair."""
    pairs = [json.loads(line) for line in pairs_file.open()][:max_pairs]
    if not pairs:
        raise ValueError(f"{pairs_file} holds no annotated pairs")
    group = samples or run.num_generations
    view = run.state_view
    tokenizer = load_tokenizer(run.model)
    model, sampler = load_stage(run, stage, tokenizer)
    prompts = [fwm_prompt(tokenizer, p["state"], p["latent_action"], view) for p in pairs]
    drawn = sampler.generate(prompts, adapter="fwm", n=group, temperature=run.temperature, top_p=run.top_p,
                             max_new_tokens=run.max_state_tokens)
    idm_reward = IDMActionReward(model, tokenizer, clip=run.reward_clip, view=view)
    observed = ObservedNextStateReward(tokenizer, view)
    recorded, _ = true_actions(str(data_all), run.state_text)
    lines = []
    for pair, prompt, completions in zip(pairs, prompts, drawn):
        columns = {"state": [pair["state"]] * group, "next_state": [pair["next_state"]] * group}
        rewards = idm_reward([prompt] * group, completions, latent_action=[pair["latent_action"]] * group, **columns)
        correct = [value == 1.0 for value in observed([prompt] * group, completions, **columns)]
        z_recorded = pair["latent_action"] in recorded.get((pair["state"], pair["next_state"]), ())
        lines.append(group_alignment(rewards, correct) | {"z_recorded": z_recorded, "rewards": rewards})
    return {"samples_per_pair": group, "all": summarise(lines),
            "z_recorded": summarise([g for g in lines if g["z_recorded"]]),
            "z_not_recorded": summarise([g for g in lines if not g["z_recorded"]]), "pairs": lines}


STAGES = ("swirl/warmstart", "swirl/iter_1/phase1", "swirl_anchored/iter_1/phase1")


@dataclass
class AlignmentSettings:
    """Which study's SWIRL stages to diagnose, on which pairs, with how many samples per pair."""

    study_config: str = field(default="recipes/minigrid/quality-headroom.yaml", metadata={
        "help": "the study's preset: its seeds' swirl runs (phase I's latent_actions.jsonl and the stages) must "
                "exist (run the study first)."})
    study_output_dir: str | None = field(default=None, metadata={"help": "the study's folder (default: the "
                                                                         "preset's output_dir)."})
    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={
        "help": "<run>/<stage> folders of each seed whose FWM samples (its IDM is the warm start's in every one): "
                "the warm start shows what phase I's reward asks for before training, a phase I what that phase "
                "made of its own training pairs."})
    seeds: list[int] | None = field(default=None, metadata={"help": "seeds to diagnose (default: the study's)."})
    samples: int | None = field(default=None, metadata={"help": "next states sampled per pair (default: the "
                                                                "study's num_generations, phase I's group size)."})
    max_pairs: int | None = field(default=None, metadata={"help": "the first N annotated pairs of each seed "
                                                                  "(default: all)."})
    output: str = field(default="benchmarks/results/reward_alignment", metadata={
        "help": "writes <output>.json (with every group's rewards; a (seed, stage) already there is kept, so a "
                "rerun resumes) and <output>.md."})


COLUMNS = ("pairs", "correct_share", "mixed_groups", "correct_advantage", "correct_wins")


def markdown_table(result: dict[str, Any]) -> str:
    """Per stage and split (all pairs, z recorded for the pair or not): each number's mean ± std over seeds."""
    lines = ["| stage | pairs (z) | seeds | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 3) + "|"]
    found = result["seeds"]
    for stage in result["stages"]:
        for split in ("all", "z_recorded", "z_not_recorded"):
            per_seed = [found[seed][stage][split] for seed in found if stage in found[seed]]
            cells = []
            for column in COLUMNS:
                values = [line[column] for line in per_seed if line[column] is not None]
                if column == "pairs":  # a count: its mean per seed
                    cells.append(f"{statistics.fmean(values):.0f}" if values else "0")
                    continue
                cells.append("—" if not values else f"{statistics.fmean(values):.3f}" + (
                    f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""))
            lines.append(f"| {stage} | {split} | {len(per_seed)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, prog: str = "reward_alignment.py") -> None:
    settings = parse_config(AlignmentSettings, argv, description=__doc__.split("\n\n")[0], prog=prog)
    moved = ["--output_dir", settings.study_output_dir] if settings.study_output_dir is not None else []
    study = parse_config(QualityConfig, ["--config", settings.study_config, *moved], description="", prog=prog)
    output = Path(settings.output + ".json")
    result: dict[str, Any] = json.loads(output.read_text()) if output.exists() else {"seeds": {}}
    result |= {"study_config": settings.study_config, "stages": settings.stages}
    for seed in settings.seeds if settings.seeds is not None else study.seeds:
        data, data_all = seed_datasets(study, seed)
        runs = run_configs(study, seed, data, data_all)
        done = result["seeds"].setdefault(str(seed), {})
        for stage in settings.stages:
            run_name, _, stage_name = stage.partition("/")
            if stage in done:
                continue
            if run_name not in runs or not stage_name:
                raise SwirlError(f"stage {stage!r} is not <run>/<stage> with a run among {', '.join(runs)}")
            run = runs[run_name]
            pairs_file = Path(run.output_dir) / "iter_1" / "phase1" / "latent_actions.jsonl"
            stage_dir = Path(run.output_dir) / stage_name
            for needed in (pairs_file, stage_dir / "fwm"):
                if not needed.exists():
                    raise SwirlError(f"{needed} does not exist: run the study's {run_name} arm for seed {seed} first")
            done[stage] = phase1_reward_alignment(run, stage_dir, pairs_file, data_all, settings.samples,
                                                  settings.max_pairs)
            write_json_atomic(output, result)  # after every stage: a killed run keeps what it measured
            print(f"seed {seed}, {stage}: {done[stage]['all']}", flush=True)
    table = markdown_table(result)
    write_text_atomic(Path(settings.output + ".md"), table)
    print(table)
