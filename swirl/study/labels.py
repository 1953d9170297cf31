"""How right inferred actions are: the truth of a seed's state-only pairs (read from ``data_all``, where they keep
their actions), the accuracy of a set of inferred labels, and what phase I's latent actions were in each run."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

from swirl.data import convert_state_texts, load_dataset_dict
from swirl.envs.identifiability import equivalent_actions_for_rows
from swirl.envs.minigrid_env import action_texts
from swirl.study.study_config import QualityConfig
from swirl.study.statistics import mean_std

SWIRL_RUNS = ("swirl", "swirl_anchored", "wav_swirl")  # the runs with GRPO phases


@functools.lru_cache(maxsize=None)  # the report reads it for every seed, run and iteration, after every seed
def true_actions(data_all: str, state_text: str) -> tuple[dict, dict]:
    """Per (s, s') of a seed's training transitions: the actions recorded for it, and every action that reproduces
    s' from s (re-simulated)."""
    truth = convert_state_texts(load_dataset_dict(data_all), state_text)["labelled"]
    recorded: dict[tuple[str, str], set[str]] = {}
    equivalent: dict[tuple[str, str], set[str]] = {}
    for env_id, state, action, next_state, action_ids in zip(truth["env_id"], truth["state"], truth["action"],
                                                             truth["next_state"], equivalent_actions_for_rows(truth)):
        recorded.setdefault((state, next_state), set()).add(action)
        equivalent.setdefault((state, next_state), set()).update(action_texts(env_id)[i] for i in action_ids)
    return recorded, equivalent


def label_accuracy(labels: list[tuple[str, str, str]], data_all: Path, state_text: str) -> dict[str, float | None]:
    """How often inferred actions ``(s, s', a)`` of state-only pairs are right, read from ``data_all`` (which holds
    the state-only episodes with their actions): ``accuracy`` (a is the recorded action) and
    ``equivalent_accuracy`` (a reproduces s' from s)."""
    if not labels:
        return {"accuracy": None, "equivalent_accuracy": None}
    recorded, equivalent = true_actions(str(data_all), state_text)
    return {"accuracy": sum(a in recorded.get((s, n), ()) for s, n, a in labels) / len(labels),
            "equivalent_accuracy": sum(a in equivalent.get((s, n), ()) for s, n, a in labels) / len(labels)}


def latent_action_stats(config: QualityConfig) -> list[dict[str, Any]]:
    """What phase I's latent actions are, per run and iteration (mean over seeds): how many pairs were kept, how
    many distinct actions the IDM used, the most frequent one's share, and how often they are right."""
    rows = []
    for run in SWIRL_RUNS:
        for iteration in range(1, config.iterations + 1):
            found = []
            for seed in config.seeds:
                path = config.seed_dir(seed) / run / f"iter_{iteration}" / "phase1" / "latent_actions.jsonl"
                if not path.exists():
                    continue
                labels = [tuple(json.loads(line)[key] for key in ("state", "next_state", "latent_action"))
                          for line in path.read_text().splitlines()]
                counts = Counter(label[2] for label in labels)
                found.append({"kept": len(labels), "distinct": len(counts),
                              "top_share": counts.most_common(1)[0][1] / len(labels) if labels else None,
                              **label_accuracy(labels, config.seed_dir(seed) / "data_all", config.state_text)})
            if found:
                rows.append({"run": run, "stage": f"iter_{iteration}/phase1", "seeds": len(found),
                             **{key: mean_std([stats[key] for stats in found])[0] for key in found[0]}})
    return rows
