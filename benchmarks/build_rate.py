"""Build rate of `swirl data minigrid` (transitions/s) vs the raw `env.step` rate of the same envs.

Both sides play the same episodes (same seeds, random actions, same episode cap, resets included);
the builder additionally serialises every state to text, records the row and builds the Dataset.
Goal (issue #2): build rate >= 0.5x the raw rate without images.

    python benchmarks/build_rate.py [--episodes 40] [--max-steps 50]

Prints a markdown table and writes benchmarks/results/build_rate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.envs.minigrid_env import make_env

ENVS = [
    "swirl/WAV-KeyDelivery-v0",
    "swirl/WAV-RandomPlay-14obj-Noisy-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "BabyAI-GoToLocal-v0",
    "BabyAI-BossLevel-v0",
]


def raw_step_rate(env_id: str, episodes: int, max_steps: int) -> float:
    env = make_env(env_id)
    steps = 0
    start = time.perf_counter()
    for episode in range(episodes):
        rng = np.random.default_rng([0, 0, episode])
        env.reset(seed=episode)
        for _ in range(max_steps):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            steps += 1
            if terminated or truncated:
                break
    return steps / (time.perf_counter() - start)


def build_rate(env_id: str, episodes: int, max_steps: int, images: bool) -> float:
    start = time.perf_counter()
    dataset = build_minigrid_dataset([env_id], episodes=episodes, max_steps=max_steps, test_episodes=0,
                                     images=images, seed=0, progress=False)
    rows = sum(split.num_rows for split in dataset.values())
    return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40, help="episodes per env and measurement")
    parser.add_argument("--max-steps", type=int, default=50, help="episode cap")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "build_rate.json"), help="JSON output")
    args = parser.parse_args()
    build_rate(ENVS[0], 1, 2, images=True)  # warm-up: imports (datasets, PIL) are a one-off cost
    results = []
    print("| env | raw env.step /s | build /s (text) | ratio | build /s (text + images) | ratio |")
    print("|---|---|---|---|---|---|")
    for env_id in ENVS:
        raw = raw_step_rate(env_id, args.episodes, args.max_steps)
        text = build_rate(env_id, args.episodes, args.max_steps, images=False)
        with_images = build_rate(env_id, max(4, args.episodes // 4), args.max_steps, images=True)
        results.append({"env_id": env_id, "raw_steps_per_s": raw, "build_rows_per_s": text,
                        "ratio": text / raw, "build_rows_per_s_images": with_images, "ratio_images": with_images / raw})
        print(f"| {env_id} | {raw:,.0f} | {text:,.0f} | {text / raw:.2f}x | {with_images:,.0f} | {with_images / raw:.2f}x |",
              flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"episodes": args.episodes, "max_steps": args.max_steps, "machine": platform.machine(),
            "python": platform.python_version()}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
