"""Where a SWIRL GRPO step spends its time: generation, reward scoring, and the update (everything else:
reference/old log-probs, loss, backward, optimizer), for phase I and phase II on CPU.

The two GRPOTrainer methods that generate and score are wrapped with timers for this script only; the
phase itself is `swirl.training.phases.run_grpo_phase`, as the loop runs it. Goal (issue #4): scoring
<= 15% of a step.

    python benchmarks/grpo_step.py [--models tiny-qwen2 smollm2-135m] [--steps 3]

Prints a markdown table and writes benchmarks/results/grpo_step.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from trl import GRPOTrainer

TIMERS: dict[str, float] = defaultdict(float)


def timed(name: str, method):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            TIMERS[name] += time.perf_counter() - start

    return wrapper


GRPOTrainer._generate = timed("generation", GRPOTrainer._generate)
GRPOTrainer._calculate_rewards = timed("scoring", GRPOTrainer._calculate_rewards)
GRPOTrainer.training_step = timed("step", GRPOTrainer.training_step)


def measure(model_name: str, steps: int, work: Path) -> list[dict]:
    from data_builders.minigrid import build_minigrid_dataset
    from swirl.models.adapters import lora_config, save_adapter, with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.models.prompts import fwm_prompt
    from swirl.training.config import SwirlConfig
    from swirl.training.phases import phase2_dataset, run_grpo_phase

    tokenizer = load_tokenizer(model_name)
    model = with_adapters(load_base_model(model_name, device="cpu"), {"fwm": lora_config(), "idm": lora_config()})
    adapters = {role: save_adapter(model, role, work / model_name / "start" / role) for role in ("fwm", "idm")}
    rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=6, max_steps=12, policy="expert", epsilon=0.3,
                                  test_episodes=0, seed=0, progress=False)["labelled"]
    pairs = rows.select_columns(["state", "next_state", "action"])
    phase1 = pairs.rename_column("action", "latent_action").map(
        lambda row: {"prompt": fwm_prompt(tokenizer, row["state"], row["latent_action"])})
    phase2 = phase2_dataset(tokenizer, pairs.remove_columns("action"))
    config = SwirlConfig(model=model_name, phase_steps=steps, num_generations=4, prompts_per_step=2, save_steps=1000,
                         max_state_tokens=110, max_action_tokens=6)
    results = []
    for phase, data in ((1, phase1), (2, phase2)):
        TIMERS.clear()
        run_grpo_phase(phase, config, tokenizer, adapters, data, work / model_name / f"phase{phase}")
        step = TIMERS["step"] / steps
        generation, scoring = TIMERS["generation"] / steps, TIMERS["scoring"] / steps
        results.append({"model": model_name, "phase": phase, "completions_per_step": 8, "step_s": step,
                        "generation_s": generation, "scoring_s": scoring, "update_s": step - generation - scoring,
                        "scoring_share": scoring / step})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny-qwen2", "smollm2-135m"], help="models to measure")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per phase")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "grpo_step.json"), help="JSON output")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swirl-grpo-bench-"))
    rows = []
    for name in args.models:
        rows.extend(measure(name, args.steps, work))
    print("| model | phase | step (s) | generation (s) | reward scoring (s) | update (s) | scoring share |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {'I (FWM policy)' if row['phase'] == 1 else 'II (IDM policy)'} | {row['step_s']:.2f} | "
              f"{row['generation_s']:.2f} | {row['scoring_s']:.2f} | {row['update_s']:.2f} | {row['scoring_share']:.0%} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": torch.get_num_threads(), "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
