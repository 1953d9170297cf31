"""Warm-start SFT of the FWM adapter on SmolLM2-135M-Instruct, on CPU: NLL of the true next state before/after.

Data: `MiniGrid-Empty-6x6-v0`, random policy (the labelled split for SFT, the held-out test split for the
NLL). Reports the FWM's teacher-forced mean per-token NLL of the true next state (with `log_likelihood`,
the same function SWIRL's rewards use), exact-match of greedy next-state predictions on a few test rows,
and the wall time.

    python benchmarks/sft_smollm2.py [--max-steps 60] [--episodes 40]

Prints a markdown table and writes benchmarks/results/sft_smollm2.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def fwm_nll(model, tokenizer, rows) -> float:
    from swirl.models.prompts import completion, fwm_prompt
    from swirl.models.scoring import log_likelihood

    prompts = [fwm_prompt(tokenizer, s, a) for s, a in zip(rows["state"], rows["action"])]
    answers = [completion(tokenizer, n) for n in rows["next_state"]]
    return -log_likelihood(model, tokenizer, prompts, answers, adapter="default").mean.mean().item()


def exact_match(model, tokenizer, rows) -> float:
    from swirl.models.prompts import fwm_prompt
    from swirl.sampling import STATE_STOP, HFSampler

    prompts = [fwm_prompt(tokenizer, s, a) for s, a in zip(rows["state"], rows["action"])]
    answers = HFSampler(model, tokenizer).generate(prompts, adapter="default", temperature=0, max_new_tokens=160,
                                                  stop=STATE_STOP)
    return sum(a[0] == n for a, n in zip(answers, rows["next_state"])) / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="base model")
    parser.add_argument("--episodes", type=int, default=40, help="training episodes (half labelled)")
    parser.add_argument("--max-steps", type=int, default=60, help="SFT optimiser steps")
    parser.add_argument("--batch-size", type=int, default=8, help="SFT batch size")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="SFT learning rate")
    parser.add_argument("--eval-rows", type=int, default=64, help="test rows for the NLL")
    parser.add_argument("--match-rows", type=int, default=16, help="test rows for greedy exact match")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sft_smollm2.json"), help="JSON output")
    args = parser.parse_args()

    from swirl.builders.minigrid_dataset import build_minigrid_dataset
    from swirl.data import save_dataset_dict
    from swirl.models.adapters import lora_config, with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.sft import SwirlSFTConfig, run_sft, sft_datasets

    work = Path(tempfile.mkdtemp(prefix="swirl-sft-bench-"))
    data = build_minigrid_dataset(["MiniGrid-Empty-6x6-v0"], episodes=args.episodes, max_steps=20, policy="random",
                                  test_episodes=10, seed=0, progress=False)
    save_dataset_dict(data, work / "data")
    test = data["test"].shuffle(seed=0).select(range(min(args.eval_rows, data["test"].num_rows)))
    tokenizer = load_tokenizer(args.model)
    model = with_adapters(load_base_model(args.model, device="cpu"), {"default": lora_config()})
    config = SwirlSFTConfig(output_dir=str(work / "out"), role="fwm", dataset=str(work / "data"), model=args.model,
                            max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
                            learning_rate=args.learning_rate, logging_steps=10, max_eval_samples=32,
                            disable_tqdm=True, seed=0)
    train, held_out = sft_datasets(config, tokenizer)
    before = {"nll": fwm_nll(model, tokenizer, test), "exact": exact_match(model, tokenizer, test[: args.match_rows])}
    start = time.perf_counter()
    metrics = run_sft(model, tokenizer, train, held_out, config)
    wall = time.perf_counter() - start
    after = {"nll": fwm_nll(model, tokenizer, test), "exact": exact_match(model, tokenizer, test[: args.match_rows])}
    row = {"model": args.model, "train_rows": train.num_rows, "steps": args.max_steps, "batch_size": args.batch_size,
           "nll_before": before["nll"], "nll_after": after["nll"], "exact_before": before["exact"],
           "exact_after": after["exact"], "sft_wall_s": wall, "threads": torch.get_num_threads(),
           "sft_eval_loss_before": metrics["eval_loss_before"], "sft_eval_loss_after": metrics["eval_loss_after"]}
    print("| model | SFT rows / steps | FWM NLL of true s' (test) before -> after | greedy exact match before -> after | SFT wall time |")
    print("|---|---|---|---|---|")
    print(f"| {args.model} | {row['train_rows']} / {args.max_steps} x {args.batch_size} | {before['nll']:.3f} -> "
          f"{after['nll']:.3f} | {before['exact']:.0%} -> {after['exact']:.0%} | {wall:.0f} s |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
