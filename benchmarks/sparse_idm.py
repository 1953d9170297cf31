"""WAV's first asymmetry on our MiniGrid tasks: a sparse inverse model (learned mask, L1 0.1) against the same
model without the mask penalty (dense), over the paper's three factors: labelled sample size, number of
objects (state dimensionality) and noisy floor tiles (state stochasticity).

Each cell trains both models on the same labelled transitions (expert policy with 30% random actions) and
reports IDM accuracy on a balanced held-out test split, the kept-feature count and the training time.

    python benchmarks/sparse_idm.py [--seeds 0 1 2]

Prints a markdown table and writes benchmarks/results/sparse_idm.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from statistics import fmean, pstdev

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.envs.minigrid_env import WAV_ACTION_TEXTS
from swirl.wav.sparse_idm import train_sparse_idm

CELLS = [  # (factor, env id, labelled transitions)
    *[("sample size", "swirl/WAV-KeyDelivery-Noisy-v0", n) for n in (100, 200, 400, 800)],
    *[("objects", f"swirl/WAV-RandomPlay-{k}obj-Noisy-v0", 400) for k in (6, 10, 14)],
    *[("noise", env_id, 400) for env_id in ("swirl/WAV-KeyDelivery-v0", "swirl/WAV-ObjectMatching-v0",
                                              "swirl/WAV-ObjectMatching-Noisy-v0")],
]


def accuracy(model, rows) -> float:
    return sum(p == a for p, a in zip(model.predict(rows["state"], rows["next_state"]), rows["action"])) / rows.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (data seed fixed)")
    parser.add_argument("--out", default="benchmarks/results/sparse_idm.json", help="where to write the JSON")
    parser.add_argument("--motion", action="store_true", help="add the step's motion features (turn, step, front "
                                                              "cell and carried-object changes; the WAV runs' "
                                                              "default since #20). The recorded table is without.")
    args = parser.parse_args()
    data = {}
    results = []
    for factor, env_id, labels in CELLS:
        if env_id not in data:
            data[env_id] = build_minigrid_dataset([env_id], episodes=80, max_steps=30, policy="expert", epsilon=0.3,
                                                  test_episodes=10, seed=7, progress=False)
        cell = {"factor": factor, "env": env_id, "labels": labels}
        for name, l1 in (("sparse", 0.1), ("dense", 0.0)):
            scores, kept, seconds = [], [], []
            for seed in args.seeds:
                train = data[env_id]["labelled"].shuffle(seed=seed).select(range(labels))
                start = time.perf_counter()
                model = train_sparse_idm(train["state"], train["action"], train["next_state"], WAV_ACTION_TEXTS,
                                         l1_weight=l1, motion=args.motion, seed=seed)
                seconds.append(time.perf_counter() - start)
                scores.append(accuracy(model, data[env_id]["test"]))
                kept.append(len(model.kept_features()))
            cell |= {f"{name}_accuracy": fmean(scores), f"{name}_accuracy_std": pstdev(scores),
                     f"{name}_kept": fmean(kept), f"{name}_seconds": fmean(seconds)}
        cell["features"] = len(model.config.features)
        results.append(cell)
        print(f"{factor:12s} {env_id:40s} {labels:4d}: sparse {cell['sparse_accuracy']:.3f} "
              f"({cell['sparse_kept']:.0f} kept) dense {cell['dense_accuracy']:.3f}", flush=True)
    header = ("| factor | env | labels | sparse IDM accuracy | kept features | dense IDM accuracy | features | "
              "train s |\n|---|---|---|---|---|---|---|---|")
    rows = [f"| {c['factor']} | {c['env']} | {c['labels']} | {c['sparse_accuracy']:.1%} ± {c['sparse_accuracy_std']:.1%} | "
            f"{c['sparse_kept']:.1f} | {c['dense_accuracy']:.1%} ± {c['dense_accuracy_std']:.1%} | {c['features']} | "
            f"{c['sparse_seconds']:.1f} |" for c in results]
    print("\n".join([header, *rows]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": platform.processor() or platform.machine(), "seeds": args.seeds,
                                          "cells": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
