"""What would make SWIRL help? One-knob tries on one seed of the quality study, each against that seed's own arms.

A try is the study's ``swirl`` arm with one setting changed, started from the seed's finished warm start (so every
try and the study's arms share the same ``sft`` adapters, data and test rows; only SWIRL's iterations run), in
``<output_dir>/<try>/``. The tries are the knobs the quality issue names: more GRPO steps and prompts, the paper's
group of 16, beta 0.04 (the study runs 0.1), and a stricter phase I annotation threshold. The number of iterations
needs no try of its own: every iteration of every run is evaluated, so the table reads 1, 2 and 3 iterations off
the same runs. (Phase I already floors a sampled diff that does not apply to s at ``reward_clip``.)

    python benchmarks/quality_tries.py --config recipes/minigrid/quality-smollm2.yaml --study runs/quality-scarce
    python benchmarks/quality_tries.py --calibration      # the warm IDM's accuracy per annotation threshold

Resumable like the study (each try is a study folder). Prints a table and writes ``<output_dir>/tries.json`` and
``tries.md``: per try and iteration, FWM changed-cell accuracy and IDM accuracy on the study's test rows, what phase I
kept (pairs, accuracy of the latent actions) and the GRPO signals (reward std, zero-std groups, KL).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from swirl.study import arms as study_arms, labels as study_labels, runner as study_runner, study_config

TRIES: dict[str, list[str]] = {
    "threshold": ["--annotation_min_logprob", "-0.1"],  # seed 0: keeps 49 of 128 pairs, 98% right (-2: 65%)
    "beta0.04": ["--beta", "0.04"],  # the paper's lower beta
    "group16": ["--num_generations", "16"],  # the paper's group
    "steps": ["--phase_steps", "16", "--prompts_per_step", "2"],  # 4x the state-only pairs GRPO sees per phase
}


def run_try(name: str, arguments: argparse.Namespace) -> Path:
    """Run (or resume) one try: the study's sft and swirl arms of ``arguments.seed``, warm start reused."""
    seed_dir = Path(arguments.study) / f"seed_{arguments.seed}"
    warm = seed_dir / "swirl" / "warmstart"
    if not (warm / "metrics.json").exists():
        from swirl.errors import SwirlError

        raise SwirlError(f"{warm} is not a finished warm start: run the study for seed {arguments.seed} first")
    out = Path(arguments.output_dir) / name
    for part in ("data", "data_all"):  # the seed's data, as the study built it
        if not (out / f"seed_{arguments.seed}" / part).exists():
            shutil.copytree(seed_dir / part, out / f"seed_{arguments.seed}" / part)
    study_runner.main(["--config", arguments.config, "--output_dir", str(out), "--seeds", str(arguments.seed),
                "--arms", "sft", "swirl", "--fwm_adapter", str(warm / "fwm"), "--idm_adapter", str(warm / "idm"),
                "--write_report", "false", *TRIES[name]])
    return out / f"seed_{arguments.seed}" / "swirl"


def try_rows(name: str, run: Path, data_all: Path, state_text: str) -> list[dict[str, Any]]:
    """One row per evaluated stage of a SWIRL run folder: its test metrics and, for phase I, what it trained on."""
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        evaluation = json.loads(line)
        row: dict[str, Any] = {"try": name, "stage": evaluation["stage"],
                               "fwm_changed_accuracy": evaluation["fwm_changed_accuracy"],
                               "idm_accuracy": evaluation["idm_accuracy"]}
        stage = run / evaluation["stage"]
        if evaluation["stage"] != "warmstart":
            training = json.loads((stage / "metrics.json").read_text())["training"]
            log = training["log"]
            row |= {"steps": training["steps"],
                    "reward_std": statistics.fmean(step["reward_std"] for step in log),
                    "zero_std_groups": statistics.fmean(step["frac_reward_zero_std"] for step in log),
                    "kl": statistics.fmean(step["kl"] for step in log)}
        if (stage / "latent_actions.jsonl").exists():
            labels = [tuple(json.loads(text)[key] for key in ("state", "next_state", "latent_action"))
                      for text in (stage / "latent_actions.jsonl").read_text().splitlines()]
            accuracy = study_labels.label_accuracy(labels, data_all, state_text)
            row |= {"kept_pairs": len(labels), "latent_accuracy": accuracy["accuracy"],
                    "latent_equivalent_accuracy": accuracy["equivalent_accuracy"]}
        rows.append(row)
    return rows


THRESHOLDS = (-0.001, -0.01, -0.05, -0.1, -0.2, -0.5, -1.0, -2.0)


def calibration(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    """How right the warm IDM's latent actions are at each annotation threshold, on the seed's state-only pairs
    phase I annotates: the evidence a threshold is chosen by (``--calibration``; writes ``calibration.json``)."""
    from swirl.config_fields import parse_config
    from swirl.models.loading import load_tokenizer
    from swirl.training.loop import load_stage, state_only_pairs
    from swirl.training.phases import annotate_latent_actions
    from swirl.training.warm_start import load_run_data

    seed_dir = Path(arguments.study) / f"seed_{arguments.seed}"
    config = parse_config(study_config.QualityConfig, ["--config", arguments.config, "--output_dir", arguments.study],
                          description="")
    run = study_arms.run_configs(config, arguments.seed, seed_dir / "data", seed_dir / "data_all")["swirl"]
    run.annotation_min_logprob = -float("inf")  # annotate every pair; the thresholds are applied below
    tokenizer = load_tokenizer(run.model)
    model, sampler = load_stage(run, seed_dir / "swirl" / "warmstart", tokenizer)
    kept, _ = annotate_latent_actions(model, tokenizer, sampler, state_only_pairs(run, load_run_data(run, Path(run.dataset))),
                                      run)
    pairs = list(zip(kept["state"], kept["next_state"], kept["latent_action"], kept["latent_logprob"]))
    rows = []
    for threshold in THRESHOLDS:
        chosen = [(s, n, a) for s, n, a, logprob in pairs if logprob >= threshold]
        accuracy = study_labels.label_accuracy(chosen, seed_dir / "data_all", run.state_text)
        rows.append({"threshold": threshold, "kept": len(chosen), "of": len(pairs), "right": accuracy["accuracy"] or 0.0,
                     "equivalent": accuracy["equivalent_accuracy"] or 0.0,
                     "actions": dict(Counter(a for _, _, a in chosen).most_common())})
    return rows


COLUMNS = ("try", "stage", "fwm_changed_accuracy", "idm_accuracy", "kept_pairs", "latent_accuracy",
           "latent_equivalent_accuracy", "steps", "reward_std", "zero_std_groups", "kl")


def markdown(rows: list[dict[str, Any]]) -> str:
    def cell(key: str, value: Any) -> str:
        if value is None:
            return ""
        if key in ("fwm_changed_accuracy", "idm_accuracy", "latent_accuracy", "latent_equivalent_accuracy",
                   "zero_std_groups"):
            return f"{value:.1%}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(key, row.get(key)) for key in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="quality_tries.py")
    parser.add_argument("--config", default="recipes/minigrid/quality-smollm2.yaml",
                        help="the study's preset (the tries change one setting of it).")
    parser.add_argument("--study", default="runs/quality-scarce",
                        help="the study's output_dir: the seed's data and finished warm start come from it.")
    parser.add_argument("--seed", type=int, default=0, help="the study seed whose warm start every try continues.")
    parser.add_argument("--tries", nargs="+", default=list(TRIES), choices=list(TRIES), help="which tries to run.")
    parser.add_argument("--output_dir", default="runs/quality-tries", help="one study folder per try under it.")
    parser.add_argument("--calibration", action="store_true",
                        help="instead of the tries: how right the warm IDM's latent actions are per annotation "
                             "threshold (calibration.json).")
    arguments = parser.parse_args(argv)
    if arguments.calibration:
        rows = calibration(arguments)
        Path(arguments.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(arguments.output_dir) / "calibration.json").write_text(json.dumps(rows, indent=1))
        for row in rows:
            print(f"threshold {row['threshold']:>7}: kept {row['kept']:3d}/{row['of']}  right {row['right']:.1%}  "
                  f"reproduce s' {row['equivalent']:.1%}  {row['actions']}")
        return
    seed_dir = Path(arguments.study) / f"seed_{arguments.seed}"
    state_text = json.loads((Path(arguments.study) / study_config.STUDY_CONFIG).read_text())["state_text"]
    rows = try_rows("study (none)", seed_dir / "swirl", seed_dir / "data_all", state_text)
    for name in arguments.tries:
        print(f"== try {name}: {' '.join(TRIES[name])}", flush=True)
        run = run_try(name, arguments)
        rows += [row for row in try_rows(name, run, seed_dir / "data_all", state_text) if row["stage"] != "warmstart"]
        out = Path(arguments.output_dir)
        (out / "tries.json").write_text(json.dumps({"seed": arguments.seed, "study": arguments.study,
                                                    "tries": {k: TRIES[k] for k in arguments.tries},
                                                    "rows": rows}, indent=1))
        (out / "tries.md").write_text(markdown(rows) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    from swirl.errors import run_or_exit

    sys.exit(run_or_exit(main, sys.argv[1:]))
