"""Which state text and completion does a small world model learn from, and what does a step cost? (issue #17)

One dataset (the quality study's environments, one seed), then per arm -- a state text (``grid`` | ``objects``),
a state format (``full`` | ``diff``), LoRA on the top K layers, SFT steps and learning rate -- the warm start of
the fwm and idm adapters and, on identifiable test transitions:

* FWM changed-cell accuracy, exact match, parse rate (always on reconstructed full states);
* IDM accuracy, equivalent accuracy (the predicted action reproduces s'), distinct answers;
* the reward spread SWIRL's GRPO would see: std of the phase I / phase II rewards within a group of G samples;
* seconds per SFT step and tokens per training example.

Baselines in the same table: copying the input (FWM) and the most frequent labelled action (IDM).

    python benchmarks/learnability.py                     # every default arm (resumes: finished arms are kept)
    python benchmarks/learnability.py --arms objects-diff-k8-120 --threads 2

Per-arm JSON under ``--out`` (default runs/learnability); the table and JSON in benchmarks/results/.
Run it alone: two CPU jobs at once each run at half speed or worse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_IDS = ["swirl/WAV-KeyDelivery-6x6-v0", "swirl/WAV-BallDelivery-6x6-v0", "swirl/WAV-ObjectMatching-6x6-v0",
           "MiniGrid-DoorKey-5x5-v0", "swirl/WAV-RandomPlay-4obj-6x6-v0"]  # the quality study's (quality-smollm2.yaml)
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Arm:
    state_text: str
    state_format: str
    lora_layers: int | None  # None: every layer
    steps: int
    learning_rate: float = 2e-3

    @property
    def name(self) -> str:
        layers = "all" if self.lora_layers is None else f"k{self.lora_layers}"
        lr = "" if self.learning_rate == 2e-3 else f"-lr{self.learning_rate:g}"
        return f"{self.state_text}-{self.state_format}-{layers}-{self.steps}{lr}"

    @classmethod
    def parse(cls, name: str) -> Arm:
        """``objects-diff-k8-120`` or ``grid-full-all-60-lr0.0005``."""
        parts = name.split("-")
        if len(parts) not in (4, 5):
            raise SystemExit(f"bad arm name {name!r}: expected TEXT-FORMAT-(all|kN)-STEPS[-lrX]")
        layers = None if parts[2] == "all" else int(parts[2].removeprefix("k"))
        lr = float(parts[4].removeprefix("lr")) if len(parts) == 5 else 2e-3
        return cls(parts[0], parts[1], layers, int(parts[3]), lr)


# The sweep, cheapest questions first: the representation at a short budget, then the step's cost (K), then the
# best combination at a longer budget (a CPU warm start of at most 30 minutes).
DEFAULT_ARMS = ["objects-diff-k8-60", "objects-diff-k8-400", "grid-diff-k8-60", "objects-full-k8-60", "grid-full-k8-60",
                "objects-diff-all-60", "objects-diff-k4-60", "grid-full-all-20", "objects-diff-all-300"]
# grid-full-all is today's step (full states, every layer): 20 steps measure its cost, not what it learns


def build_data(out: Path, seed: int) -> Path:
    """The quality study's environments with more test episodes, the test split identifiable and balanced."""
    from swirl.builders.prepare import build_dataset
    from swirl.config_fields import MiniGridDataFields
    from swirl.data import save_dataset_dict

    path = out / "data"
    if not path.exists():
        fields = MiniGridDataFields(env_ids=ENV_IDS, env_episodes=8, env_max_steps=10, env_policy="expert",
                                    env_epsilon=0.3, env_test_episodes=24)
        fields.env_test_split = "identifiable"
        save_dataset_dict(build_dataset(fields, seed), path)
    return path


def reward_spread(model: Any, tokenizer: Any, sampler: Any, pairs: Any, view: Any, generations: int,
                  seed: int) -> dict[str, float]:
    """Phase I and II rewards of one GRPO step's groups (G samples per prompt, temperature 0.7, top-p 0.96),
    without the update: the mean std within a group, the mean reward, and phase I's parse rate."""
    from swirl.models.prompts import prompt_for_row
    from swirl.training.rewards import FWMStateReward, IDMActionReward

    rows = list(pairs)
    idm_prompts = [prompt_for_row(tokenizer, "idm", row, view) for row in rows]
    latent = [answers[0] for answers in sampler.generate(idm_prompts, adapter="idm", temperature=0, max_new_tokens=6)]
    fwm_prompts = [prompt_for_row(tokenizer, "fwm", {"state": row["state"], "action": z}, view)
                   for row, z in zip(rows, latent)]
    sampled_states = sampler.generate(fwm_prompts, adapter="fwm", n=generations, temperature=0.7, top_p=0.96,
                                      max_new_tokens=64 if view.is_diff else 110)
    logged: dict[str, float] = {}
    phase1 = IDMActionReward(model, tokenizer, adapter="idm", view=view)
    sampled_actions = sampler.generate(idm_prompts, adapter="idm", n=generations, temperature=0.7, top_p=0.96,
                                       max_new_tokens=6)
    phase2 = FWMStateReward(model, tokenizer, adapter="fwm", view=view)
    stds = {1: [], 2: []}
    valid_stds = []  # phase I over the samples above the floor (an invalid diff gets the clip value, -10)
    means = {1: [], 2: []}
    parse = []
    for index, row in enumerate(rows):
        group = sampled_states[index]
        r1 = phase1(fwm_prompts[index:index + 1] * len(group), group, state=[row["state"]] * len(group),
                    latent_action=[latent[index]] * len(group), log_metric=lambda k, v: logged.__setitem__(k, v))
        parse.append(logged["parse_rate"])
        actions = sampled_actions[index]
        r2 = phase2(idm_prompts[index:index + 1] * len(actions), actions, state=[row["state"]] * len(actions),
                    next_state=[row["next_state"]] * len(actions))
        valid = [reward for reward in r1 if reward > phase1.clip]
        if len(valid) >= 2:
            valid_stds.append(statistics.stdev(valid))
        for phase, rewards in ((1, r1), (2, r2)):
            stds[phase].append(statistics.stdev(rewards))  # as TRL's reward_std (torch.std: n - 1)
            means[phase].append(statistics.fmean(rewards))
    return {"phase1_reward_std": statistics.fmean(stds[1]), "phase1_reward": statistics.fmean(means[1]),
            "phase1_parse_rate": statistics.fmean(parse),
            "phase1_valid_reward_std": statistics.fmean(valid_stds) if valid_stds else None, "phase2_reward_std": statistics.fmean(stds[2]),
            "phase2_reward": statistics.fmean(means[2])}


def tokens_per_example(tokenizer: Any, rows: Any, role: str, view: Any) -> float:
    from swirl.models.prompts import completion, prompt_for_row, target_for_row

    lengths = [len(tokenizer(prompt_for_row(tokenizer, role, row, view) + completion(tokenizer, target_for_row(role, row, view)),
                             add_special_tokens=False)["input_ids"]) for row in rows]
    return statistics.fmean(lengths)


def run_arm(arm: Arm, data_path: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from swirl.evaluation.world_model import evaluate_world_model
    from swirl.data import convert_state_texts, load_dataset_dict
    from swirl.models.adapters import with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.models.state_view import state_view
    from swirl.sampling import make_sampler
    from swirl.sft import sft_adapter

    torch.manual_seed(args.seed)
    data = convert_state_texts(load_dataset_dict(data_path), arm.state_text)
    view = state_view("text", "minigrid", arm.state_format)
    tokenizer = load_tokenizer(args.model)
    test = data["test"].shuffle(seed=args.seed, keep_in_memory=True)
    test = test.select(range(min(args.test_rows, test.num_rows)))
    folder = out / "arms" / arm.name
    result: dict[str, Any] = {"arm": arm.name, **arm.__dict__, "train_rows": data["labelled"].num_rows,
                              "test_rows": test.num_rows}
    for role in ("fwm", "idm"):
        sft = sft_adapter(args.model, tokenizer, role, data["labelled"], test.select(range(min(8, test.num_rows))),
                          folder / role, steps=arm.steps, learning_rate=arm.learning_rate, batch_size=args.batch_size,
                          seed=args.seed, view=view, lora_layers=arm.lora_layers)
        result[f"{role}_sft_s"] = sft["train_time_s"]
        result[f"{role}_s_per_step"] = sft["train_time_s"] / arm.steps
        result[f"{role}_eval_loss"] = [sft["eval_loss_before"], sft["eval_loss_after"]]
        sample = data["labelled"].shuffle(seed=args.seed, keep_in_memory=True)  # the split is ordered by env
        result[f"{role}_tokens_per_example"] = tokens_per_example(tokenizer, sample.select(range(min(64, sample.num_rows))),
                                                                  role, view)
    model = with_adapters(load_base_model(args.model, device="cpu"), {"fwm": folder / "fwm", "idm": folder / "idm"})
    sampler = make_sampler("hf", model, tokenizer, seed=args.seed)
    start = time.perf_counter()
    metrics = evaluate_world_model(model, tokenizer, sampler, test, max_state_tokens=110, max_action_tokens=6,
                                   view=view)
    result["eval_s"] = time.perf_counter() - start
    result |= {key: value for key, value in metrics.items() if not isinstance(value, dict)}
    predicted = Counter({column: count for row in metrics["idm_confusion"].values()
                         for column, count in row.items() if count})
    result["idm_distinct_answers"] = len(set(predicted))
    pairs = data["state_only"].shuffle(seed=args.seed, keep_in_memory=True).select(range(args.reward_prompts))
    result |= reward_spread(model, tokenizer, sampler, pairs, view, args.generations, args.seed)
    return result


def constant_answer_accuracy(data_path: Path, test_rows: int, seed: int) -> dict[str, Any]:
    """The IDM baseline: always the labelled split's most frequent action."""
    from swirl.data import load_dataset_dict

    data = load_dataset_dict(data_path)
    test = data["test"].shuffle(seed=seed, keep_in_memory=True)
    test = test.select(range(min(test_rows, test.num_rows)))
    frequent, _ = Counter(data["labelled"]["action"]).most_common(1)[0]
    return {"constant_action": frequent, "constant_accuracy": sum(a == frequent for a in test["action"]) / test.num_rows,
            "test_actions": dict(Counter(test["action"]))}


COLUMNS = [("arm", "arm"), ("fwm_changed_accuracy", "FWM changed"), ("fwm_exact_match", "FWM exact"),
           ("fwm_parse_rate", "FWM parse"), ("idm_accuracy", "IDM acc"), ("idm_equivalent_accuracy", "IDM equiv"),
           ("idm_distinct_answers", "IDM answers"), ("phase1_reward_std", "phase I std"),
           ("phase1_valid_reward_std", "phase I std (valid)"), ("phase1_parse_rate", "phase I parse"), ("phase2_reward_std", "phase II std"), ("fwm_s_per_step", "FWM s/step"), ("idm_s_per_step", "IDM s/step"),
           ("fwm_tokens_per_example", "FWM tokens"), ("idm_tokens_per_example", "IDM tokens")]


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "—" if value is None else str(value)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(result.get(key)) for key, _ in COLUMNS) + " |" for result in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS,
                        help="arms as TEXT-FORMAT-(all|kN)-STEPS[-lrX], e.g. objects-diff-k8-120")
    parser.add_argument("--model", default="smollm2-135m", help="base model (Hub id, folder or built-in name)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of training")
    parser.add_argument("--batch-size", type=int, default=4, help="SFT batch size")
    parser.add_argument("--test-rows", type=int, default=100, help="identifiable test rows evaluated")
    parser.add_argument("--reward-prompts", type=int, default=6, help="state-only pairs for the reward spread")
    parser.add_argument("--generations", type=int, default=8, help="group size G for the reward spread")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", default="runs/learnability", help="data and per-arm results (resumable)")
    parser.add_argument("--results", default=str(RESULTS / "learnability"), help="table and JSON path prefix")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    data_path = build_data(out, args.seed)
    baseline = constant_answer_accuracy(data_path, args.test_rows, args.seed)
    print(json.dumps(baseline))
    results = []
    for name in args.arms:
        arm = Arm.parse(name)
        path = out / "arms" / f"{arm.name}.json"
        if path.exists():
            result = json.loads(path.read_text())
        else:
            start = time.perf_counter()
            result = run_arm(arm, data_path, out, args)
            result["arm_s"] = time.perf_counter() - start
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2) + "\n")
        results.append(result)
        print(table([result]).splitlines()[-1], flush=True)
    from swirl.paths import json_safe, write_text_atomic

    summary = {"baseline": baseline, "arms": results, "command": "python benchmarks/learnability.py " + " ".join(argv or [])}
    write_text_atomic(Path(args.results + ".json"), json.dumps(json_safe(summary), indent=2) + "\n")
    text = (f"IDM constant answer ({baseline['constant_action']!r}): {baseline['constant_accuracy']:.3f}; "
            f"FWM copy baseline: 0.000 changed-cell accuracy\n\n" + table(results))
    write_text_atomic(Path(args.results + ".md"), text + "\n")
    print(text)


if __name__ == "__main__":
    main()
