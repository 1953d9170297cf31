"""Where a training step's time goes with the tiny VLM on CPU, by how states are shown (text, image,
image+text), next to the tiny text model: one SFT step of the warm start, and a GRPO step of each SWIRL
phase split into generation, reward scoring and the update (the timers of `swirl.training.step_timing`, as in
`benchmarks/grpo_step.py`).

    python benchmarks/vlm_step.py [--sft-steps 6] [--grpo-steps 3]

Prints a markdown table and writes benchmarks/results/vlm_step.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from trl import SFTTrainer

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.models.loading import load_tokenizer
from swirl.models.prompts import images_for_row, prompt_for_row
from swirl.models.state_view import state_view
from swirl.models.vision import encode_with_images, text_tokenizer
from swirl.sft import sft_adapter
from swirl.training.step_timing import measure, timing_methods

SETTINGS = [("tiny-qwen2", "text"), ("tiny-qwen2-vl", "text"), ("tiny-qwen2-vl", "image"), ("tiny-qwen2-vl", "image+text")]


def sft_step_and_prompt_tokens(model_name: str, modality: str, steps: int, work: Path) -> dict:
    """Seconds per SFT step of the fwm adapter (batch 8), and the mean fwm prompt length in tokens (images
    expanded)."""
    view = state_view(modality, "minigrid")
    tokenizer = load_tokenizer(model_name)
    data = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=6, max_steps=12, policy="expert",
                                  epsilon=0.3, test_episodes=2, images=view.has_images, seed=0, progress=False)
    rows = list(data["labelled"].select(range(16)))
    if view.has_images:
        lengths = [len(encode_with_images(tokenizer, prompt_for_row(tokenizer, "fwm", row, view),
                                          images_for_row("fwm", row, view))["input_ids"]) for row in rows]
    else:
        lengths = [len(text_tokenizer(tokenizer)(prompt_for_row(tokenizer, "fwm", row))["input_ids"]) for row in rows]
    with timing_methods(SFTTrainer, {"training_step": "sft_step"}) as timers:
        sft_adapter(model_name, tokenizer, "fwm", data["labelled"], data["test"].select(range(4)),
                    work / f"sft-{model_name}-{modality}" / "fwm", steps=steps, batch_size=8, view=view)
    return {"sft_step_s": timers["sft_step"] / steps, "fwm_prompt_tokens": sum(lengths) / len(lengths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft-steps", type=int, default=6, help="SFT steps per setting")
    parser.add_argument("--grpo-steps", type=int, default=3, help="GRPO steps per phase and setting")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "vlm_step.json"), help="JSON output")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swirl-vlm-bench-"))
    results = []
    print("| model | states | fwm prompt tokens | SFT step (s) | phase I step (s): generation / scoring / update | "
          "phase II step (s): generation / scoring / update |")
    print("|---|---|---|---|---|---|")
    for model_name, modality in SETTINGS:
        row = {"model": model_name, "state_modality": modality,
               **sft_step_and_prompt_tokens(model_name, modality, args.sft_steps, work)}
        phases = measure(model_name, args.grpo_steps, work, modality)
        row["grpo"] = phases
        results.append(row)
        split = [f"{p['step_s']:.2f}: {p['generation_s']:.2f} / {p['scoring_s']:.2f} / {p['update_s']:.2f}" for p in phases]
        print(f"| {model_name} | {modality} | {row['fwm_prompt_tokens']:.0f} | {row['sft_step_s']:.3f} | {split[0]} | "
              f"{split[1]} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"threads": torch.get_num_threads(), "sft_steps": args.sft_steps, "grpo_steps": args.grpo_steps,
            "sft_batch": 8, "grpo_completions_per_step": 8}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
