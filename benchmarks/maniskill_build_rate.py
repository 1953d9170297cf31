"""Build rate of `swirl data maniskill` (transitions/s) vs the raw `env.step` rate of the same tasks.

Both sides make the env, then play the same number of episodes with random actions, the same episode cap,
resets included; the builder additionally serialises every state and action to text, records the
simulator state (JSON) for re-simulation, and builds the Dataset. Three observation modes: state only,
state + the task camera's RGB (`--images sensor`, 128x128), state + `env.render()` (`--images render`, 512x512).
The first render of a process compiles lavapipe's shaders (~13 s on a CPU); both sides pay it once.

    scripts/with_vulkan.sh .venv/bin/python benchmarks/maniskill_build_rate.py [--episodes 8] [--max-steps 50]

Prints a markdown table and writes benchmarks/results/maniskill_build_rate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from swirl.builders.maniskill_dataset import build_maniskill_dataset
from swirl.envs import maniskill as ms

TASKS = ["PickCube-v1", "PushCube-v1"]
MODES = {"state": "none", "state + sensor rgb": "sensor", "state + render rgb": "render"}


def raw_step_rate(env_id: str, images: str, episodes: int, max_steps: int) -> float:
    start = time.perf_counter()
    env = ms.make_env(env_id, images=images)
    steps = 0
    for episode in range(episodes):
        rng = np.random.default_rng([0, 0, episode])
        ms.reset(env, episode)
        for _ in range(max_steps):
            _, ended = ms.step(env, rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            if images == "render":
                env.render()
            steps += 1
            if ended:
                break
    env.close()
    return steps / (time.perf_counter() - start)


def build_rate(env_id: str, images: str, episodes: int, max_steps: int, policy: str = "random") -> float:
    start = time.perf_counter()
    dataset = build_maniskill_dataset([env_id], episodes=episodes, max_steps=max_steps, test_episodes=0,
                                      policy=policy, images=images, seed=0, progress=False)
    rows = sum(split.num_rows for split in dataset.values())
    return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=8, help="episodes per task, mode and measurement")
    parser.add_argument("--max-steps", type=int, default=50, help="episode cap")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "maniskill_build_rate.json"),
                        help="JSON output")
    args = parser.parse_args()
    build_rate(TASKS[0], "none", 1, 2)  # warm-up: imports (mani_skill, datasets) are a one-off cost
    results = []
    print("| task | mode | raw env.step /s | build /s (random) | ratio | build /s (expert) |")
    print("|---|---|---|---|---|---|")
    for env_id in TASKS:
        for mode, images in MODES.items():
            raw = raw_step_rate(env_id, images, args.episodes, args.max_steps)
            built = build_rate(env_id, images, args.episodes, args.max_steps)
            expert = build_rate(env_id, images, args.episodes, args.max_steps, policy="expert")
            results.append({"env_id": env_id, "mode": mode, "raw_steps_per_s": raw, "build_rows_per_s": built,
                            "ratio": built / raw, "build_rows_per_s_expert": expert})
            print(f"| {env_id} | {mode} | {raw:,.1f} | {built:,.1f} | {built / raw:.2f}x | {expert:,.1f} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"episodes": args.episodes, "max_steps": args.max_steps, "machine": platform.machine(),
            "python": platform.python_version(), "device": "cpu (lavapipe)" if not __import__("torch").cuda.is_available()
            else "gpu"}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
