"""Does self-improvement help? SWIRL against the obvious baselines on MiniGrid, over seeds, one command, resumable.

Two regimes (``regime``): ``scarce`` labels 10% of the training episodes and leaves 90% state-only (where learning
from state-only transitions should matter); ``paper`` labels half. Every arm uses the same labelled rows, model and
warm start:

* ``sft``: the warm start only (SFT of the fwm and idm adapters on the labelled rows);
* ``sft_more``: the warm start continued with as many extra SFT steps per adapter as SWIRL spends GRPO steps on it
  (``iterations`` x ``phase_steps``), at SWIRL's learning rate (``learning_rate``): rules out "SWIRL is just more
  training";
* ``pseudo``: the warm-started IDM labels SWIRL's state-only pairs (greedy, kept at the phase I confidence threshold,
  ``annotation_min_logprob``), then the fwm continues SFT for the same extra steps on labelled + pseudo-labelled
  rows: the inverse-model pseudo-labelling of video pre-training, which SWIRL must beat to matter;
* ``swirl``: ``iterations`` x (phase I, phase II) on the state-only pairs;
* ``wav_swirl``: the labelled budget spent by WAV acquisition (random seed labels, then actions WAV picks on
  state-only states, executed in the simulator), then the same warm start and SWIRL;
* ``upper``: SFT on every training transition with its true action.

The test split is held-out episodes' identifiable transitions (one action explains each, and it changes the state),
balanced over actions. Each arm's final stage is evaluated on ``eval_rows`` of it (FWM changed-cell accuracy, exact
match, parse rate, per action; IDM accuracy and equivalent accuracy; open-loop rollouts of horizons
1..``eval_rollout_horizon``). The report gives mean +- std over seeds and, for each arm against ``sft`` and against
``pseudo``, the mean paired difference over seeds with a bootstrap 95% interval.

Per seed, under ``<output_dir>/seed_<k>/``: ``data/`` (the regime's labelled share), ``data_all/`` (the same
episodes, all labelled), and ``swirl/`` (its warm start is arm ``sft``), ``sft_more/``, ``pseudo/``,
``wav_swirl/``, ``upper/``. A stage is done when its ``metrics.json`` exists; rerunning skips done stages, so the
study resumes after any interruption.

    python benchmarks/quality_minigrid.py --config recipes/minigrid/quality-smollm2.yaml     # make quality

Writes ``<output_dir>/quality.json`` (every evaluation of every arm and seed, the table, the paired differences),
``quality.md`` and ``quality.png``, and prints the table.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import statistics
import sys
from collections import Counter
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from swirl.training.config import SwirlConfig

REGIMES = {"scarce": 0.1, "paper": 0.5}  # share of training episodes that keep their actions
ARMS = ("sft", "sft_more", "pseudo", "swirl", "wav_swirl", "upper")
WAV_POOL_STATES_PER_LABEL = 2  # wav_swirl's candidate pool: see run_configs
REFERENCES = ("sft", "pseudo")  # the arms every other arm is compared with, seed by seed
METRICS = ("fwm_changed_accuracy", "fwm_exact_match", "fwm_parse_rate", "idm_accuracy", "idm_equivalent_accuracy")
PHASE_SIGNALS = ("reward_std", "frac_reward_zero_std", "kl", "parse_rate", "completions/mean_length", "step_time")
ANNOTATION_SIGNALS = ("keep_rate", "mean_annotation_logprob")


@dataclass
class QualityConfig(SwirlConfig):
    """A SWIRL run's settings (shared by every arm) plus the study's regime, seeds and arms."""

    output_dir: str = field(default="runs/quality", metadata={"help": "where the seeds' data and runs go."})
    regime: str = field(default="scarce", metadata={"help": "scarce (10% of the training episodes labelled) or "
                                                             "paper (50%)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4], metadata={"help": "seeds (data, labels, "
                                                                                        "training)."})
    arms: list[str] = field(default_factory=lambda: list(ARMS), metadata={"help": "arms to run: " + ", ".join(ARMS)
                                                                                      + "."})
    jobs: int = field(default=1, metadata={"help": "seeds run at once, each in its own process with cpu_count/jobs "
                                                   "torch threads (log: <output_dir>/seed_<k>.log); the results "
                                                   "are collected once all have finished."})
    test_rows_per_action: int = field(default=55, metadata={"help": "the test split keeps at most this many "
                                                                      "transitions of each true action (seeded), "
                                                                      "pooled over the envs: balanced over actions as "
                                                                      "far as the data allows (identifiable switch "
                                                                      "transitions are rare)."})
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

    @property
    def extra_steps(self) -> int:
        """SFT steps the compute-matched arms add per adapter: the GRPO steps SWIRL gives each adapter."""
        return self.iterations * self.phase_steps


# ------------------------------------------------------------------------------------------------ data
def seed_datasets(config: QualityConfig, seed: int) -> tuple[Path, Path]:
    """``data`` (the regime's share of training episodes labelled) and ``data_all`` (the same episodes, every one
    labelled; ``state_only`` and ``test`` as in ``data``) of one seed."""
    from datasets import DatasetDict

    from swirl.builders.minigrid import build_minigrid_dataset
    from swirl.data import load_dataset_dict, save_dataset_dict

    root = Path(config.output_dir) / f"seed_{seed}"
    data, data_all = root / "data", root / "data_all"

    def build(fraction: float):
        return build_minigrid_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                      policy=config.env_policy, epsilon=config.env_epsilon, labelled_fraction=fraction,
                                      test_episodes=config.env_test_episodes, test_split=config.env_test_split,
                                      balance_test=False, state_text=config.state_text, seed=seed, progress=False)

    if not data.exists():
        built = build(REGIMES[config.regime])
        built["test"] = cap_per_action(built["test"], config.test_rows_per_action, seed)
        save_dataset_dict(built, data)
    if not data_all.exists():
        part = load_dataset_dict(data)
        everything = build(1.0)
        if cap_per_action(everything["test"], config.test_rows_per_action, seed)["state"] != part["test"]["state"]:
            raise RuntimeError("the two builds of one seed differ: the data builder is not deterministic")
        save_dataset_dict(DatasetDict({"labelled": everything["labelled"], "state_only": part["state_only"],
                                       "test": part["test"]}), data_all)
    return data, data_all


def cap_per_action(test: Any, per_action: int, seed: int) -> Any:
    """At most ``per_action`` rows of each true action (a seeded choice), in the split's order. The builder balances
    each env on its own down to its rarest action; pooled over the envs, with a cap, far more rows survive."""
    import numpy as np

    from swirl.builders.minigrid import balanced_indices

    return test.select(balanced_indices(test["action"], np.random.default_rng([seed, per_action]), per_action))


def run_configs(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, SwirlConfig]:
    """One SWIRL run config per run folder: ``swirl`` (arms sft and swirl; also the base of sft_more and pseudo),
    ``wav_swirl`` and ``upper``."""
    from swirl.data import load_dataset_dict

    root = Path(config.output_dir) / f"seed_{seed}"
    shared = {f.name: getattr(config, f.name) for f in fields(SwirlConfig)}
    shared |= {"seed": seed, "push_to_hub": False}
    labelled = load_dataset_dict(data)["labelled"].num_rows
    rounds = max(1, config.acquisition_rounds)
    seed_labels = min(config.acquisition_seed_labels, labelled)
    per_round = math.ceil(max(0, labelled - seed_labels) / rounds)
    # WAV proposes only the actions its subgoals lead to: about 1.5 candidates per pool state with 2 subgoals (seeds
    # 0-3 of the first study: 43-55 of 32 states' 224). So the pool holds 2 states per label WAV acquires, for its
    # proposals to outnumber the budget of every round; with 32 states half the labels were unscored, random picks.
    pool_states = max(config.acquisition_pool_states, WAV_POOL_STATES_PER_LABEL * rounds * per_round)
    iterations = config.iterations if "swirl" in config.arms else 0
    return {
        "swirl": SwirlConfig(**shared | {"output_dir": str(root / "swirl"), "dataset": str(data),
                                         "acquisition": "none", "iterations": iterations}),
        "wav_swirl": SwirlConfig(**shared | {"output_dir": str(root / "wav_swirl"), "dataset": str(data),
                                             "acquisition": "wav", "acquisition_rounds": rounds,
                                             "acquisition_budget": per_round, "acquisition_seed_labels": seed_labels,
                                             "acquisition_pool_states": pool_states}),
        "upper": SwirlConfig(**shared | {"output_dir": str(root / "upper"), "dataset": str(data_all),
                                         "acquisition": "none", "iterations": 0}),
    }


# ------------------------------------------------------------------------------------------------ the SFT arms
def continued_sft_arm(name: str, run: SwirlConfig, steps: int, data_all: Path) -> list[dict[str, Any]]:
    """Arm ``sft_more`` or ``pseudo``: the SWIRL run's warm-start adapters continued for ``steps`` SFT steps at the
    GRPO phases' learning rate (the same optimiser budget as SWIRL's), in ``<seed>/<name>/``; returns its evaluation
    line. ``sft_more`` continues both adapters on the labelled rows;
    ``pseudo`` continues the fwm on the labelled rows plus the state-only pairs the warm IDM labels (the idm is
    the warm start's)."""
    from datasets import concatenate_datasets

    from swirl.distributed import is_main_process
    from swirl.models.loading import load_tokenizer
    from swirl.paths import stage_done, write_json_atomic
    from swirl.sft import sft_adapter
    from swirl.training.loop import evaluate_stage, load_stage, state_only_pairs
    from swirl.training.warm_start import load_run_data, test_sample

    warm = Path(run.output_dir) / "warmstart"
    stage = Path(run.output_dir).parent / name
    if stage_done(stage):
        return [json.loads((stage / "metrics.json").read_text())["eval"] | {"stage": name}]
    tokenizer = load_tokenizer(run.model)
    data = load_run_data(run, Path(run.dataset))
    test = test_sample(run, data, run.eval_rows)
    sft_test = test_sample(run, data, run.eval_rows if run.sft_eval_rows is None else run.sft_eval_rows)
    columns = ["state", "action", "next_state"]
    training: dict[str, Any] = {"extra_steps": steps}
    if name == "sft_more":
        fwm_rows = data["labelled"]
    else:
        fwm_rows, training["pseudo_labels"] = pseudo_labelled_rows(run, tokenizer, state_only_pairs(run, data), data_all,
                                                                    load_stage, warm)
        fwm_rows = concatenate_datasets([data["labelled"].select_columns(columns), fwm_rows.select_columns(columns)])
    roles = ("fwm", "idm") if name == "sft_more" else ("fwm",)
    for role in roles:
        rows = fwm_rows if role == "fwm" else data["labelled"]
        training[role] = sft_adapter(run.model, tokenizer, role, rows, sft_test, stage / role, init_adapter=warm / role,
                                     dtype=run.dtype, steps=steps, learning_rate=run.learning_rate,
                                     batch_size=run.sft_batch_size, seed=run.seed, trainer_dir=stage / "trainer" / role,
                                     view=run.state_view, lora_layers=run.lora_layers)
    if "idm" not in roles and is_main_process():
        shutil.copytree(warm / "idm", stage / "idm", dirs_exist_ok=True)
    trained = None if name == "sft_more" else "fwm"
    evaluation = evaluate_stage(run, stage, test, tokenizer, previous=warm, trained=trained)
    write_json_atomic(stage / "metrics.json", {"training": training, "eval": evaluation})
    return [evaluation | {"stage": name}]


def pseudo_labelled_rows(run: SwirlConfig, tokenizer: Any, pairs: Any, data_all: Path, load_stage: Any,
                         warm: Path) -> tuple[Any, dict[str, Any]]:
    """The warm IDM's greedy action for each state-only pair (phase I's annotation, the same threshold), as
    labelled rows; with how many were kept and how often the kept labels are right (:func:`label_accuracy`)."""
    from swirl.training.phases import annotate_latent_actions

    model, sampler = load_stage(run, warm, tokenizer)
    kept, stats = annotate_latent_actions(model, tokenizer, sampler, pairs, run)
    del model, sampler
    labels = list(zip(kept["state"], kept["next_state"], kept["latent_action"]))
    stats |= {f"pseudo_label_{key}": value for key, value in label_accuracy(labels, data_all, run.state_text).items()}
    return kept.rename_column("latent_action", "action"), stats


def label_accuracy(labels: list[tuple[str, str, str]], data_all: Path, state_text: str) -> dict[str, float | None]:
    """How often inferred actions ``(s, s', a)`` of state-only pairs are right, read from ``data_all`` (which holds
    the state-only episodes with their actions): ``accuracy`` (a is the recorded action) and
    ``equivalent_accuracy`` (a reproduces s' from s)."""
    if not labels:
        return {"accuracy": None, "equivalent_accuracy": None}
    recorded, equivalent = true_actions(str(data_all), state_text)
    return {"accuracy": sum(a in recorded.get((s, n), ()) for s, n, a in labels) / len(labels),
            "equivalent_accuracy": sum(a in equivalent.get((s, n), ()) for s, n, a in labels) / len(labels)}


@functools.lru_cache(maxsize=None)  # the report reads it for every seed, run and iteration, after every seed
def true_actions(data_all: str, state_text: str) -> tuple[dict, dict]:
    """Per (s, s') of a seed's training transitions: the actions recorded for it, and every action that reproduces
    s' from s (re-simulated)."""
    from swirl.data import convert_state_texts, load_dataset_dict
    from swirl.envs.identifiability import equivalent_actions_for_rows
    from swirl.envs.minigrid import action_texts

    truth = convert_state_texts(load_dataset_dict(data_all), state_text)["labelled"]
    recorded: dict[tuple[str, str], set[str]] = {}
    equivalent: dict[tuple[str, str], set[str]] = {}
    for env_id, state, action, next_state, action_ids in zip(truth["env_id"], truth["state"], truth["action"],
                                                             truth["next_state"], equivalent_actions_for_rows(truth)):
        recorded.setdefault((state, next_state), set()).add(action)
        equivalent.setdefault((state, next_state), set()).update(action_texts(env_id)[i] for i in action_ids)
    return recorded, equivalent


def latent_action_stats(config: QualityConfig) -> list[dict[str, Any]]:
    """What phase I's latent actions are, per run and iteration (mean over seeds): how many pairs were kept, how
    many distinct actions the IDM used, the most frequent one's share, and how often they are right."""
    rows = []
    for run in ("swirl", "wav_swirl"):
        for iteration in range(1, config.iterations + 1):
            found = []
            for seed in config.seeds:
                path = Path(config.output_dir) / f"seed_{seed}" / run / f"iter_{iteration}" / "phase1" / "latent_actions.jsonl"
                if not path.exists():
                    continue
                labels = [tuple(json.loads(line)[key] for key in ("state", "next_state", "latent_action"))
                          for line in path.read_text().splitlines()]
                counts = Counter(label[2] for label in labels)
                found.append({"kept": len(labels), "distinct": len(counts),
                              "top_share": counts.most_common(1)[0][1] / len(labels) if labels else None,
                              **label_accuracy(labels, Path(config.output_dir) / f"seed_{seed}" / "data_all",
                                               config.state_text)})
            if found:
                rows.append({"run": run, "stage": f"iter_{iteration}/phase1", "seeds": len(found),
                             **{key: mean_std([stats[key] for stats in found])[0] for key in found[0]}})
    return rows


# ------------------------------------------------------------------------------------------------ the report
def finished_lines(config: QualityConfig, seed: int) -> dict[str, list[dict]]:
    """The evaluation lines of the arms one seed has finished, read from its folder (``report_only``)."""
    from swirl.paths import stage_done

    root = Path(config.output_dir) / f"seed_{seed}"
    lines: dict[str, list[dict]] = {}
    for run in ("swirl", "wav_swirl", "upper"):
        if (root / run / "hub" / "README.md").exists():  # written last, when the run has finished
            lines[run] = [json.loads(line) for line in (root / run / "metrics.jsonl").read_text().splitlines()]
    if stage_done(root / "swirl" / "warmstart"):
        lines["sft"] = [json.loads((root / "swirl" / "warmstart" / "metrics.json").read_text())["eval"]
                        | {"stage": "warmstart"}]
    for arm in ("sft_more", "pseudo"):
        if stage_done(root / arm):
            lines[arm] = [json.loads((root / arm / "metrics.json").read_text())["eval"] | {"stage": arm}]
    spent = json.loads((root / "wall_time.json").read_text()) if (root / "wall_time.json").exists() else {}
    for arm in set(lines) - {"sft"}:
        lines[arm][-1]["wall_time_s"] = spent.get(arm)
    return {arm: lines[arm] for arm in ARMS if arm in lines and arm in config.arms}


def arm_lines(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, list[dict]]:
    """Run (or resume) every arm of one seed; return each arm's evaluation lines (its last one is its result).

    Each arm's wall time is added to ``<seed>/wall_time.json`` by every invocation that works on it, so a study
    resumed after a kill still reports (about) what each arm cost."""
    from swirl.paths import stage_done, write_json_atomic
    from swirl.training.loop import run_swirl

    root = Path(config.output_dir) / f"seed_{seed}"
    runs = run_configs(config, seed, data, data_all)
    timing_file = root / "wall_time.json"
    spent = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    lines: dict[str, list[dict]] = {}

    def run_arm(run: SwirlConfig) -> list[dict]:
        return run_swirl(run, "python benchmarks/quality_minigrid.py ...")

    def timed(arm: str, work) -> None:
        print(f"== seed {seed}: {arm}", flush=True)
        start = time.perf_counter()
        lines[arm] = work()
        spent[arm] = spent.get(arm, 0.0) + time.perf_counter() - start
        write_json_atomic(timing_file, spent)

    warm = Path(runs["swirl"].output_dir) / "warmstart"
    needs_warm_start = bool({"sft", "sft_more", "pseudo"} & set(config.arms))
    if "swirl" in config.arms or (needs_warm_start and not stage_done(warm)):  # without arm swirl: 0 iterations
        timed("swirl", lambda: run_arm(runs["swirl"]))
    elif needs_warm_start:  # the warm start is done: read it, and leave the SWIRL run's files alone
        lines["swirl"] = [json.loads((warm / "metrics.json").read_text())["eval"] | {"stage": "warmstart"}]
    if "swirl" in lines:
        lines["sft"] = [dict(lines["swirl"][0])]  # a copy: the SWIRL run's time below is not the warm start's
    for arm in ("sft_more", "pseudo"):
        if arm in config.arms:
            timed(arm, lambda arm=arm: continued_sft_arm(arm, runs["swirl"], config.extra_steps, data_all))
    for arm in ("wav_swirl", "upper"):
        if arm in config.arms:
            timed(arm, lambda arm=arm: run_arm(runs[arm]))
    for arm in set(lines) - {"sft"}:  # the warm start's time is part of the SWIRL run's (run folder swirl/)
        lines[arm][-1]["wall_time_s"] = spent.get(arm)
    return {arm: lines[arm] for arm in ARMS if arm in lines and arm in config.arms}


def mean_std(values: list[float]) -> tuple[float | None, float]:
    values = [value for value in values if value is not None]
    if not values:
        return None, 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(per_seed: dict[int, dict[str, list[dict]]]) -> list[dict[str, Any]]:
    """Mean and std over seeds of each metric, per arm and stage (stages a seed has not reached are left out)."""
    table = []
    for arm in ARMS:
        stages = dict.fromkeys(line["stage"] for arms in per_seed.values() for line in arms.get(arm, []))
        for stage in stages:
            found = [line for arms in per_seed.values() for line in arms.get(arm, []) if line["stage"] == stage]
            row: dict[str, Any] = {"arm": arm, "stage": stage, "seeds": len(found)}
            for metric in METRICS:
                row[metric], row[metric + "_std"] = mean_std([line.get(metric) for line in found])
            table.append(row)
    return table


def bootstrap_interval(differences: list[float], samples: int, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of the mean of ``differences`` over bootstrap resamples (of the seeds)."""
    import numpy as np

    values = np.asarray(differences, dtype=float)
    means = np.random.default_rng(seed).choice(values, size=(samples, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def t_interval(differences: list[float]) -> tuple[float, float]:
    """The paired t 95% interval of the mean difference (wider than the bootstrap's with a handful of seeds, where
    the percentile bootstrap covers less than it says)."""
    from scipy.stats import t

    mean, std = statistics.fmean(differences), statistics.stdev(differences)
    half = t.ppf(0.975, len(differences) - 1) * std / math.sqrt(len(differences))
    return mean - half, mean + half


def paired_differences(per_seed: dict[int, dict[str, list[dict]]], samples: int,
                       metric: str = "fwm_changed_accuracy") -> list[dict[str, Any]]:
    """Each arm's final ``metric`` minus the reference arm's (``sft``, ``pseudo``), seed by seed: the mean
    difference, its bootstrap 95% interval over seeds and its paired t 95% interval, and the relative change of
    the means."""
    rows = []
    for reference in REFERENCES:
        for arm in ARMS:
            pairs = [(arms[reference][-1].get(metric), arms[arm][-1].get(metric)) for arms in per_seed.values()
                     if arm != reference and arms.get(arm) and arms.get(reference)]
            pairs = [(base, other) for base, other in pairs if base is not None and other is not None]
            if not pairs:
                continue
            differences = [other - base for base, other in pairs]
            base_mean, arm_mean = statistics.fmean(p[0] for p in pairs), statistics.fmean(p[1] for p in pairs)
            low, high = bootstrap_interval(differences, samples) if len(pairs) > 1 else (None, None)
            t_low, t_high = t_interval(differences) if len(pairs) > 1 else (None, None)
            rows.append({"arm": arm, "reference": reference, "metric": metric, "seeds": len(pairs),
                         "reference_mean": base_mean, "arm_mean": arm_mean,
                         "mean_difference": statistics.fmean(differences), "ci95_low": low, "ci95_high": high,
                         "t95_low": t_low, "t95_high": t_high,
                         "relative_change": (arm_mean - base_mean) / base_mean if base_mean else None,
                         "per_seed_difference": differences})
    return rows


def rollout_table(per_seed: dict[int, dict[str, list[dict]]]) -> list[dict[str, Any]]:
    """Per arm (final stage) and horizon, the mean over seeds of the open-loop rollouts' exact match and field
    accuracy."""
    rows = []
    for arm in ARMS:
        rollouts = [arms[arm][-1]["rollouts"] for arms in per_seed.values() if arms.get(arm) and
                    arms[arm][-1].get("rollouts")]
        for step in range(max((len(found) for found in rollouts), default=0)):
            at = [found[step] for found in rollouts if len(found) > step]
            rows.append({"arm": arm, "horizon": step + 1, "seeds": len(at),
                         "exact_match": statistics.fmean(r["exact_match"] for r in at),
                         "field_accuracy": statistics.fmean(r["field_accuracy"] for r in at)})
    return rows


def per_action_table(per_seed: dict[int, dict[str, list[dict]]]) -> dict[str, dict[str, float | None]]:
    """Per arm (final stage): the FWM's changed-cell accuracy for each true action, mean over seeds."""
    table = {}
    for arm in ARMS:
        found = [arms[arm][-1].get("fwm_per_action", {}) for arms in per_seed.values() if arms.get(arm)]
        actions = sorted({action for per_action in found for action in per_action})
        if actions:
            table[arm] = {action: mean_std([per_action.get(action, {}).get("fwm_changed_accuracy")
                                            for per_action in found])[0] for action in actions}
    return table


def phase_diagnostics(config: QualityConfig) -> list[dict[str, Any]]:
    """The evidence for why SWIRL helps or not: per run and GRPO stage, the mean over seeds (and over steps) of
    what the phase's trainer logged: reward, its std within a group (0: GRPO has nothing to rank), the share of
    groups with equal rewards, KL to the phase-start policy, the parse rate of sampled states, the completion
    length and the step time; for phase I also the annotation keep rate and the IDM's mean log-prob of the
    actions it kept."""
    def mean(values: list) -> float | None:
        return mean_std(values)[0]

    rows = []
    for run in ("swirl", "wav_swirl"):
        for iteration in range(1, config.iterations + 1):
            for phase in (1, 2):
                stage = f"iter_{iteration}/phase{phase}"
                paths = [Path(config.output_dir) / f"seed_{seed}" / run / stage / "metrics.json" for seed in config.seeds]
                found = [json.loads(path.read_text())["training"] for path in paths if path.exists()]
                if not found:
                    continue
                steps = [step for training in found for step in training["log"]]
                row: dict[str, Any] = {"run": run, "stage": stage, "seeds": len(found),
                                       "reward_first_step": mean([training["log"][0]["reward"] for training in found]),
                                       "reward_last_step": mean([training["log"][-1]["reward"] for training in found])}
                row |= {key: mean([step.get(key) for step in steps]) for key in PHASE_SIGNALS}
                if phase == 1:
                    row |= {key: mean([training.get(key) for training in found]) for key in ANNOTATION_SIGNALS}
                rows.append(row)
    return rows


def pseudo_label_stats(config: QualityConfig) -> dict[str, float | None]:
    paths = [Path(config.output_dir) / f"seed_{seed}" / "pseudo" / "metrics.json" for seed in config.seeds]
    found = [json.loads(path.read_text())["training"]["pseudo_labels"] for path in paths if path.exists()]
    return {key: mean_std([stats.get(key) for stats in found])[0]
            for key in ("kept_pairs", "keep_rate", "pseudo_label_accuracy", "pseudo_label_equivalent_accuracy")} | {
        "seeds": len(found)}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def markdown(result: dict[str, Any]) -> str:
    header = "| arm | stage | seeds | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 3)]
    for row in result["table"]:
        cells = [f"{percent(row[m])} ± {percent(row[m + '_std'])}" if row[m] is not None else "—" for m in METRICS]
        lines.append(f"| {row['arm']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences of the final fwm_changed_accuracy (arm - reference, per seed; 95% intervals over "
              "seeds: percentile bootstrap, and paired t):", "",
              "| arm | reference | seeds | reference mean | arm mean | mean difference | bootstrap 95% | t 95% | relative |",
              "|---|---|---|---|---|---|---|---|---|"]

    def interval(low: float | None, high: float | None) -> str:
        return "—" if low is None else f"[{low:+.1%}, {high:+.1%}]"

    for row in result["differences"]:
        relative = "—" if row["relative_change"] is None else f"{row['relative_change']:+.0%}"
        lines.append(f"| {row['arm']} | {row['reference']} | {row['seeds']} | {percent(row['reference_mean'])} | "
                     f"{percent(row['arm_mean'])} | {row['mean_difference']:+.1%} | "
                     f"{interval(row['ci95_low'], row['ci95_high'])} | {interval(row['t95_low'], row['t95_high'])} | "
                     f"{relative} |")
    if result["rollouts"]:
        horizons = sorted({row["horizon"] for row in result["rollouts"]})
        lines += ["", "Open-loop rollouts (exact match of the whole state at each horizon, mean over seeds):", "",
                  "| arm | " + " | ".join(f"h={h}" for h in horizons) + " |", "|" + "---|" * (len(horizons) + 1)]
        for arm in dict.fromkeys(row["arm"] for row in result["rollouts"]):
            by_horizon = {row["horizon"]: row["exact_match"] for row in result["rollouts"] if row["arm"] == arm}
            lines.append(f"| {arm} | " + " | ".join(percent(by_horizon.get(h)) for h in horizons) + " |")
    if result["per_action"]:
        actions = sorted({action for table in result["per_action"].values() for action in table})
        lines += ["", "FWM changed-cell accuracy per true action (final stage, mean over seeds):", "",
                  "| arm | " + " | ".join(actions) + " |", "|" + "---|" * (len(actions) + 1)]
        for arm, table in result["per_action"].items():
            lines.append(f"| {arm} | " + " | ".join(percent(table.get(action)) for action in actions) + " |")
    stats = result["pseudo_labels"]
    if stats["seeds"]:
        lines += ["", f"Pseudo labels: {stats['kept_pairs']:.0f} kept pairs on average (keep rate "
                  f"{percent(stats['keep_rate'])}), {percent(stats['pseudo_label_accuracy'])} of them the recorded "
                  f"action, {percent(stats['pseudo_label_equivalent_accuracy'])} an action that reproduces s'."]
    if result["phase_diagnostics"]:
        lines += ["", "GRPO phases (means over seeds and steps):", "", diagnostics_markdown(result["phase_diagnostics"])]
    if result["latent_actions"]:
        lines += ["", "Phase I's latent actions (the kept pairs; accuracy against the recorded action, and against any "
                  "action that reproduces s'):", "", "| run | stage | seeds | kept | distinct actions | top action's share "
                  "| accuracy | equivalent accuracy |", "|---|---|---|---|---|---|---|---|"]
        for row in result["latent_actions"]:
            lines.append(f"| {row['run']} | {row['stage']} | {row['seeds']} | {row['kept']:.0f} | {row['distinct']:.1f} | "
                         f"{percent(row['top_share'])} | {percent(row['accuracy'])} | "
                         f"{percent(row['equivalent_accuracy'])} |")
    return "\n".join(lines)


def diagnostics_markdown(rows: list[dict]) -> str:
    columns = ("keep_rate", "mean_annotation_logprob", "reward_first_step", "reward_last_step", *PHASE_SIGNALS)
    lines = ["| run | stage | seeds | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        cells = ["—" if row.get(key) is None else f"{row[key]:.3g}" for key in columns]
        lines.append(f"| {row['run']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(config: QualityConfig, per_seed: dict[int, dict[str, list[dict]]], timings: dict, labels: dict) -> dict:
    from swirl.evaluation.report import plot_arms
    from swirl.paths import json_safe, write_text_atomic

    out = Path(config.output_dir)
    table = summarise(per_seed)
    result = {"regime": config.regime, "table": table,
              "differences": paired_differences(per_seed, config.bootstrap_samples),
              "rollouts": rollout_table(per_seed), "per_action": per_action_table(per_seed),
              "pseudo_labels": pseudo_label_stats(config), "phase_diagnostics": phase_diagnostics(config),
              "latent_actions": latent_action_stats(config),
              "per_seed": {str(seed): arms for seed, arms in per_seed.items()}, "wall_time_s": timings,
              "labelled_rows": labels}
    write_text_atomic(out / "quality.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "quality.md", markdown(result) + "\n")
    finals = list({row["arm"]: row for row in table}.values())  # each arm's last stage (table rows are in order)
    plot_arms(finals, METRICS, out / "quality.png",
              title=f"{out.name} ({config.regime}): final stage per arm, mean ± std over seeds")
    return result


def labels_used(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, int]:
    """Labelled transitions each arm's warm start trained on (the acquired set for WAV)."""
    from swirl.data import load_dataset_dict

    root = Path(config.output_dir) / f"seed_{seed}"
    labelled = load_dataset_dict(data)["labelled"].num_rows
    used = {arm: labelled for arm in ("sft", "sft_more", "pseudo", "swirl") if arm in config.arms}
    if "wav_swirl" in config.arms and (root / "wav_swirl" / "data_acquired").exists():  # not before WAV has run
        used["wav_swirl"] = load_dataset_dict(root / "wav_swirl" / "data_acquired")["labelled"].num_rows
    if "upper" in config.arms:
        used["upper"] = load_dataset_dict(data_all)["labelled"].num_rows
    return {f"seed_{seed}/{arm}": count for arm, count in used.items()}


# ------------------------------------------------------------------------------------------------ the command
STUDY_CONFIG = "quality_config.json"
MAY_CHANGE = ("seeds", "arms", "jobs", "write_report", "bootstrap_samples", "output_dir", "report_only",
              "report_to", "run_name", "project", "disable_tqdm")


def check_same_study(config: QualityConfig) -> None:
    """Refuse to resume a study folder made with other settings (only seeds, arms, jobs and the report's bootstrap
    may change): its seeds' data and finished stages would silently mix two studies."""
    from dataclasses import asdict

    from swirl.config_fields import field_defaults
    from swirl.paths import refuse_other_settings

    refuse_other_settings(Path(config.output_dir) / STUDY_CONFIG,
                          {key: value for key, value in asdict(config).items() if key not in MAY_CHANGE},
                          made="holds a study", defaults=field_defaults(type(config)))


def run_seeds_in_processes(config: QualityConfig, argv: list[str]) -> dict[str, float]:
    """Run every seed as ``quality_minigrid.py <argv> --seeds k --jobs 1``, ``config.jobs`` at a time; return
    each process's wall time. A failed seed is named with its log; the other seeds' work is kept."""
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // config.jobs)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def run(seed: int) -> tuple[int, int, float]:
        start = time.perf_counter()
        with open(out / f"seed_{seed}.log", "a") as log:
            code = subprocess.call([sys.executable, __file__, *argv, "--seeds", str(seed), "--jobs", "1",
                                    "--write_report", "false"],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        return seed, code, time.perf_counter() - start

    print(f"running seeds {config.seeds}, {config.jobs} at a time, {threads} thread(s) each; logs in {out}/",
          flush=True)
    with ThreadPoolExecutor(config.jobs) as pool:
        results = list(pool.map(run, config.seeds))
    failed = [f"seed {seed} (exit {code}, see {out}/seed_{seed}.log)" for seed, code, _ in results if code]
    if failed:
        from swirl.errors import SwirlError

        raise SwirlError("the quality study failed for " + ", ".join(failed) + "; rerun to resume")
    return {f"seed_{seed}_process": seconds for seed, _, seconds in results}


def main(argv: list[str] | None = None) -> None:
    import datasets

    from swirl.config_fields import parse_config

    config = parse_config(QualityConfig, argv, description=__doc__.split("\n\n")[0], prog="quality_minigrid.py")
    check_same_study(config)
    datasets.disable_progress_bars()
    per_seed: dict[int, dict[str, list[dict]]] = {}
    timings: dict[str, float] = {}  # of this invocation: a resumed run skips its finished stages
    if config.jobs > 1 and len(config.seeds) > 1 and not config.report_only:  # the seeds' work in parallel processes
        timings |= run_seeds_in_processes(config, list(sys.argv[1:] if argv is None else argv))
    collect_only = config.jobs > 1 and len(config.seeds) > 1
    labels: dict[str, int] = {}
    for seed in config.seeds:
        start = time.perf_counter()
        data, data_all = seed_datasets(config, seed)
        per_seed[seed] = (finished_lines(config, seed) if config.report_only or collect_only
                          else arm_lines(config, seed, data, data_all))
        labels |= labels_used(config, seed, data, data_all)
        timings[f"seed_{seed}"] = time.perf_counter() - start
        if config.write_report:  # after every seed: a partial study is still a readable one
            report(config, per_seed, timings, labels)
    if config.write_report:
        result = report(config, per_seed, timings, labels)
        print(markdown(result))
        print(f"wrote {Path(config.output_dir) / 'quality.json'}")


if __name__ == "__main__":
    from swirl.errors import run_or_exit

    sys.exit(run_or_exit(main, sys.argv[1:]))
