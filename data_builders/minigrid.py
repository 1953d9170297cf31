"""MiniGrid (and WAV task) episodes -> a Hugging Face ``DatasetDict`` of text (and image) transitions.

Splits are by episode, so no episode appears in two splits:

* ``labelled``: a ``labelled_fraction`` of the training episodes, with ``action`` / ``action_id``;
* ``state_only``: the other training episodes, with ``action`` and ``action_id`` set to None (for SWIRL the
  action is the latent variable);
* ``test``: ``test_episodes`` held-out episodes (their own seeds), balanced over actions as far as the data
  allows (every action keeps as many rows as the rarest action has).

Every row can be re-simulated: ``swirl.envs.minigrid.resimulate(env_id, seed, action_prefix)`` rebuilds
the env in the row's ``state``, and stepping ``action_id`` gives ``next_state``. The build is deterministic
given ``seed``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np

from data_builders.splits import check_build_arguments, collect_splits, record, to_dataset_dict
from data_builders.splits import transition_features as common_features
from swirl.envs.experts import expert_action, has_expert
from swirl.envs.minigrid import MiniGridState, action_to_text, make_env, render_state, state_to_text
from swirl.errors import SwirlError

POLICIES = ("random", "expert")
BALANCE_STREAM = 2**32 - 1  # RNG stream of the test balancing (episode streams use the episode index)


def transition_features(images: bool):
    """The explicit ``datasets.Features`` of a MiniGrid transition dataset."""
    from datasets import List, Value

    return common_features({"action_prefix": List(Value("int8")), "action_id": Value("int8")}, images)


def collect_episode(
    env: Any,
    env_id: str,
    seed: int,
    episode: int,
    *,
    max_steps: int,
    policy: str,
    rng: np.random.Generator,
    epsilon: float = 0.0,
    images: bool = False,
    tile_size: int = 16,
) -> dict[str, list]:
    """Play one episode from ``env.reset(seed=seed)``; return its transitions as columns."""
    columns: dict[str, list] = {}
    env.reset(seed=seed)
    text = state_to_text(env)
    image = render_state(env, tile_size) if images else None
    prefix: list[int] = []
    for step in range(max_steps):
        if policy == "expert" and rng.random() >= epsilon:
            action = expert_action(env, rng)
        else:
            action = int(rng.integers(env.action_space.n))
        _, _, terminated, truncated, _ = env.step(action)
        next_text = state_to_text(env)
        record(columns, state=text, action=action_to_text(action, env), next_state=next_text, env_id=env_id,
               seed=seed, episode=episode, step=step, action_prefix=list(prefix), action_id=action)
        if images:
            next_image = render_state(env, tile_size)
            record(columns, image=image, next_image=next_image)
            image = next_image
        prefix.append(action)
        text = next_text
        if terminated or truncated:
            break
    return columns


def balance_by_action(columns: dict[str, list], rng: np.random.Generator) -> dict[str, list]:
    """Keep, for every action present, as many rows as the rarest action has (a seeded random choice)."""
    by_action: dict[int, list[int]] = defaultdict(list)
    for index, action in enumerate(columns["action_id"]):
        by_action[action].append(index)
    if not by_action:
        return columns
    keep_per_action = min(len(rows) for rows in by_action.values())
    kept = sorted(
        int(index)
        for action in sorted(by_action)
        for index in rng.choice(by_action[action], size=keep_per_action, replace=False)
    )
    return {name: [values[i] for i in kept] for name, values in columns.items()}


def build_minigrid_dataset(
    env_ids: Sequence[str],
    *,
    episodes: int = 100,
    max_steps: int = 50,
    policy: str = "random",
    epsilon: float = 0.0,
    labelled_fraction: float = 0.5,
    test_episodes: int = 20,
    images: bool = False,
    tile_size: int = 16,
    seed: int = 0,
    balance_test: bool = True,
    progress: bool = True,
):
    """Collect ``episodes`` training and ``test_episodes`` test episodes per env id; see the module doc."""
    check_build_arguments(env_ids, policy, POLICIES, labelled_fraction=labelled_fraction, epsilon=epsilon,
                          episodes=episodes, max_steps=max_steps, test_episodes=test_episodes, seed=seed)
    if tile_size < 1:
        raise SwirlError(f"tile_size must be >= 1, got {tile_size}")
    envs = {env_id: make_env(env_id) for env_id in dict.fromkeys(env_ids)}  # unknown ids fail here, before work
    if policy == "expert":
        missing = [env_id for env_id, env in envs.items() if not has_expert(env)]
        if missing:
            raise SwirlError(f"no scripted expert for {', '.join(missing)}; use --policy random for them")

    def collect(env_id: str, env: Any, episode_seed: int, episode: int, rng: np.random.Generator) -> dict[str, list]:
        return collect_episode(env, env_id, episode_seed, episode, max_steps=max_steps, policy=policy, rng=rng,
                               epsilon=epsilon, images=images, tile_size=tile_size)

    def balance(columns: dict[str, list], env_index: int) -> dict[str, list]:
        return balance_by_action(columns, np.random.default_rng([seed, env_index, BALANCE_STREAM]))

    splits = collect_splits(envs, collect, episodes=episodes, test_episodes=test_episodes,
                            labelled_fraction=labelled_fraction, seed=seed, unlabelled_columns=("action", "action_id"),
                            finish_test=balance if balance_test else None, progress=progress)
    for env in envs.values():
        env.close()
    return to_dataset_dict(splits, transition_features(images))


def _changes_objects(state_text: str, next_text: str) -> bool:
    before, after = MiniGridState.from_text(state_text), MiniGridState.from_text(next_text)
    return (before.cells, before.carrying) != (after.cells, after.carrying)


def summary_table(dataset_dict) -> str:
    """A markdown table: per split and env, episodes, transitions, object-changing transitions, text size."""
    header = "| split | env_id | episodes | transitions | object changes | actions seen | mean state chars |"
    lines = [header, "|" + "---|" * 7]
    for split, dataset in dataset_dict.items():
        columns = dataset.select_columns(["env_id", "episode", "state", "next_state", "action_id"]).to_dict()
        per_env: dict[str, list[int]] = defaultdict(list)
        for index, env_id in enumerate(columns["env_id"]):
            per_env[env_id].append(index)
        for env_id, rows in sorted(per_env.items()):
            changes = sum(_changes_objects(columns["state"][i], columns["next_state"][i]) for i in rows)
            actions = Counter(columns["action_id"][i] for i in rows if columns["action_id"][i] is not None)
            mean_chars = sum(len(columns["state"][i]) for i in rows) / len(rows)
            lines.append(
                f"| {split} | {env_id} | {len({columns['episode'][i] for i in rows})} | {len(rows)} | "
                f"{changes / len(rows):.0%} | {len(actions) or '-'} | {mean_chars:.0f} |"
            )
        if not per_env:
            lines.append(f"| {split} | - | 0 | 0 | - | - | - |")
    return "\n".join(lines)
