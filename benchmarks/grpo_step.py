"""Where a SWIRL GRPO step spends its time, and how many state-only pairs a CPU-minute trains: generation, reward
scoring and the update (reference/old log-probs, loss, backward, optimizer), for phase I and phase II, at several
numbers of prompts per step.

The phase is `swirl.training.phases.run_grpo_phase`, as the loop runs it; the two GRPOTrainer methods that generate
and score are wrapped with timers for this script only. With ``--warm <stage dir>`` (a run's ``warmstart/``, holding
``fwm/`` and ``idm/``) and ``--dataset <dir>`` the adapters and pairs are real ones (generations stop where the
warm-started model stops, as in the study); without them, fresh adapters on a small MiniGrid dataset (generations
run to ``max_state_tokens``). Goal (#29): >= 3x more pairs per CPU-minute than 1 prompt of 8 samples per step.

    python benchmarks/grpo_step.py --models smollm2-135m --warm runs/quality-scarce/seed_0/swirl/warmstart \\
        --dataset runs/quality-scarce/seed_0/data --prompts-per-step 1 4 --steps 4

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

from swirl.builders.minigrid import build_minigrid_dataset
from swirl.data import convert_state_texts, load_dataset_dict
from swirl.models.adapters import lora_config, save_adapter, with_adapters
from swirl.models.loading import load_base_model, load_tokenizer
from swirl.models.prompts import images_for_row, trl_prompt
from swirl.models.vision import lora_target_modules
from swirl.training.config import SwirlConfig
from swirl.training.phases import phase2_dataset, run_grpo_phase

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


def adapters_and_pairs(model_name: str, config: SwirlConfig, work: Path, warm: Path | None,
                       dataset: Path | None, pairs_needed: int) -> tuple[dict[str, Path], object]:
    """The fwm/idm adapters (``warm``'s, or fresh ones) and the (state, next_state, action) rows to train on (with
    their images when the states are shown as images)."""
    if warm is not None:
        adapters = {role: warm / role for role in ("fwm", "idm")}
    else:
        base = load_base_model(model_name, device="cpu")
        lora = lora_config(target_modules=lora_target_modules(base))
        model = with_adapters(base, {"fwm": lora, "idm": lora})
        adapters = {role: save_adapter(model, role, work / "start" / role) for role in ("fwm", "idm")}
    if dataset is not None:
        rows = convert_state_texts(load_dataset_dict(dataset), config.state_text)["test"]  # labelled: true actions
    else:
        rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=12, max_steps=12, policy="expert",
                                      epsilon=0.3, test_episodes=0, labelled_fraction=1.0, state_text=config.state_text,
                                      images=config.state_view.has_images, seed=0, progress=False)["labelled"]
    rows = rows.shuffle(seed=0).select(range(min(pairs_needed, rows.num_rows)))
    images = ["image", "next_image"] if config.state_view.has_images else []
    return adapters, rows.select_columns(["state", "next_state", "action", *images])


def measure(model_name: str, steps: int, work: Path, state_modality: str = "text", prompts_per_step: int = 2,
            generations: int = 4, warm: Path | None = None, dataset: Path | None = None,
            shared_prompt: bool = True) -> list[dict]:
    """Time ``steps`` GRPO steps of each phase at ``prompts_per_step`` prompts x ``generations`` samples (states
    shown as ``state_modality``: image needs a VLM, as benchmarks/vlm_step.py passes)."""
    text_only = state_modality == "text"
    config = SwirlConfig(model=model_name, phase_steps=steps, num_generations=generations,
                         prompts_per_step=prompts_per_step, save_steps=1000, max_state_tokens=48 if text_only else 110,
                         max_action_tokens=6, state_text="objects" if text_only else "grid",
                         state_format="diff" if text_only else "full", learning_rate=2e-4,
                         state_modality=state_modality, shared_prompt=shared_prompt)
    view = config.state_view
    tokenizer = load_tokenizer(model_name)
    adapters, pairs = adapters_and_pairs(model_name, config, work, warm, dataset, steps * prompts_per_step)

    def phase1_example(row: dict) -> dict:  # the true action stands in for the IDM's annotation
        example = {"prompt": trl_prompt(tokenizer, "fwm", view, state=row["state"], action=row["latent_action"])}
        return example | ({"images": images_for_row("fwm", row, view)} if view.has_images else {})

    phase1 = pairs.rename_column("action", "latent_action").map(phase1_example)
    phase2 = phase2_dataset(tokenizer, pairs.remove_columns("action"), view)
    results = []
    for phase, data in ((1, phase1), (2, phase2)):
        TIMERS.clear()
        summary = run_grpo_phase(phase, config, tokenizer, adapters, data,
                                 work / f"{model_name}-p{prompts_per_step}-{shared_prompt}" / f"phase{phase}")
        step = TIMERS["step"] / steps
        generation, scoring = TIMERS["generation"] / steps, TIMERS["scoring"] / steps
        pairs_trained = summary["distinct_pairs_trained"]
        results.append({"model": model_name, "state_modality": state_modality, "warm_start": warm is not None,
                        "phase": phase,
                        "prompts_per_step": prompts_per_step, "generations": generations,
                        "shared_prompt": shared_prompt,
                        "completions_per_step": prompts_per_step * generations, "step_s": step,
                        "generation_s": generation, "scoring_s": scoring, "update_s": step - generation - scoring,
                        "scoring_share": scoring / step, "pairs_trained": pairs_trained,
                        "seconds_per_pair": TIMERS["step"] / max(1, pairs_trained),
                        "pairs_per_minute": 60 * pairs_trained / TIMERS["step"],
                        "scored_share": summary["scored_share"]})
    return results


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
