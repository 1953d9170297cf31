"""The reward scorer: batched vs one-example-at-a-time throughput, and memory of base + adapters.

For SWIRL's two rewards on MiniGrid KeyDelivery data:
* phase I (IDM scores an action given (s, sampled s')): long prompts, ~3-token completions;
* phase II (FWM scores the real s' given (s, sampled action)): long completions (a whole state).

Three ways to score 32 pairs: `log_likelihood` on all 32 (batched), `log_likelihood` called 32 times
(per example), and a naive per-example forward with full-vocabulary logits. Memory: the peak RSS that
loading the base and scoring 32 pairs adds to a process, with and without the fwm + idm adapters attached.

    python benchmarks/scorer.py [--models tiny-qwen2 smollm2-135m] [--repeats 3]

Prints markdown tables and writes benchmarks/results/scorer.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

BATCH = 32


def reward_pairs(tokenizer, kind: str) -> tuple[list[str], list[str]]:

    from swirl.builders.minigrid_dataset import build_minigrid_dataset
    from swirl.models.prompts import completion, fwm_prompt, idm_prompt

    rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=4, max_steps=20, policy="expert",
                                  epsilon=0.3, test_episodes=0, seed=0, progress=False)["labelled"][:BATCH]
    if kind == "phase1_idm_reward":
        prompts = [idm_prompt(tokenizer, s, n) for s, n in zip(rows["state"], rows["next_state"])]
        answers = [completion(tokenizer, a) for a in rows["action"]]
    else:
        prompts = [fwm_prompt(tokenizer, s, a) for s, a in zip(rows["state"], rows["action"])]
        answers = [completion(tokenizer, n) for n in rows["next_state"]]
    return prompts, answers


def naive(model, tokenizer, prompt: str, answer: str) -> float:
    with torch.no_grad():
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + tokenizer(answer, add_special_tokens=False)["input_ids"]])
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0, len(prompt_ids) - 1 : -1]
        return logp.gather(-1, ids[0, len(prompt_ids):, None]).sum().item()


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(model_name: str, repeats: int) -> list[dict]:
    from swirl.models.adapters import lora_config, with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.models.scoring import log_likelihood

    tokenizer = load_tokenizer(model_name)
    model = with_adapters(load_base_model(model_name, device="cpu"), {"fwm": lora_config(), "idm": lora_config()})
    model.eval()
    rows = []
    for kind in ("phase1_idm_reward", "phase2_fwm_reward"):
        prompts, answers = reward_pairs(tokenizer, kind)
        adapter = "idm" if kind.startswith("phase1") else "fwm"
        log_likelihood(model, tokenizer, prompts[:2], answers[:2], adapter=adapter)  # warm-up
        batched = best_time(lambda: log_likelihood(model, tokenizer, prompts, answers, adapter=adapter), repeats)
        one_by_one = best_time(lambda: [log_likelihood(model, tokenizer, [p], [a], adapter=adapter)
                                        for p, a in zip(prompts, answers)], repeats)
        model.set_adapter(adapter)
        full_logits = best_time(lambda: [naive(model, tokenizer, p, a) for p, a in zip(prompts, answers)], 1)
        prompt_tokens = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) / BATCH
        answer_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) / BATCH
        rows.append({"model": model_name, "reward": kind, "prompt_tokens": prompt_tokens, "completion_tokens": answer_tokens,
                     "batched_pairs_per_s": BATCH / batched, "per_example_pairs_per_s": BATCH / one_by_one,
                     "naive_full_logits_pairs_per_s": BATCH / full_logits,
                     "speedup_vs_per_example": one_by_one / batched, "speedup_vs_naive": full_logits / batched})
    return rows


def _proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_child(model_name: str, with_adapters_attached: bool) -> None:
    """Run in a subprocess: the peak RSS (MiB) added by loading the model, attaching adapters and scoring.

    Imports and data come first; then the kernel's high-water mark is reset (``/proc/self/clear_refs``)
    so the figure is the model's, not the libraries' (torch's own libraries dominate a plain peak RSS).
    """
    from swirl.models.adapters import lora_config, with_adapters
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.models.scoring import log_likelihood

    tokenizer = load_tokenizer(model_name)
    prompts, answers = reward_pairs(tokenizer, "phase2_fwm_reward")
    Path("/proc/self/clear_refs").write_text("5")
    before = _proc_status_mib("VmRSS")
    model = load_base_model(model_name, device="cpu")
    adapter = None
    if with_adapters_attached:
        model = with_adapters(model, {"fwm": lora_config(), "idm": lora_config()})
        adapter = "fwm"
    log_likelihood(model, tokenizer, prompts, answers, adapter=adapter)
    print(_proc_status_mib("VmHWM") - before)


def peak_rss(model_name: str, with_adapters_attached: bool) -> float:
    code = f"from benchmarks.scorer import peak_rss_child; peak_rss_child({model_name!r}, {with_adapters_attached})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny-qwen2", "smollm2-135m"], help="models to measure")
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput measurements")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scorer.json"), help="JSON output")
    args = parser.parse_args()
    results = {"meta": {"batch": BATCH, "threads": torch.get_num_threads(), "machine": platform.machine()},
               "throughput": [], "memory": []}
    print("| model | reward | prompt / completion tokens | batched pairs/s | per-example pairs/s | speed-up | naive full-logits pairs/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [] if args.memory_only else args.models:
        for row in throughput(name, args.repeats):
            results["throughput"].append(row)
            print(f"| {name} | {row['reward']} | {row['prompt_tokens']:.0f} / {row['completion_tokens']:.0f} | "
                  f"{row['batched_pairs_per_s']:.1f} | {row['per_example_pairs_per_s']:.1f} | "
                  f"{row['speedup_vs_per_example']:.1f}x | {row['naive_full_logits_pairs_per_s']:.1f} | "
                  f"{row['speedup_vs_naive']:.1f}x |", flush=True)
    print("\n| model | peak memory, base (MiB) | peak memory, base + fwm + idm (MiB) | ratio |")
    print("|---|---|---|---|")
    for name in args.models:
        alone, both = peak_rss(name, False), peak_rss(name, True)
        results["memory"].append({"model": name, "base_mib": alone, "base_fwm_idm_mib": both, "ratio": both / alone})
        print(f"| {name} | {alone:.0f} | {both:.0f} | {both / alone:.3f} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
