"""Does the warm-started FWM learn the dynamics, or copy its input? One SFT run of the fwm adapter on a dataset's
labelled split, then greedy predictions on test rows scored with the changed-cell accuracy (issue #9's sweep).

    python benchmarks/fwm_warmstart.py --dataset runs/quality/seed_0/data --learning-rate 2e-3 --steps 60

Prints one JSON line (SFT time, test loss before/after, exact match, changed-cell and field accuracy, parse
rate, the copy baseline's exact match) and writes it to ``<out>/result.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset folder from `swirl data minigrid`")
    parser.add_argument("--model", default="smollm2-135m", help="base model (Hub id, folder or built-in name)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="SFT learning rate")
    parser.add_argument("--steps", type=int, default=60, help="SFT steps")
    parser.add_argument("--batch-size", type=int, default=4, help="SFT batch size")
    parser.add_argument("--test-rows", type=int, default=32, help="test rows predicted greedily (seeded sample)")
    parser.add_argument("--max-state-tokens", type=int, default=100, help="max new tokens of a predicted state")
    parser.add_argument("--out", default=None, help="output folder (default: runs/fwm-warmstart/<lr>-<steps>)")
    args = parser.parse_args()

    from swirl.evaluation.world_model import evaluate_world_model
    from swirl.data import load_dataset_dict
    from swirl.models.adapters import with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.sampling import make_sampler
    from swirl.sft import sft_adapter

    out = Path(args.out or f"runs/fwm-warmstart/{args.learning_rate:g}-{args.steps}")
    data = load_dataset_dict(args.dataset)
    test = data["test"].shuffle(seed=0, keep_in_memory=True)
    test = test.select(range(min(args.test_rows, test.num_rows)))
    tokenizer = load_tokenizer(args.model)
    start = time.perf_counter()
    sft = sft_adapter(args.model, tokenizer, "fwm", data["labelled"], test.select(range(min(8, test.num_rows))),
                      out / "fwm", steps=args.steps, learning_rate=args.learning_rate, batch_size=args.batch_size)
    sft_s = time.perf_counter() - start
    model = with_adapters(load_base_model(args.model, device="cpu"), {"fwm": out / "fwm"})
    metrics = evaluate_world_model(model, tokenizer, make_sampler("hf", model, tokenizer), test,
                                   max_state_tokens=args.max_state_tokens, roles=("fwm",))
    result = {"model": args.model, "learning_rate": args.learning_rate, "steps": args.steps, "batch_size": args.batch_size,
              "train_rows": data["labelled"].num_rows, "test_rows": test.num_rows, "sft_s": sft_s,
              "test_loss": [sft["eval_loss_before"], sft["eval_loss_after"]],
              **{key: metrics[f"fwm_{key}"] for key in ("exact_match", "changed_accuracy", "field_accuracy",
                                                        "parse_rate", "copy_exact_match")}}
    print(json.dumps(result))
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
