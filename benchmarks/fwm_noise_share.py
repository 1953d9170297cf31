"""Does the noisy room's share of the completion tokens hold the LLM forward model back on WAV's MiniGrid protocol
(issue #31)? The ``RandomPlay-14obj-Noisy`` room gives 39 of the 200 seed labels but ~75% of the completion tokens
(its diffs list random tile colours). Three arms train the warm-start ``fwm`` adapter exactly as
``recipes/minigrid/wav-protocol-llm.yaml`` does (seed 0's 200 seed labels, SmolLM2-135M, LoRA r16 on the top 8
layers, lr 2e-3, batch 8) and score it greedily on the protocol's 200 test rows, overall and per room, with
``max_state_tokens`` 96 rather than the preset's 48 (which cuts most of the noisy room's diffs):

* ``token``: TRL's loss, the mean over the batch's completion tokens (what swirl trains with);
* ``transition``: each row's mean completion-token loss, then the mean over rows (every transition counts once);
* ``no-noisy``: TRL's loss with the noisy room's seed labels left out of training (still scored on every row).

    python benchmarks/fwm_noise_share.py --steps 150   # ~50 min alone on 2 cores; resumable, one JSON per arm

Writes ``<out>/<arm>.json`` and ``benchmarks/results/fwm_noise_share.json``; prints a table. The dataset is the
protocol's (``runs/wav-protocol-data``, built on first use as the recipe does).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ARMS = ("token", "transition", "no-noisy")
PRESET = "recipes/minigrid/wav-protocol-llm.yaml"


def transition_mean_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
    """Mean over rows of each row's mean next-token NLL on its completion (labels -100 elsewhere)."""
    logits = outputs.logits[:, :-1].float()
    target = labels[:, 1:]
    mask = (target != -100).float()
    nll = F.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
    return ((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def run_arm(arm: str, config: Any, parts: dict[str, Any], tokenizer: Any, steps: int, out: Path) -> dict[str, Any]:
    from trl import SFTTrainer

    from swirl import sft
    from swirl.evaluation.world_model import evaluate_world_model
    from swirl.models.adapters import with_adapters
    from swirl.models.loading import load_base_model
    from swirl.sampling import make_sampler

    class TransitionMeanTrainer(SFTTrainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, compute_loss_func=transition_mean_loss, **kwargs)

    rows = parts["seed_labels"]
    if arm == "no-noisy":
        rows = rows.filter(lambda row: "Noisy" not in row["env_id"])
    # the one seam: swirl.sft builds its trainer from this module global; the benchmark swaps it for one arm
    sft.SFTTrainer = TransitionMeanTrainer if arm == "transition" else SFTTrainer
    try:
        start = time.perf_counter()
        trained = sft.sft_adapter(config.model, tokenizer, "fwm", rows, parts["test"].select(range(16)),
                                  out / arm / "fwm", lora=(config.lora_r, config.lora_alpha, config.lora_dropout),
                                  steps=steps, learning_rate=config.sft_learning_rate,
                                  batch_size=config.sft_batch_size, seed=0, view=config.state_view,
                                  lora_layers=config.lora_layers)
        sft_s = time.perf_counter() - start
    finally:
        sft.SFTTrainer = SFTTrainer
    model = with_adapters(load_base_model(config.model, device="cpu"), {"fwm": out / arm / "fwm"})
    start = time.perf_counter()
    metrics = evaluate_world_model(model, tokenizer, make_sampler("hf", model, tokenizer), parts["test"],
                                   max_state_tokens=96, view=config.state_view, roles=("fwm",))
    keys = ("fwm_changed_accuracy", "fwm_exact_match", "fwm_parse_rate")
    return {"arm": arm, "steps": steps, "train_rows": rows.num_rows, "test_rows": parts["test"].num_rows,
            "sft_s": sft_s, "eval_s": time.perf_counter() - start,
            "eval_loss": [trained["eval_loss_before"], trained["eval_loss_after"]],
            **{key: metrics[key] for key in keys},
            "per_env": {env: {key: values[key] for key in keys} for env, values in metrics["per_env"].items()}}


def room_name(env_id: str) -> str:
    return env_id.split("/")[-1].removeprefix("WAV-").removesuffix("-v0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="SFT steps per arm (batch 8: 150 = 6 epochs of 200)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS, help="arms to run, in this order")
    parser.add_argument("--out", default="runs/fwm-noise-share", help="resumable output folder (one JSON per arm)")
    parser.add_argument("--results", default="benchmarks/results/fwm_noise_share.json", help="combined JSON")
    args = parser.parse_args()

    from swirl.config_fields import parse_config
    from swirl.models.loading import load_tokenizer
    from swirl.wav.seed_data import load_run_data, split_data
    from swirl.wav.wav_config import WAVConfig

    config = parse_config(WAVConfig, ["--config", PRESET], description="")
    data = load_run_data(config)
    parts = split_data(config, data, 0)
    tokenizer = load_tokenizer(config.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for arm in args.arms:
        path = out / f"{arm}.json"
        if not path.exists():
            path.write_text(json.dumps(run_arm(arm, config, parts, tokenizer, args.steps, out), indent=2) + "\n")
        results.append(json.loads(path.read_text()))
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    rooms = sorted({env for result in results for env in result["per_env"]})
    print("| arm | train rows | SFT s | changed cells | exact | " + " | ".join(room_name(r) for r in rooms) + " |")
    print("|---" * (5 + len(rooms)) + "|")
    for result in results:
        per_room = [f"{result['per_env'][r]['fwm_changed_accuracy']:.1%}" if r in result["per_env"] else "-"
                    for r in rooms]
        print(f"| {result['arm']} | {result['train_rows']} | {result['sft_s']:.0f} | "
              f"{result['fwm_changed_accuracy']:.1%} | {result['fwm_exact_match']:.1%} | " + " | ".join(per_room) + " |")


if __name__ == "__main__":
    main()
