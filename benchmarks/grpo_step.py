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


def measure(model_name: str, steps: int, work: Path, state_modality: str = "text") -> list[dict]:
    """Time ``steps`` GRPO steps of each phase; with ``state_modality`` image, the prompts show MiniGrid renders."""
    from swirl.builders.minigrid import build_minigrid_dataset
    from swirl.models.adapters import lora_config, save_adapter, with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.models.prompts import images_for_row, trl_prompt
    from swirl.models.vision import lora_target_modules
    from swirl.training.config import SwirlConfig
    from swirl.training.phases import phase2_dataset, run_grpo_phase

    config = SwirlConfig(model=model_name, phase_steps=steps, num_generations=4, prompts_per_step=2, save_steps=1000,
                         max_state_tokens=110, max_action_tokens=6, state_modality=state_modality)
    view = config.state_view
    tokenizer = load_tokenizer(model_name)
    base = load_base_model(model_name, device="cpu")
    lora = lora_config(target_modules=lora_target_modules(base))
    model = with_adapters(base, {"fwm": lora, "idm": lora})
    run = work / f"{model_name}-{state_modality}"
    adapters = {role: save_adapter(model, role, run / "start" / role) for role in ("fwm", "idm")}
    rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=6, max_steps=12, policy="expert", epsilon=0.3,
                                  test_episodes=0, images=view.has_images, seed=0, progress=False)["labelled"]
    pairs = rows.remove_columns([c for c in rows.column_names if c not in ("state", "next_state", "action", "image",
                                                                           "next_image")])

    def phase1_example(row: dict) -> dict:  # the true action stands in for the IDM's annotation
        example = {"prompt": trl_prompt(tokenizer, "fwm", view, state=row["state"], action=row["latent_action"])}
        return example | ({"images": images_for_row("fwm", row, view)} if view.has_images else {})

    phase1 = pairs.rename_column("action", "latent_action").map(phase1_example)
    phase2 = phase2_dataset(tokenizer, pairs.remove_columns("action"), view)
    results = []
    for phase, data in ((1, phase1), (2, phase2)):
        TIMERS.clear()
        run_grpo_phase(phase, config, tokenizer, adapters, data, run / f"phase{phase}")
        step = TIMERS["step"] / steps
        generation, scoring = TIMERS["generation"] / steps, TIMERS["scoring"] / steps
        results.append({"model": model_name, "state_modality": state_modality, "phase": phase,
                        "completions_per_step": 8, "step_s": step, "generation_s": generation, "scoring_s": scoring,
                        "update_s": step - generation - scoring, "scoring_share": scoring / step})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny-qwen2", "smollm2-135m"], help="models to measure")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per phase")
    parser.add_argument("--state-modality", default="text", choices=("text", "image", "image+text"),
                        help="how prompts show states (image needs a VLM, e.g. --models tiny-qwen2-vl)")
    parser.add_argument("--out", default=None, help="JSON output (default: benchmarks/results/grpo_step.json, "
                        "grpo_step_<modality>.json for image states)")
    args = parser.parse_args()
    suffix = "" if args.state_modality == "text" else "_" + args.state_modality.replace("+", "_")
    args.out = args.out or str(Path(__file__).parent / "results" / f"grpo_step{suffix}.json")
    work = Path(tempfile.mkdtemp(prefix="swirl-grpo-bench-"))
    rows = []
    for name in args.models:
        rows.extend(measure(name, args.steps, work, args.state_modality))
    print("| model | states | phase | step (s) | generation (s) | reward scoring (s) | update (s) | scoring share |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        phase = "I (FWM policy)" if row["phase"] == 1 else "II (IDM policy)"
        print(f"| {row['model']} | {row['state_modality']} | {phase} | {row['step_s']:.2f} | "
              f"{row['generation_s']:.2f} | {row['scoring_s']:.2f} | {row['update_s']:.2f} | {row['scoring_share']:.0%} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": torch.get_num_threads(), "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
