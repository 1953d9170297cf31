"""Does WAV see the actions its forward model gets wrong? Its first round's picks against the number of subgoals K
(issue #31).

WAV scores only the candidates ``(s, a)`` its cycle reaches: a subgoal ``s~ ~ g(.|s)``, the action ``a = h(s, s~)``
the inverse model reads off it. With the LLM backend the recipe draws K = 4 subgoals a state (the paper draws 32), and
on seed 2 of ``make wav-protocol-llm-rounds64`` its picks held 6 drops in 100 labels while random's held 16: the
score ranks the candidates it sees like the true error, but it does not see the drops. This script loads a run's warm
start (the models WAV's first round scores with), draws ``max(--subgoals)`` subgoals for every pool state once, and
scores WAV with the first K of them for each K, as ``PoolScorer.wav`` does in the recipe. For each K it reports what
the top-``budget`` picks would be: how many candidates the cycle reaches, the picks' true actions, how many change the
state, and their mean true error under the forward model (the oracle's loss, ``score_loss`` of the run), beside the
same for random's picks (the recipe's round-1 seed) and the oracle's own top-``budget``. No label is acquired and no
model trained: it measures the proposals, not a round.

    python benchmarks/wav_proposals.py --run runs/wav-front-rounds64 --seeds 1 2 --subgoals 4 8 16 32

Writes ``<out>/seed_<s>.json`` (resumable: the drawn subgoals are kept, a finished seed is skipped) and ``--results``
(every seed in ``<out>``); prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

def picks_summary(picks: list[int], candidates: list[Any], oracle: list[float], changed: list[bool]) -> dict[str, Any]:
    """What a method's top-``budget`` would label: actions, state changes, mean true error."""
    return {"actions": dict(Counter(candidates[i].action for i in picks)),
            "changes_state": sum(changed[i] for i in picks),
            "mean_oracle_error": sum(oracle[i] for i in picks) / len(picks)}


def seed_record(config: Any, tokenizer: Any, parts: dict[str, Any], warm: Path, seed: int, ks: list[int],
                drawn_path: Path) -> dict[str, Any]:
    """One seed's picks for every K (the subgoals drawn once, kept in ``drawn_path``)."""
    import math  # lazy, like every import here: --help stays instant

    from swirl.paths import write_json_atomic
    from swirl.wav.candidates import Simulator, pool_candidates
    from swirl.wav.round_models import round_models, round_seed
    from swirl.wav.scores import PoolScorer, rank_correlations, top_b

    candidates = pool_candidates(parts["pool"])
    # the recipe's round 1: the warm start's models, its round seed (random's scores, the sampler's draws, ties)
    round1 = round_seed(seed, 1)
    models = round_models(config, tokenizer, warm, warm, warm / "fwm_initial", round1)
    scorer = PoolScorer(candidates, models, score_loss=config.score_loss, subgoals=max(ks), seed=round1,
                        simulate=Simulator())
    start = time.perf_counter()
    if drawn_path.exists():
        drawn = json.loads(drawn_path.read_text())
    else:
        drawn = {"subgoals": max(ks), "proposals": models.propose(scorer.pool_states, max(ks))}
        drawn["seconds"] = time.perf_counter() - start
        write_json_atomic(drawn_path, drawn)
    if drawn["subgoals"] < max(ks):
        raise SystemExit(f"{drawn_path} holds {drawn['subgoals']} subgoals a state; delete it to draw {max(ks)}")
    oracle = scorer.true_losses
    changed = [next_state != c.state for c, next_state in zip(candidates, scorer.true_next_states)]
    budget = min(config.budget, len(candidates))
    record: dict[str, Any] = {
        "seed": seed, "pool_states": len(scorer.pool_states), "pool_candidates": len(candidates), "budget": budget,
        "propose_seconds": drawn["seconds"], "pool_actions": dict(Counter(c.action for c in candidates)),
        "pool_changes_state": sum(changed), "pool_mean_oracle_error": sum(oracle) / len(oracle),
        "random": picks_summary(top_b(scorer.random(), budget, round1), candidates, oracle, changed),
        "oracle": picks_summary(top_b(oracle, budget, round1), candidates, oracle, changed),
        "wav": {},
    }
    for k in ks:
        scores = scorer.wav([proposals[:k] for proposals in drawn["proposals"]])
        picks = top_b(scores, budget, round1)
        reached = [i for i, score in enumerate(scores) if score > -math.inf]
        record["wav"][str(k)] = {
            **picks_summary(picks, candidates, oracle, changed), **scorer.details,
            "unscored_picks": sum(scores[i] == -math.inf for i in picks),
            "reached_actions": dict(Counter(candidates[i].action for i in reached)),
            "reached_changes_state": sum(changed[i] for i in reached),
            "spearman_on_scored": rank_correlations(scores, oracle, scored_only=True)["spearman"]}
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/wav-front-rounds64",
                        help="a recipes/wav_minigrid.py output folder with finished warm starts (its settings are used)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds whose warm starts to load")
    parser.add_argument("--subgoals", type=int, nargs="+", default=[4, 8, 16, 32],
                        help="the K values to score: the largest is drawn once, the others are its first K")
    parser.add_argument("--out", default="runs/wav-proposals", help="resumable output folder (one JSON per seed)")
    parser.add_argument("--results", default="benchmarks/results/wav_proposals.json", help="combined JSON")
    args = parser.parse_args()
    if min(args.subgoals) < 1:
        raise SystemExit(f"--subgoals must be >= 1, got {min(args.subgoals)}")

    from dataclasses import replace

    from fwm_front_cell import ACTIONS, run_config  # this folder's action order and run settings
    from swirl.models.loading import load_tokenizer
    from swirl.paths import json_safe, write_json_atomic
    from swirl.wav.seed_data import load_run_data, split_data

    run, out = Path(args.run), Path(args.out)
    config, _ = run_config(run)
    config = replace(config, output_dir=str(out))
    ks = sorted(set(args.subgoals))
    data = load_run_data(config)
    tokenizer = load_tokenizer(config.model) if config.backend == "llm" else None
    for seed in args.seeds:
        warm = run / f"seed_{seed}" / "warmstart"
        if not (warm / "metrics.json").exists():
            raise SystemExit(f"{run} has no finished warm start for seed {seed}: run the recipe first")
        path = out / f"seed_{seed}.json"
        if path.exists() and sorted(map(int, json.loads(path.read_text())["wav"])) == ks:
            continue
        record = seed_record(config, tokenizer, split_data(config, data, seed), warm, seed, ks,
                             out / f"seed_{seed}_subgoals.json")
        write_json_atomic(path, json_safe(record))
    results = sorted((json.loads(p.read_text()) for p in out.glob("seed_*.json") if "subgoals" not in p.name),
                     key=lambda r: r["seed"])
    write_json_atomic(args.results, results)
    print("| seed | picks | K | reached | unscored picks | changes state | mean true error | "
          + " | ".join(ACTIONS) + " |")
    print("|---" * (7 + len(ACTIONS)) + "|")
    for result in results:
        rows = [("random", "", result["random"]), ("oracle", "", result["oracle"]),
                *(("wav", k, picks) for k, picks in result["wav"].items())]
        for name, k, picks in rows:
            print(f"| {result['seed']} | {name} | {k} | {picks.get('candidates_proposed', '')} | "
                  f"{picks.get('unscored_picks', '')} | {picks['changes_state']}/{result['budget']} | "
                  f"{picks['mean_oracle_error']:.3f} | "
                  + " | ".join(str(picks["actions"].get(a, 0)) for a in ACTIONS) + " |")


if __name__ == "__main__":
    main()
