"""MiniGrid (and WAV task) episodes -> a Hugging Face ``DatasetDict`` of text (and image) transitions.

Splits are by episode, so no episode appears in two splits:

* ``labelled``: a ``labelled_fraction`` of the training episodes, with ``action`` / ``action_id``;
* ``state_only``: the other training episodes, with ``action`` and ``action_id`` set to None (for SWIRL the
  action is the latent variable);
* ``test``: ``test_episodes`` held-out episodes (their own seeds), balanced over actions as far as the data
  allows (every action keeps as many rows as the rarest action has). With ``test_split="identifiable"`` only
  the transitions that exactly one action explains and that change the state are kept before balancing, as in
  the WAV paper's test set (:mod:`swirl.envs.identifiability`): an IDM cannot be right by more than chance
  on the others (``pick up`` with nothing in front gives the same s' as ``toggle`` of nothing).

Every row can be re-simulated: ``swirl.envs.minigrid.resimulate(env_id, seed, action_prefix)`` rebuilds
the env in the row's ``state``, and stepping ``action_id`` gives ``next_state``. The build is deterministic
given ``seed``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np
from datasets import List, Value

from swirl.builders.splits import (BALANCE_STREAM, balance_by_action, check_build_arguments, collect_splits, record,
                                   to_dataset_dict, transition_features)
from swirl.envs.experts import expert_action, has_expert
from swirl.envs.identifiability import equivalent_actions_for_rows, is_identifiable, is_noop
from swirl.envs.minigrid import STATE_TEXTS, action_to_text, make_env, render_state, state_to_text, text_to_state
from swirl.errors import SwirlError

POLICIES = ("random", "expert")
TEST_SPLITS = ("all", "identifiable")  # which test transitions to keep (before balancing)
IDENTIFIABLE_SAMPLE = 300  # summary_table: rows per split and env re-simulated for the identifiable share
RESIMULATION_FEATURES = {"action_prefix": List(Value("int8")), "action_id": Value("int8")}


def minigrid_features(images: bool = False) -> Any:
    """The ``datasets.Features`` of a MiniGrid dataset (with ``image`` / ``next_image`` when ``images``)."""
    return transition_features(RESIMULATION_FEATURES, images)


def build_from_config(config: Any, seed: int, images: bool = False) -> Any:
    """The DatasetDict a run config's ``env_*`` fields describe (``swirl.config_fields.MiniGridDataFields``)."""
    return build_minigrid_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                  policy=config.env_policy, epsilon=config.env_epsilon,
                                  test_episodes=config.env_test_episodes, test_split=config.env_test_split,
                                  images=images, tile_size=config.env_tile_size, state_text=config.state_text,
                                  seed=seed, progress=True)


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
    state_text: str = "grid",
) -> dict[str, list]:
    """Play one episode from ``env.reset(seed=seed)``; return its transitions as columns (states in ``state_text``)."""
    columns: dict[str, list] = {}
    env.reset(seed=seed)
    text = state_to_text(env, state_text)
    image = render_state(env, tile_size) if images else None
    prefix: list[int] = []
    for step in range(max_steps):
        if policy == "expert" and rng.random() >= epsilon:
            action = expert_action(env, rng)
        else:
            action = int(rng.integers(env.action_space.n))
        _, _, terminated, truncated, _ = env.step(action)
        next_text = state_to_text(env, state_text)
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


def keep_identifiable(columns: dict[str, list], envs: dict[str, Any] | None = None) -> dict[str, list]:
    """Only the rows that exactly one action explains and whose step changed the state (``envs``: envs by id
    to re-simulate with, reused)."""
    equivalent = equivalent_actions_for_rows(columns, envs)
    kept = [index for index, (actions, state, next_state) in
            enumerate(zip(equivalent, columns["state"], columns["next_state"]))
            if is_identifiable(actions) and not is_noop(state, next_state)]
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
    test_split: str = "all",
    state_text: str = "grid",
    progress: bool = True,
):
    """Collect ``episodes`` training and ``test_episodes`` test episodes per env id; see the module doc.

    ``test_split``: ``all`` test transitions, or only the ``identifiable`` ones (one action explains s', and
    s' != s), either then balanced over actions with ``balance_test``. ``state_text``: ``grid`` or ``objects``
    (both lossless; :func:`swirl.data.convert_state_texts` converts a built dataset)."""
    check_build_arguments(env_ids, policy, POLICIES, labelled_fraction=labelled_fraction, epsilon=epsilon,
                          episodes=episodes, max_steps=max_steps, test_episodes=test_episodes, seed=seed)
    if test_split not in TEST_SPLITS:
        raise SwirlError(f"unknown test split {test_split!r}; choose one of {', '.join(TEST_SPLITS)}")
    if tile_size < 1:
        raise SwirlError(f"tile_size must be >= 1, got {tile_size}")
    if state_text not in STATE_TEXTS:
        raise SwirlError(f"unknown state text {state_text!r}; choose one of {', '.join(STATE_TEXTS)}")
    envs = {env_id: make_env(env_id) for env_id in dict.fromkeys(env_ids)}  # unknown ids fail here, before work
    if policy == "expert":
        missing = [env_id for env_id, env in envs.items() if not has_expert(env)]
        if missing:
            raise SwirlError(f"no scripted expert for {', '.join(missing)}; use --policy random for them")

    def collect(env_id: str, env: Any, episode_seed: int, episode: int, rng: np.random.Generator) -> dict[str, list]:
        return collect_episode(env, env_id, episode_seed, episode, max_steps=max_steps, policy=policy, rng=rng,
                               epsilon=epsilon, images=images, tile_size=tile_size, state_text=state_text)

    def finish_test(columns: dict[str, list], env_index: int) -> dict[str, list]:
        if test_split == "identifiable":
            columns = keep_identifiable(columns, envs)
        if balance_test:
            columns = balance_by_action(columns, np.random.default_rng([seed, env_index, BALANCE_STREAM]))
        return columns

    splits = collect_splits(envs, collect, episodes=episodes, test_episodes=test_episodes,
                            labelled_fraction=labelled_fraction, seed=seed, unlabelled_columns=("action", "action_id"),
                            finish_test=finish_test if balance_test or test_split != "all" else None, progress=progress)
    for env in envs.values():
        env.close()
    return to_dataset_dict(splits, minigrid_features(images))


def _changes_objects(state_text: str, next_text: str) -> bool:
    before, after = text_to_state(state_text), text_to_state(next_text)
    return (before.cells, before.carrying) != (after.cells, after.carrying)


def _identifiable_share(columns: dict[str, list], rows: list[int], envs: dict[str, Any]) -> str:
    """The share of identifiable rows, on at most ``IDENTIFIABLE_SAMPLE`` evenly spaced rows (``~`` marks a
    sample), so that the table costs well under a second per split."""
    sample = rows[:: -(-len(rows) // IDENTIFIABLE_SAMPLE)]
    equivalent = equivalent_actions_for_rows({name: [columns[name][i] for i in sample] for name in
                                              ("env_id", "seed", "action_prefix", "next_state")}, envs)
    share = sum(map(is_identifiable, equivalent)) / len(sample)
    return ("~" if len(sample) < len(rows) else "") + f"{share:.0%}"


def summary_table(dataset_dict) -> str:
    """A markdown table: per split and env, episodes, transitions, object-changing transitions, text size, and
    the share of identifiable transitions (exactly one action explains them; :mod:`swirl.envs.identifiability`)."""
    header = ("| split | env_id | episodes | transitions | object changes | actions seen | mean state chars "
              "| identifiable |")
    lines = [header, "|" + "---|" * 8]
    envs: dict[str, Any] = {}
    for split, dataset in dataset_dict.items():
        columns = dataset.select_columns(["env_id", "episode", "state", "next_state", "action_id", "seed",
                                          "action_prefix"]).to_dict()
        per_env: dict[str, list[int]] = defaultdict(list)
        for index, env_id in enumerate(columns["env_id"]):
            per_env[env_id].append(index)
        for env_id, rows in sorted(per_env.items()):
            changes = sum(_changes_objects(columns["state"][i], columns["next_state"][i]) for i in rows)
            actions = Counter(columns["action_id"][i] for i in rows if columns["action_id"][i] is not None)
            mean_chars = sum(len(columns["state"][i]) for i in rows) / len(rows)
            lines.append(
                f"| {split} | {env_id} | {len({columns['episode'][i] for i in rows})} | {len(rows)} | "
                f"{changes / len(rows):.0%} | {len(actions) or '-'} | {mean_chars:.0f} | "
                f"{_identifiable_share(columns, rows, envs)} |"
            )
        if not per_env:
            lines.append(f"| {split} | - | 0 | 0 | - | - | - | - |")
    for env in envs.values():
        env.close()
    return "\n".join(lines)
