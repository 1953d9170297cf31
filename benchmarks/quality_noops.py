"""What the study's test cannot see: each arm's world model on held-out transitions where the action does nothing.

The quality study tests on identifiable transitions only (one action explains s', and s' != s), so it cannot tell
whether a forward model predicts effects that do not happen: "toggle" facing an empty cell, "pick up" with nothing
in front. WAV's pool is every action at each pool state, and it picks many such no-ops (31-61 of ~100 on seeds 0-2
of the study; on seed 0 its forward model's prediction was wrong on 54 of its 61). So ``wav_swirl`` spends labels
on a skill the study's table does not measure; this script measures it, for every arm.

For every test state of a seed (held-out episodes), each action is executed in the real env (WAV's
:class:`~swirl.wav.candidates.Simulator`); the no-op ones (s' = s) are kept, at most ``rows_per_action`` per action.
Each finished arm's final stage is evaluated on them with ``swirl eval``'s code. The right answer is "nothing
changes", so the headline is the FWM's exact match on these rows.

    python benchmarks/quality_noops.py --study runs/quality-scarce --seeds 0 1 2

Writes ``<study>/seed_<k>/noop_test/`` (the rows), ``<final stage>/noop_eval/eval.json`` per arm (a finished one is
read, not redone), and ``<study>/noops.json`` and ``noops.md``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_minigrid as study  # noqa: E402  (the study's config and its finished arms)


def noop_transitions(test: Any, rows_per_action: int, seed: int) -> list[dict[str, Any]]:
    """Every action at every distinct test state, executed; the no-ops, at most ``rows_per_action`` per action (a
    seeded choice), in a seeded order."""
    import numpy as np

    from swirl.envs.identifiability import is_noop
    from swirl.wav.candidates import Simulator, distinct_states, pool_candidates

    simulate = Simulator()
    by_action: dict[str, list[dict[str, Any]]] = {}
    for candidate in pool_candidates(test.select(distinct_states(test))):
        transition = simulate(candidate)
        if is_noop(transition["state"], transition["next_state"]):
            by_action.setdefault(transition["action"], []).append(transition)
    rng = np.random.default_rng([seed, rows_per_action])
    kept = [rows[i] for _, rows in sorted(by_action.items())
            for i in sorted(rng.permutation(len(rows))[:rows_per_action])]
    return [kept[i] for i in rng.permutation(len(kept))]


def noop_test_set(seed_dir: Path, rows_per_action: int, seed: int) -> Path:
    """``<seed_dir>/noop_test/``: the seed's dataset with the no-op rows of its test states as the ``test`` split (an
    ordinary swirl dataset, so ``swirl eval`` reads it too); built once."""
    from datasets import Dataset, DatasetDict

    from swirl.builders.splits import transition_features
    from swirl.data import load_dataset_dict, save_dataset_dict

    out = seed_dir / "noop_test"
    if not (out / "dataset_dict.json").exists():
        data = load_dataset_dict(seed_dir / "data")
        rows = noop_transitions(data["test"], rows_per_action, seed)
        features = transition_features("minigrid")
        test = Dataset.from_list([{name: row[name] for name in features} for row in rows], features=features)
        save_dataset_dict(DatasetDict({**data, "test": test}), out, overwrite=True)
    return out


def final_stage(seed_dir: Path, arm: str, stage: str) -> Path:
    """The folder of an arm's final stage: ``sft`` is the SWIRL run's warm start, ``sft_more`` and ``pseudo`` are
    their own folders, the other arms are stages of their run folder."""
    if stage == arm:
        return seed_dir / arm
    return seed_dir / {"sft": "swirl"}.get(arm, arm) / stage


def evaluate_arms(config: study.QualityConfig, seed: int, rows_per_action: int) -> dict[str, dict[str, Any]]:
    """The no-op evaluation of every arm ``seed`` has finished (resumable)."""
    from swirl.evaluation.world_model import evaluate_saved_stage
    from swirl.progress import bar

    seed_dir = Path(config.output_dir) / f"seed_{seed}"
    dataset = noop_test_set(seed_dir, rows_per_action, seed)
    results = {}
    for arm, lines in bar(study.finished_lines(config, seed).items(), desc=f"seed {seed} arms", unit="arm"):
        stage = final_stage(seed_dir, arm, lines[-1]["stage"])
        out = stage / "noop_eval"
        if not (out / "eval.json").exists():
            evaluate_saved_stage(stage, dataset, out, model=config.model, rows=10**6, sampler=config.sampler,
                                 max_state_tokens=config.max_state_tokens, max_action_tokens=config.max_action_tokens,
                                 state_format=config.state_format, state_text=config.state_text,
                                 rollout_horizon=0, afs_states=0)
        result = json.loads((out / "eval.json").read_text())
        results[arm] = {"stage": str(stage.relative_to(seed_dir)), "rows": result["rows"],
                        "fwm_exact_match": result["fwm_exact_match"], "fwm_parse_rate": result["fwm_parse_rate"],
                        "per_action": {action: metrics["fwm_exact_match"]
                                       for action, metrics in result.get("fwm_per_action", {}).items()}}
    return results


def summary(per_seed: dict[int, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per arm: the no-op exact match over seeds (mean, std, each seed's) and its paired difference with ``sft``."""
    table = []
    for arm in study.ARMS:
        seeds = [seed for seed, arms in per_seed.items() if arm in arms]
        if not seeds:
            continue
        values = [per_seed[seed][arm]["fwm_exact_match"] for seed in seeds]
        mean, std = study.mean_std(values)
        paired = [per_seed[seed][arm]["fwm_exact_match"] - per_seed[seed]["sft"]["fwm_exact_match"]
                  for seed in seeds if "sft" in per_seed[seed]]
        table.append({"arm": arm, "seeds": seeds, "rows": [per_seed[seed][arm]["rows"] for seed in seeds],
                      "noop_exact_match": mean, "std": std, "per_seed": values,
                      "vs_sft": statistics.fmean(paired) if paired and arm != "sft" else None})
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| arm | seeds | no-op rows | FWM exact match on no-op rows | per seed | vs `sft` |", "|---|---|---|---|---|---|"]
    for row in table:
        difference = "" if row["vs_sft"] is None else f"{100 * row['vs_sft']:+.1f} pts"
        lines.append(f"| `{row['arm']}` | {', '.join(map(str, row['seeds']))} | {', '.join(map(str, row['rows']))} | "
                     f"{study.percent(row['noop_exact_match'])} ± {study.percent(row['std'])} | "
                     f"{' / '.join(study.percent(value) for value in row['per_seed'])} | {difference} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="quality_noops.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, help="a quality study's output_dir (with quality_config.json).")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds whose finished arms to test.")
    parser.add_argument("--rows_per_action", type=int, default=15,
                        help="no-op test rows kept per action (fewer where a seed's test states offer fewer).")
    arguments = parser.parse_args(argv)
    from swirl.paths import json_safe, write_text_atomic

    settings = Path(arguments.study) / study.STUDY_CONFIG
    if not settings.exists():
        from swirl.errors import SwirlError

        raise SwirlError(f"{settings} not found: --study must be a quality study's output_dir")
    config = study.QualityConfig(**json.loads(settings.read_text()) | {"output_dir": arguments.study})
    per_seed = {seed: evaluate_arms(config, seed, arguments.rows_per_action) for seed in arguments.seeds}
    table = summary(per_seed)
    result = {"rows_per_action": arguments.rows_per_action, "table": table, "per_seed": per_seed}
    write_text_atomic(Path(arguments.study) / "noops.json", json.dumps(json_safe(result), indent=2) + "\n")
    write_text_atomic(Path(arguments.study) / "noops.md", markdown(table))
    print(markdown(table))
    return result


if __name__ == "__main__":
    from swirl.errors import run_or_exit

    sys.exit(run_or_exit(main))
