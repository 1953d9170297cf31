"""What the identifiable test cannot see: each arm's world model on held-out transitions where the action does
nothing.

The study tests on identifiable transitions only (one action explains s', and s' != s), so it cannot tell whether a
forward model predicts effects that do not happen: "toggle" facing an empty cell, "pick up" with nothing in front.
Phase I's paper objective rewards exactly that (a sample that shows z's signature effect), so every arm's final FWM
is also tested here. For every test state of a seed (held-out episodes), each action is executed in the real env
(WAV's :class:`~swirl.wav.candidates.Simulator`); the no-op ones (s' = s) are kept, at most
``noop_rows_per_action`` per action. The right answer is "nothing changes": the headline is the FWM's exact match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from swirl.builders.minigrid_dataset import minigrid_features
from swirl.data import load_dataset_dict, save_dataset_dict
from swirl.envs.identifiability import is_noop
from swirl.evaluation.world_model import evaluate_saved_stage
from swirl.study.study_config import QualityConfig
from swirl.wav.candidates import Simulator, distinct_states, pool_candidates


def noop_transitions(test: Any, rows_per_action: int, seed: int) -> list[dict[str, Any]]:
    """Every action at every distinct test state, executed; the no-ops, at most ``rows_per_action`` per action (a
    seeded choice), in a seeded order."""
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
    out = seed_dir / "noop_test"
    if not (out / "dataset_dict.json").exists():
        data = load_dataset_dict(seed_dir / "data")
        rows = noop_transitions(data["test"], rows_per_action, seed)
        features = minigrid_features()
        test = Dataset.from_list([{name: row[name] for name in features} for row in rows], features=features)
        save_dataset_dict(DatasetDict({**data, "test": test}), out, overwrite=True)
    return out


def noop_result(config: QualityConfig, seed: int, stage: Path, run_if_missing: bool = True) -> dict[str, Any] | None:
    """The FWM of ``stage`` (an arm's final stage) on the seed's no-op rows: exact match, parse rate and exact match
    per action, from ``<stage>/noop_eval/eval.json`` (evaluated first when missing and ``run_if_missing``)."""
    out = stage / "noop_eval"
    if not (out / "eval.json").exists():
        if not run_if_missing:
            return None
        dataset = noop_test_set(config.seed_dir(seed), config.noop_rows_per_action, seed)
        evaluate_saved_stage(stage, dataset, out, model=config.model, rows=10**6, sampler=config.sampler,
                             max_state_tokens=config.max_state_tokens, max_action_tokens=config.max_action_tokens,
                             state_format=config.state_format, state_text=config.state_text,
                             rollout_horizon=0, afs_states=0)
    result = json.loads((out / "eval.json").read_text())
    return {"rows": result["rows"], "fwm_exact_match": result["fwm_exact_match"],
            "fwm_parse_rate": result["fwm_parse_rate"],
            "per_action": {action: metrics["fwm_exact_match"]
                           for action, metrics in result.get("fwm_per_action", {}).items()}}
