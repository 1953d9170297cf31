"""SWIRL and WAV in miniature on MiniGrid (issue #9): four arms, several seeds, one command, resumable.

The arms share the model, the SFT/GRPO settings of the preset and the labelled budget (the size of the
labelled half, |L|):

* ``sft``: SFT-only, the warm start on the labelled half (the baseline);
* ``swirl``: that warm start, then ``iterations`` x (phase I, phase II) on the state-only half;
* ``wav_swirl``: the |L| labels chosen by WAV acquisition instead (``acquisition_seed_labels`` random
  labelled rows, then ``acquisition_rounds`` rounds of actions picked from state-only states and executed in
  the simulator), then the same warm start and SWIRL iterations;
* ``upper``: SFT on every training transition with its true action (the upper reference).

``sft`` and ``swirl`` are one SWIRL run (its warm-start stage is arm 1). Per seed, under ``<output_dir>/seed_<k>/``:
``data/`` (half the training episodes labelled), ``data_all/`` (all labelled: the same episodes), and the run
folders ``swirl/``, ``wav_swirl/``, ``upper/``. Rerunning the command skips every finished stage.

    python benchmarks/quality_minigrid.py --config recipes/minigrid/quality-smollm2.yaml     # make quality

Writes ``<output_dir>/quality.json`` (every evaluation of every arm and seed, and the mean +- std table),
``quality.md`` and ``quality.png``, and prints the table.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from swirl.training.config import SwirlConfig

ARMS = ("sft", "swirl", "wav_swirl", "upper")
METRICS = ("fwm_changed_accuracy", "fwm_exact_match", "fwm_parse_rate", "idm_accuracy")
PHASE_SIGNALS = ("reward_std", "frac_reward_zero_std", "kl", "parse_rate", "completions/mean_length", "step_time")
ANNOTATION_SIGNALS = ("keep_rate", "mean_annotation_logprob")


@dataclass
class QualityConfig(SwirlConfig):
    """A SWIRL run's settings (shared by every arm) plus the study's seeds and arms."""

    output_dir: str = field(default="runs/quality", metadata={"help": "where the seeds' data and runs go."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "seeds (data, labels, training)."})
    arms: list[str] = field(default_factory=lambda: list(ARMS), metadata={"help": "arms to run: sft, swirl, "
                                                                                      "wav_swirl, upper."})
    jobs: int = field(default=1, metadata={"help": "seeds run at once, each in its own process with cpu_count/jobs "
                                                   "torch threads (log: <output_dir>/seed_<k>.log); the results "
                                                   "are collected once all have finished."})

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if unknown:
            raise ValueError(f"arms must be among {', '.join(ARMS)} (got {', '.join(unknown)})")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1 (got {self.jobs})")


def seed_datasets(config: QualityConfig, seed: int) -> tuple[Path, Path]:
    """``data`` (half the training episodes labelled) and ``data_all`` (the same episodes, every one labelled;
    ``state_only`` and ``test`` as in ``data``) of one seed."""
    from datasets import DatasetDict

    from swirl.builders.minigrid import build_minigrid_dataset
    from swirl.data import load_dataset_dict, save_dataset_dict

    root = Path(config.output_dir) / f"seed_{seed}"
    data, data_all = root / "data", root / "data_all"

    def build(fraction: float):
        return build_minigrid_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                      policy=config.env_policy, epsilon=config.env_epsilon, labelled_fraction=fraction,
                                      test_episodes=config.env_test_episodes, test_split=config.env_test_split,
                                      state_text=config.state_text, seed=seed, progress=False)

    if not data.exists():
        save_dataset_dict(build(0.5), data)
    if not data_all.exists():
        half = load_dataset_dict(data)
        everything = build(1.0)
        if everything["test"]["state"] != half["test"]["state"]:
            raise RuntimeError("the two builds of one seed differ: the data builder is not deterministic")
        save_dataset_dict(DatasetDict({"labelled": everything["labelled"], "state_only": half["state_only"],
                                       "test": half["test"]}), data_all)
    return data, data_all


def arm_configs(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, SwirlConfig]:
    """One SWIRL run per arm group: ``swirl`` (arms sft and swirl), ``wav_swirl`` and ``upper``."""
    from swirl.data import load_dataset_dict

    root = Path(config.output_dir) / f"seed_{seed}"
    shared = {f.name: getattr(config, f.name) for f in fields(SwirlConfig)}
    shared |= {"seed": seed, "push_to_hub": False}
    labelled = load_dataset_dict(data)["labelled"].num_rows
    rounds = max(1, config.acquisition_rounds)
    per_round = math.ceil(max(0, labelled - config.acquisition_seed_labels) / rounds)
    # every pool state offers each action once (7 in MiniGrid, 6 of them often distinct): enough to spend the budget
    pool_states = max(config.acquisition_pool_states, math.ceil(rounds * per_round / 6))
    runs = {}
    if {"sft", "swirl"} & set(config.arms):
        iterations = config.iterations if "swirl" in config.arms else 0
        runs["swirl"] = SwirlConfig(**shared | {"output_dir": str(root / "swirl"), "dataset": str(data),
                                                "acquisition": "none", "iterations": iterations})
    if "wav_swirl" in config.arms:
        runs["wav_swirl"] = SwirlConfig(**shared | {"output_dir": str(root / "wav_swirl"), "dataset": str(data),
                                                    "acquisition": "wav", "acquisition_rounds": rounds,
                                                    "acquisition_budget": per_round,
                                                    "acquisition_pool_states": pool_states})
    if "upper" in config.arms:
        runs["upper"] = SwirlConfig(**shared | {"output_dir": str(root / "upper"), "dataset": str(data_all),
                                                "acquisition": "none", "iterations": 0})
    return runs


def labels_used(run_config: SwirlConfig) -> int:
    """Labelled transitions the run's warm start trained on (the acquired set for WAV)."""
    from swirl.data import load_dataset_dict

    folder = Path(run_config.output_dir) / "data_acquired" if run_config.acquisition != "none" else run_config.dataset
    return load_dataset_dict(folder)["labelled"].num_rows


def arm_lines(run: str, lines: list[dict]) -> dict[str, list[dict]]:
    """A run's evaluation lines as arms: the plain SWIRL run's warm start is arm ``sft``."""
    if run == "swirl":
        return {"sft": lines[:1], "swirl": lines}
    return {run: lines}


def summarise(per_seed: dict[int, dict[str, list[dict]]]) -> list[dict[str, Any]]:
    """Mean and std over seeds of each metric, per arm and stage (stages a seed has not reached are left out)."""
    import statistics

    table = []
    for arm in ARMS:
        stages = dict.fromkeys(line["stage"] for arms in per_seed.values() for line in arms.get(arm, []))
        for stage in stages:
            found = [line for arms in per_seed.values() for line in arms.get(arm, []) if line["stage"] == stage]
            row: dict[str, Any] = {"arm": arm, "stage": stage, "seeds": len(found)}
            for metric in METRICS:
                values = [line[metric] for line in found if line.get(metric) is not None]
                row[metric] = statistics.fmean(values) if values else None
                row[metric + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            table.append(row)
    return table


def relative_gain(per_seed: dict[int, dict[str, list[dict]]], arm: str, metric: str = "fwm_changed_accuracy") -> dict:
    """``arm``'s final evaluation against arm ``sft``: per seed and of the means, as a relative change."""
    pairs = [(arms["sft"][-1][metric], arms[arm][-1][metric]) for arms in per_seed.values()
             if arms.get("sft") and arms.get(arm)]
    if not pairs:
        return {}
    base, other = (sum(values) / len(pairs) for values in zip(*pairs))
    return {"metric": metric, "seeds": len(pairs), "baseline_mean": base, "arm_mean": other,
            "relative_change_of_means": (other - base) / base if base else None,
            "per_seed": [{"baseline": b, "arm": o} for b, o in pairs]}


def phase_diagnostics(config: QualityConfig) -> list[dict[str, Any]]:
    """The evidence for why SWIRL helps or not: per run and GRPO stage, the mean over seeds (and over steps) of
    what the phase's trainer logged: reward, its std within a group (0: GRPO has nothing to rank), the share of
    groups with equal rewards, KL to the phase-start policy, the parse rate of sampled states, the completion
    length (degenerate long actions would show here) and the step time; for phase I also the annotation keep
    rate and the IDM's mean log-prob of the actions it kept."""
    import statistics

    def mean(values: list) -> float | None:
        values = [value for value in values if value is not None]
        return statistics.fmean(values) if values else None

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


def diagnostics_markdown(rows: list[dict]) -> str:
    columns = ("keep_rate", "mean_annotation_logprob", "reward_first_step", "reward_last_step", *PHASE_SIGNALS)
    lines = ["| run | stage | seeds | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        cells = ["—" if row.get(key) is None else f"{row[key]:.3g}" for key in columns]
        lines.append(f"| {row['run']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(table: list[dict]) -> str:
    header = "| arm | stage | seeds | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 3)]
    for row in table:
        cells = [f"{row[m]:.1%} ± {row[m + '_std']:.1%}" if row[m] is not None else "—" for m in METRICS]
        lines.append(f"| {row['arm']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(config: QualityConfig, per_seed: dict[int, dict[str, list[dict]]], timings: dict, labels: dict) -> dict:
    from swirl.evaluation.report import plot_arms
    from swirl.paths import json_safe, write_text_atomic

    out = Path(config.output_dir)
    table = summarise(per_seed)
    diagnostics = phase_diagnostics(config)
    result = {"table": table, "gains": {arm: relative_gain(per_seed, arm) for arm in ("swirl", "wav_swirl", "upper")},
              "per_seed": {str(seed): arms for seed, arms in per_seed.items()}, "wall_time_s": timings,
              "labelled_rows": labels, "phase_diagnostics": diagnostics}
    write_text_atomic(out / "quality.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "quality.md", markdown(table) + "\n\nGRPO phases (means over seeds and steps):\n\n"
                      + diagnostics_markdown(diagnostics) + "\n")
    finals = list({row["arm"]: row for row in table}.values())  # each arm's last stage (table rows are in order)
    plot_arms(finals, METRICS, out / "quality.png", title=f"{out.name}: final stage per arm, mean ± std over seeds")
    return result


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
            code = subprocess.call([sys.executable, __file__, *argv, "--seeds", str(seed), "--jobs", "1"],
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
    from swirl.training.loop import run_swirl

    config = parse_config(QualityConfig, argv, description=__doc__.split("\n\n")[0], prog="quality_minigrid.py")
    datasets.disable_progress_bars()
    per_seed: dict[int, dict[str, list[dict]]] = {}
    timings: dict[str, float] = {}  # of this invocation: a resumed run skips its finished stages
    if config.jobs > 1 and len(config.seeds) > 1:  # the seeds' work in parallel processes; below only collects it
        timings |= run_seeds_in_processes(config, list(sys.argv[1:] if argv is None else argv))
    labels: dict[str, int] = {}
    for seed in config.seeds:
        start = time.perf_counter()
        data, data_all = seed_datasets(config, seed)
        per_seed[seed] = {}
        for run, run_config in arm_configs(config, seed, data, data_all).items():
            run_start = time.perf_counter()
            print(f"== seed {seed}: {run} -> {run_config.output_dir}", flush=True)
            per_seed[seed] |= arm_lines(run, run_swirl(run_config, "python benchmarks/quality_minigrid.py ..."))
            timings[f"seed_{seed}/{run}"] = time.perf_counter() - run_start
            labels[f"seed_{seed}/{run}"] = labels_used(run_config)
        timings[f"seed_{seed}"] = time.perf_counter() - start
        report(config, per_seed, timings, labels)  # after every seed: a partial study is still a readable one
    result = report(config, per_seed, timings, labels)
    print(markdown(result["table"]))
    gain = result["gains"]["swirl"]
    if gain.get("relative_change_of_means") is not None:
        print(f"SWIRL vs SFT-only, changed-cell accuracy: {gain['baseline_mean']:.1%} -> {gain['arm_mean']:.1%} "
              f"({gain['relative_change_of_means']:+.0%} relative, {gain['seeds']} seeds)")
    print(f"wrote {Path(config.output_dir) / 'quality.json'}")


if __name__ == "__main__":
    from swirl.errors import run_or_exit

    sys.exit(run_or_exit(main, sys.argv[1:]))
