"""What every data builder shares: episodes -> the ``labelled`` / ``state_only`` / ``test`` splits.

Splits are by episode, so no episode appears in two splits. Per env, a seeded permutation picks the
``labelled_fraction`` of the training episodes that keep their actions; the others lose them (SWIRL treats
the action as latent); ``test_episodes`` more episodes, with seeds of their own, form the test split.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from swirl.errors import SwirlError
from swirl.progress import bar as progress_bar

SEEDS_PER_BUILD = 1_000_000  # episode seeds of a build are seed * SEEDS_PER_BUILD + episode index
SPLIT_NAMES = ("labelled", "state_only", "test")

Columns = dict[str, list]
CollectEpisode = Callable[[str, Any, int, int, np.random.Generator], Columns]


def check_build_arguments(env_ids: Any, policy: str, policies: tuple[str, ...], *, labelled_fraction: float,
                          epsilon: float, episodes: int, max_steps: int, test_episodes: int, seed: int) -> None:
    """One-line errors for the arguments every builder takes, before any env is made."""
    if not env_ids:
        raise SwirlError("no environment given: pass at least one --env")
    if policy not in policies:
        raise SwirlError(f"unknown policy {policy!r}; choose one of {', '.join(policies)}")
    if not 0.0 <= labelled_fraction <= 1.0:
        raise SwirlError(f"labelled_fraction must be in [0, 1], got {labelled_fraction}")
    if not 0.0 <= epsilon <= 1.0:
        raise SwirlError(f"epsilon must be in [0, 1], got {epsilon}")
    if episodes < 1 or max_steps < 1 or test_episodes < 0 or seed < 0:
        raise SwirlError("episodes and max_steps must be >= 1; test_episodes and seed >= 0")


def transition_features(resimulation: dict[str, Any], images: bool = False):
    """Every dataset's ``datasets.Features``: the transition (texts, where it comes from), then the domain's
    re-simulation columns (``resimulation``, from its builder: MiniGrid the action prefix and action id, ManiSkill
    the action vectors so far and the simulator state), then ``image`` / ``next_image`` with ``images``."""
    from datasets import Features, Image, Value  # lazy: datasets is heavy; the builders' checks run without it

    features = {"state": Value("string"), "action": Value("string"), "next_state": Value("string"),
                "env_id": Value("string"), "seed": Value("int64"), "episode": Value("int32"), "step": Value("int32"),
                **resimulation}
    if images:
        features |= {"image": Image(), "next_image": Image()}
    return Features(features)


def record(columns: Columns, **values: Any) -> None:
    """Append one row's values to the columns."""
    for name, value in values.items():
        columns.setdefault(name, []).append(value)


def extend(target: Columns, source: Columns) -> None:
    for name, values in source.items():
        target.setdefault(name, []).extend(values)


def collect_splits(envs: Mapping[str, Any], collect: CollectEpisode, *, episodes: int, test_episodes: int,
                   labelled_fraction: float, seed: int, unlabelled_columns: tuple[str, ...],
                   finish_test: Callable[[Columns, int], Columns] | None = None, progress: bool = True,
                   ) -> dict[str, Columns]:
    """Play ``episodes + test_episodes`` episodes per env with ``collect(env_id, env, episode_seed, episode, rng)``
    and deal them into the three splits. ``unlabelled_columns`` are set to None in ``state_only``;
    ``finish_test(columns, env_index)`` may post-process one env's test episodes (e.g. balance actions)."""
    splits: dict[str, Columns] = {split: {} for split in SPLIT_NAMES}
    bar = progress_bar(desc="episodes", total=len(envs) * (episodes + test_episodes), unit="ep",
                       leave=True, disable=not progress)
    for env_index, (env_id, env) in enumerate(envs.items()):
        split_rng = np.random.default_rng([seed, env_index])
        labelled = set(split_rng.permutation(episodes)[: round(labelled_fraction * episodes)].tolist())
        test_columns: Columns = {}
        for episode in range(episodes + test_episodes):
            columns = collect(env_id, env, seed * SEEDS_PER_BUILD + episode, episode,
                              np.random.default_rng([seed, env_index, episode]))
            if episode >= episodes:
                extend(test_columns, columns)
            elif episode in labelled:
                extend(splits["labelled"], columns)
            else:
                for name in unlabelled_columns:
                    columns[name] = [None] * len(columns[name])
                extend(splits["state_only"], columns)
            bar.update(1)
        if finish_test is not None and test_columns:
            test_columns = finish_test(test_columns, env_index)
        extend(splits["test"], test_columns)
    bar.close()
    return splits


def to_dataset_dict(splits: Mapping[str, Columns], features: Any):
    """The splits as a ``DatasetDict`` with explicit ``features`` (empty splits keep the schema)."""
    from datasets import Dataset, DatasetDict  # lazy: datasets is heavy; the builders' checks run without it

    return DatasetDict({split: Dataset.from_dict({name: columns.get(name, []) for name in features}, features=features)
                        for split, columns in splits.items()})


BALANCE_STREAM = 2**32 - 1  # RNG stream of the test balancing (episode streams use the episode index)


def balanced_indices(labels: Sequence[Any], rng: np.random.Generator, per_label: int | None = None) -> list[int]:
    """The indices to keep, in order: for every label present, ``per_label`` rows at most (None: as many as the
    rarest label has), a seeded random choice."""
    by_label: dict[Any, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    if not by_label:
        return []
    keep = min(len(rows) for rows in by_label.values()) if per_label is None else per_label
    return sorted(int(index) for label in sorted(by_label)
                  for index in rng.choice(by_label[label], size=min(keep, len(by_label[label])), replace=False))


def balance_by_action(columns: dict[str, list], rng: np.random.Generator) -> dict[str, list]:
    """Keep, for every action present, as many rows as the rarest action has (a seeded random choice)."""
    if not columns["action_id"]:
        return columns
    kept = balanced_indices(columns["action_id"], rng)
    return {name: [values[i] for i in kept] for name, values in columns.items()}
