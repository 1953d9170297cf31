"""Where a SWIRL GRPO step spends its time, and how many state-only pairs a CPU-minute trains: generation, reward
scoring and the update (reference/old log-probs, loss, backward, optimizer), for phase I and phase II, at several
numbers of prompts per step.

The phase is `swirl.training.phases.run_grpo_phase`, as the loop runs it; the GRPOTrainer methods that generate,
score and step are timed inside `swirl.training.step_timing.timing_grpo` (this script is its command line). With
``--warm <stage dir>`` (a run's ``warmstart/``, holding ``fwm/`` and ``idm/``) and ``--dataset <dir>`` the adapters
and pairs are real ones (generations stop where the warm-started model stops, as in the study); without them, fresh
adapters on a small MiniGrid dataset (generations run to ``max_state_tokens``). Goal (#29): >= 3x more pairs per
CPU-minute than 1 prompt of 8 samples per step.

    python benchmarks/grpo_step.py --models smollm2-135m --warm runs/quality-scarce/seed_0/swirl/warmstart \\
        --dataset runs/quality-scarce/seed_0/data --prompts-per-step 1 4 --steps 4

Prints a markdown table and writes benchmarks/results/grpo_step.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from swirl.training.step_timing import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny-qwen2", "smollm2-135m"], help="models to measure")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per phase and setting")
    parser.add_argument("--prompts-per-step", type=int, nargs="+", default=[1, 4],
                        help="prompts per step to compare (each with --generations samples)")
    parser.add_argument("--generations", type=int, default=8, help="GRPO group size (samples per prompt)")
    parser.add_argument("--shared-prompt", nargs="+", default=["off", "on"], choices=("off", "on"),
                        help="TRL's own policy/reference pass (off) and the one that reads each prompt once per "
                             "group (on, the default of SWIRL runs); both by default")
    parser.add_argument("--warm", type=Path, default=None,
                        help="a run's warm-start stage folder (with fwm/ and idm/) for real adapters; its model must "
                             "be the only one in --models")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="a swirl dataset folder whose test split gives the pairs (default: a small built one)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpo_step.json"), help="JSON output")
    args = parser.parse_args()
    if args.warm is not None and len(args.models) != 1:
        parser.error("--warm holds one model's adapters: pass exactly one --models")
    work = Path(tempfile.mkdtemp(prefix="swirl-grpo-bench-"))
    rows = []
    for name in args.models:
        for prompts in args.prompts_per_step:
            for shared in args.shared_prompt:
                rows.extend(measure(name, args.steps, work, prompts_per_step=prompts, generations=args.generations,
                                    warm=args.warm, dataset=args.dataset, shared_prompt=shared == "on"))
    print("| model | warm start | phase | prompts x samples | shared prompt | step (s) | generation (s) | scoring (s) | "
          "update (s) | answers scored | s per pair | pairs per CPU-minute |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        phase = "I (FWM policy)" if row["phase"] == 1 else "II (IDM policy)"
        scored = "—" if row["scored_share"] is None else f"{row['scored_share']:.0%}"
        print(f"| {row['model']} | {'yes' if row['warm_start'] else 'no'} | {phase} | {row['prompts_per_step']} x "
              f"{row['generations']} | {'on' if row['shared_prompt'] else 'off'} | {row['step_s']:.2f} | {row['generation_s']:.2f} | {row['scoring_s']:.2f} | "
              f"{row['update_s']:.2f} | {scored} | {row['seconds_per_pair']:.2f} | {row['pairs_per_minute']:.1f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": torch.get_num_threads(), "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
