"""Each seed's data: the regime's share of the training episodes labelled (``data``), the same episodes all labelled
(``data_all``, the truth the oracle arms and label accuracies read), and one test split for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.builders.splits import balanced_indices
from swirl.data import load_dataset_dict, save_dataset_dict
from swirl.study.study_config import REGIMES, QualityConfig


def seed_datasets(config: QualityConfig, seed: int) -> tuple[Path, Path]:
    """``data`` (the regime's share of training episodes labelled) and ``data_all`` (the same episodes, every one
    labelled; ``state_only`` and ``test`` as in ``data``) of one seed."""
    data, data_all = config.seed_dir(seed) / "data", config.seed_dir(seed) / "data_all"

    def build(fraction: float):
        return build_minigrid_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                      policy=config.env_policy, epsilon=config.env_epsilon, labelled_fraction=fraction,
                                      test_episodes=config.env_test_episodes, test_split=config.env_test_split,
                                      balance_test=False, state_text=config.state_text, seed=seed, progress=False)

    if not data.exists():
        built = build(REGIMES[config.regime])
        built["test"] = cap_per_action(built["test"], config.test_rows_per_action, seed)
        save_dataset_dict(built, data)
    if not data_all.exists():
        part = load_dataset_dict(data)
        everything = build(1.0)
        if cap_per_action(everything["test"], config.test_rows_per_action, seed)["state"] != part["test"]["state"]:
            raise RuntimeError("the two builds of one seed differ: the data builder is not deterministic")
        save_dataset_dict(DatasetDict({"labelled": everything["labelled"], "state_only": part["state_only"],
                                       "test": part["test"]}), data_all)
    return data, data_all


def cap_per_action(test: Any, per_action: int, seed: int) -> Any:
    """At most ``per_action`` rows of each true action (a seeded choice), in the split's order. The builder balances
    each env on its own down to its rarest action; pooled over the envs, with a cap, far more rows survive."""
    return test.select(balanced_indices(test["action"], np.random.default_rng([seed, per_action]), per_action))
