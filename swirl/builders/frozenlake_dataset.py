"""FrozenLake episodes -> a Hugging Face ``DatasetDict`` of text transitions, and the run-config fields that describe
one (:class:`FrozenLakeDataFields`, mixed into ``swirl.training.swirl_config.SwirlFrozenLakeConfig``).

The splits are every builder's (:mod:`swirl.builders.splits`), by episode: ``labelled`` (with ``action`` /
``action_id``), ``state_only`` (both None) and ``test`` (held-out seeds, balanced over actions as MiniGrid's).
Columns: ``state``, ``action``, ``next_state`` (texts of :mod:`swirl.envs.frozenlake`), ``env_id``, ``seed``,
``episode``, ``step``, ``action_prefix`` and ``action_id`` (``swirl.envs.frozenlake.resimulate(env_id, seed,
action_prefix)`` then stepping ``action_id`` gives ``next_state``), and ``lake_cell``, the map letter the step
ended on (``H`` fell in a hole, ``G`` reached the goal): the family's marker column. Episodes end in a hole, on
the goal or after ``max_steps``. The build is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from swirl.builders.splits import (BALANCE_STREAM, balance_by_action, check_build_arguments, collect_splits, record,
                                   to_dataset_dict, transition_features)
from swirl.config_fields import reject_invalid
from swirl.envs.frozenlake import (ACTION_TEXTS, MARKER_COLUMN, FrozenLakeState, action_to_text, expert_action,
                                   make_env, state_to_text)
from swirl.errors import SwirlError

POLICIES = ("random", "expert")  # expert: a shortest path to the goal, with epsilon random actions


def frozenlake_features() -> Any:
    """The ``datasets.Features`` of a FrozenLake dataset: every builder's, then ``action_prefix``, ``action_id``
    and the marker column."""
    from datasets import List, Value  # lazy, as in swirl.builders.splits: the run configs import this module

    return transition_features({"action_prefix": List(Value("int8")), "action_id": Value("int8"),
                                MARKER_COLUMN: Value("string")})


@dataclass
class FrozenLakeDataFields:
    """The dataset folder, or how to build it from FrozenLake (``swirl.builders.prepare.build_dataset``)."""

    domain: ClassVar[str] = "frozenlake"

    dataset: str | None = field(default=None, metadata={"help": "dataset folder (a saved DatasetDict of "
                                                                  "swirl.builders.frozenlake_dataset); built from the env_* "
                                                                  "fields below when missing."})
    env_ids: list[str] = field(default_factory=lambda: ["FrozenLake-v1"],
                               metadata={"help": "FrozenLake ids to build the dataset from (FrozenLake-v1, "
                                                 "FrozenLake8x8-v1), never slippery."})
    env_episodes: int = field(default=40, metadata={"help": "training episodes per env (half labelled, half "
                                                             "state-only)."})
    env_max_steps: int = field(default=20, metadata={"help": "steps per episode at most (a hole or the goal ends "
                                                              "it sooner)."})
    env_policy: str = field(default="expert", metadata={"help": "random, or expert (a shortest path to the goal) "
                                                                 "with env_epsilon random actions."})
    env_epsilon: float = field(default=0.3, metadata={"help": "random-action share of the expert policy."})
    env_test_episodes: int = field(default=10, metadata={"help": "held-out test episodes per env."})

    def check_data_fields(self) -> None:
        """A known policy, and text states (FrozenLake has no renderer for state images)."""
        reject_invalid(self, [
            (self.env_policy in POLICIES, "env_policy", f"must be one of {', '.join(POLICIES)}"),
            (getattr(self, "state_modality", "text") == "text", "state_modality",
             "must be text: FrozenLake states have no images"),
        ])


def build_from_config(config: Any, seed: int, images: bool = False) -> Any:
    """The DatasetDict a run config's ``env_*`` fields describe (:class:`FrozenLakeDataFields`)."""
    if images:
        raise SwirlError("FrozenLake states have no images; use state_modality: text")
    return build_frozenlake_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                    policy=config.env_policy, epsilon=config.env_epsilon,
                                    test_episodes=config.env_test_episodes, seed=seed, progress=True)


def collect_episode(env: Any, env_id: str, seed: int, episode: int, *, max_steps: int, policy: str,
                    rng: np.random.Generator, epsilon: float = 0.0) -> dict[str, list]:
    """Play one episode from ``env.reset(seed=seed)``; return its transitions as columns."""
    columns: dict[str, list] = {}
    env.reset(seed=seed)
    state = FrozenLakeState.from_env(env)
    prefix: list[int] = []
    for step in range(max_steps):
        if policy == "expert" and rng.random() >= epsilon:
            action = expert_action(state, rng)
        else:
            action = int(rng.integers(len(ACTION_TEXTS)))
        _, _, terminated, truncated, _ = env.step(action)
        next_state = FrozenLakeState.from_env(env)
        record(columns, state=state_to_text(state), action=action_to_text(action),
               next_state=state_to_text(next_state), env_id=env_id, seed=seed, episode=episode, step=step,
               action_prefix=list(prefix), action_id=action, **{MARKER_COLUMN: next_state.cell})
        prefix.append(action)
        state = next_state
        if terminated or truncated:
            break
    return columns


def build_frozenlake_dataset(
    env_ids: Sequence[str],
    *,
    episodes: int = 40,
    max_steps: int = 20,
    policy: str = "expert",
    epsilon: float = 0.3,
    labelled_fraction: float = 0.5,
    test_episodes: int = 10,
    seed: int = 0,
    balance_test: bool = True,
    progress: bool = True,
):
    """Collect ``episodes`` training and ``test_episodes`` test episodes per env id; see the module doc."""
    check_build_arguments(env_ids, policy, POLICIES, labelled_fraction=labelled_fraction, epsilon=epsilon,
                          episodes=episodes, max_steps=max_steps, test_episodes=test_episodes, seed=seed)
    envs = {env_id: make_env(env_id) for env_id in dict.fromkeys(env_ids)}  # unknown ids fail here, before work

    def collect(env_id: str, env: Any, episode_seed: int, episode: int, rng: np.random.Generator) -> dict[str, list]:
        return collect_episode(env, env_id, episode_seed, episode, max_steps=max_steps, policy=policy, rng=rng,
                               epsilon=epsilon)

    def finish_test(columns: dict[str, list], env_index: int) -> dict[str, list]:
        return balance_by_action(columns, np.random.default_rng([seed, env_index, BALANCE_STREAM]))

    try:
        splits = collect_splits(envs, collect, episodes=episodes, test_episodes=test_episodes,
                                labelled_fraction=labelled_fraction, seed=seed,
                                unlabelled_columns=("action", "action_id"),
                                finish_test=finish_test if balance_test else None, progress=progress)
    finally:
        for env in envs.values():
            env.close()
    return to_dataset_dict(splits, frozenlake_features())
