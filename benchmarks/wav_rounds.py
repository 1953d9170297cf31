"""What did a WAV run's rounds teach its LLM forward model: the new labels, or only the extra SFT steps (issue #31)?

A round continues the previous round's ``fwm`` for ``round_steps`` SFT steps on the grown labelled set, so a gain
after a round mixes three causes: the labels the method acquired, more training on the seed labels the model has
already seen, and the luck of one SFT run. This script separates them:

- the ``no_labels`` arm replays the run's rounds on the seed labels alone (the same warm start, steps, learning rate
  and training seeds: ``swirl.wav.round_models.round_seed``, as the recipe trains them);
- ``--replica R`` (R >= 1) retrains every arm's rounds with the training seed ``round_seed(seed, round) + 100 * R``: a
  method on the very labels it acquired in the run (its rounds' ``labelled/`` sets), ``no_labels`` on the seed labels.

Every arm is scored greedily on the run's test rows, overall and per action (a round's ``metrics.json`` holds only the
overall numbers). Replica 0 of a method is the run's own round adapter, not retrained.

    python benchmarks/wav_rounds.py --run runs/wav-front-rounds64 --seeds 0
    python benchmarks/wav_rounds.py --run runs/wav-front-rounds64 --seeds 0 --arms wav random --rounds 1 --replica 1

Writes ``<out>/seed_<s>/<arm>[_r<R>]_round_<k>.json`` (resumable: a scored arm is skipped, and an adapter trained
here is kept under ``<out>/seed_<s>/<arm>[_r<R>]/round_<k>/fwm``) and ``--results`` (everything in ``<out>``); prints
a table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

CONTROL = "no_labels"


def arm_adapters(arm: str, replica: int, config: Any, tokenizer: Any, parts: dict[str, Any], run: Path, out: Path,
                 seed: int, rounds: int) -> dict[int, tuple[Path, float | None]]:
    """The arm's forward model after each round up to ``rounds``, with its SFT seconds (``None``: not trained by
    this command)."""
    from datasets import load_from_disk  # lazy, like every import here: --help stays instant

    from swirl.wav.round_models import round_seed, train_forward_model

    seed_dir = run / f"seed_{seed}"
    if arm != CONTROL and replica == 0:  # the run's own rounds
        return {k: (seed_dir / arm / f"round_{k}" / "fwm", None) for k in range(1, rounds + 1)}
    previous, adapters = seed_dir / "warmstart", {}
    for k in range(1, rounds + 1):
        rows = parts["seed_labels"] if arm == CONTROL else \
            load_from_disk(str(seed_dir / arm / f"round_{k}" / "labelled"))["labelled"]
        stage = out / f"seed_{seed}" / (arm if replica == 0 else f"{arm}_r{replica}") / f"round_{k}"
        metrics = train_forward_model(config, tokenizer, rows, parts["test"], stage, previous,
                                      round_seed(seed, k) + 100 * replica)
        adapters[k] = stage / "fwm", None if metrics.get("reused") else metrics["wall_time_s"]
        previous = stage
    return adapters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/wav-front-rounds64",
                        help="a recipes/wav_minigrid.py output folder with the llm backend: its settings, warm starts "
                             "and rounds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run, in this order")
    parser.add_argument("--arms", nargs="+", default=None,
                        help="the run's methods and/or no_labels (default: every method the run holds for the seed, "
                             "and no_labels)")
    parser.add_argument("--rounds", type=int, nargs="+", default=None,
                        help="rounds to score (default: every round the run's methods finished); an arm trained here "
                             "trains every round up to the last one named")
    parser.add_argument("--replica", type=int, default=0,
                        help="0: the run's own round adapters (and no_labels at the recipe's training seeds); R >= 1: "
                             "every arm retrained at training seeds shifted by 100 * R")
    parser.add_argument("--out", default="runs/wav-rounds", help="resumable output folder (one JSON per arm and round)")
    parser.add_argument("--results", default="benchmarks/results/wav_rounds.json", help="combined JSON")
    args = parser.parse_args()

    # this folder's run settings and per-action scorer
    from fwm_front_cell import ACTIONS, action_columns, percent, run_config, score_adapter
    from swirl.models.loading import load_tokenizer
    from swirl.paths import write_json_atomic  # a killed run leaves no half-written JSON
    from swirl.wav.seed_data import load_run_data, split_data
    from swirl.wav.wav_config import METHODS

    run, out = Path(args.run), Path(args.out)
    if args.replica < 0:
        raise SystemExit(f"--replica must be >= 0, got {args.replica}")
    unknown = sorted(set(args.arms or ()) - {*METHODS, CONTROL})
    if unknown:
        raise SystemExit(f"--arms: unknown {', '.join(unknown)} (choose from {', '.join([*METHODS, CONTROL])})")
    config, _ = run_config(run)
    if config.backend != "llm":
        raise SystemExit(f"{run}: expected an llm-backend run (its backend is {config.backend})")
    config = replace(config, output_dir=str(out))
    data = load_run_data(config)
    tokenizer = load_tokenizer(config.model)
    for seed in args.seeds:
        seed_dir = run / f"seed_{seed}"
        if not (seed_dir / "warmstart" / "metrics.json").exists():
            raise SystemExit(f"{run} has no finished warm start for seed {seed}: run the recipe first")
        arms = args.arms or [*(m for m in METHODS if (seed_dir / m / "metrics.jsonl").exists()), CONTROL]
        # the rounds the run's methods finished (a round's metrics.json is written last)
        rounds = args.rounds or sorted({int(path.parent.name.split("_")[1]) for arm in arms
                                        for path in (seed_dir / arm).glob("round_*/metrics.json")})
        if not rounds:
            raise SystemExit(f"{run} holds no finished round for seed {seed}: name the rounds with --rounds")
        for arm in arms:
            if arm != CONTROL and not (seed_dir / arm / f"round_{max(rounds)}" / "metrics.json").exists():
                raise SystemExit(f"{run}: {arm} has not finished round {max(rounds)} for seed {seed}")
        parts = split_data(config, data, seed)
        for arm in arms:
            name = arm if args.replica == 0 else f"{arm}_r{args.replica}"
            adapters = arm_adapters(arm, args.replica, config, tokenizer, parts, run, out, seed, max(rounds))
            for k in rounds:
                path = out / f"seed_{seed}" / f"{name}_round_{k}.json"
                if path.exists():
                    continue
                adapter, sft_s = adapters[k]
                start = time.perf_counter()
                labels = parts["seed_labels"].num_rows if arm == CONTROL else \
                    json.loads((seed_dir / arm / f"round_{k}" / "metrics.json").read_text())["labels"]
                record = {"arm": arm, "replica": args.replica, "seed": seed, "round": k, "labels": labels,
                          "adapter": str(adapter), "sft_s": sft_s,
                          **score_adapter(config, tokenizer, adapter, parts["test"], seed),
                          "eval_s": time.perf_counter() - start}
                write_json_atomic(path, record)
    # everything in the folder, also earlier commands' (e.g. --seeds 0, then --replica 1)
    order = [*METHODS, CONTROL]
    results = sorted((json.loads(path.read_text()) for path in out.glob("seed_*/*_round_*.json")),
                     key=lambda r: (r["seed"], order.index(r["arm"]), r["round"], r.get("replica", 0)))
    write_json_atomic(args.results, results)
    print("| seed | arm | round | replica | labels | changed cells | exact | " + " | ".join(ACTIONS) + " |")
    print("|---" * (7 + len(ACTIONS)) + "|")
    for result in results:
        print(f"| {result['seed']} | {result['arm']} | {result['round']} | {result.get('replica', 0)} | "
              f"{result['labels']} | {percent(result['fwm_changed_accuracy'])} | "
              f"{percent(result['fwm_exact_match'])} | {action_columns(result)} |")


if __name__ == "__main__":
    main()
