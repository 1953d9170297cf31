"""ManiSkill3 episodes -> a Hugging Face ``DatasetDict`` of text (and image) transitions.

The splits are MiniGrid's (:mod:`swirl.builders.splits`): ``labelled`` (with ``action``), ``state_only``
(``action`` None) and ``test``, by episode. Columns: ``state``, ``action``, ``next_state`` (texts of
:mod:`swirl.envs.maniskill`), ``env_id``, ``seed``, ``episode``, ``step``, ``action_prefix`` (the float32
actions before this step), ``env_state`` (the simulator's full state before the step, JSON) and, with
images, ``image`` / ``next_image``.

A row re-simulates two ways: ``resimulate(env, seed, action_prefix)`` (exact on the CPU physics), or
``restore_env_state(env, env_state)`` after one reset (no replay; equal to the state text up to float32
rounding). Stepping the row's action then gives ``next_state``. The build is deterministic given ``seed``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
from datasets import List, Value

from swirl.builders.splits import (check_build_arguments, collect_splits, record, to_dataset_dict,
                                   transition_features)
from swirl.envs import maniskill as ms
from swirl.envs.maniskill_experts import CONTROL_MODE as EXPERT_CONTROL_MODE
from swirl.envs.maniskill_experts import expert_action, has_expert
from swirl.errors import SwirlError

POLICIES = ("random", "expert")
RESIMULATION_FEATURES = {"action_prefix": List(List(Value("float32"))), "env_state": Value("string")}


def build_from_config(config: Any, seed: int, images: bool = False) -> Any:
    """The DatasetDict a run config's ``env_*`` fields describe (``swirl.config_fields.ManiSkillDataFields``);
    ``images`` stores the task camera's frames."""
    return build_maniskill_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                   policy=config.env_policy, epsilon=config.env_epsilon,
                                   test_episodes=config.env_test_episodes, fields=config.env_fields,
                                   images="sensor" if images else "none", precision=config.env_precision,
                                   action_precision=config.env_action_precision,
                                   control_mode=config.env_control_mode, seed=seed, progress=True)


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
    images: str = "none",
    fields: Sequence[str] | None = None,
    precision: int = ms.DEFAULT_PRECISION,
    action_precision: int = ms.DEFAULT_ACTION_PRECISION,
) -> dict[str, list]:
    """Play one episode from ``reset(seed)``; return its transitions as columns. The policy sees every state
    field; the texts hold ``fields`` (all by default)."""
    space = env.action_space
    columns: dict[str, list] = {}
    obs = ms.reset(env, seed)

    def picture(obs: Any) -> Any:
        return ms.sensor_image(obs) if images == "sensor" else ms.render_image(env)

    def observe(obs: Any) -> tuple[dict[str, np.ndarray], str]:  # every field (for the policy), and the text
        every = ms.observation_fields(obs)
        return every, ms.state_to_text({name: every[name] for name in fields} if fields else every, precision)

    observed, text = observe(obs)
    image = picture(obs) if images != "none" else None
    prefix: list[list[float]] = []
    for step in range(max_steps):
        if policy == "expert" and rng.random() >= epsilon:
            proposal = expert_action(env_id, observed)
        else:
            proposal = rng.uniform(space.low, space.high)
        action, action_text = ms.quantise_action(proposal, space, action_precision)
        env_state = ms.env_state_json(env)
        obs, ended = ms.step(env, action)
        observed, next_text = observe(obs)
        record(columns, state=text, action=action_text, next_state=next_text, env_id=env_id, seed=seed,
               episode=episode, step=step, action_prefix=[list(map(float, a)) for a in prefix], env_state=env_state)
        if images != "none":
            next_image = picture(obs)
            record(columns, image=image, next_image=next_image)
            image = next_image
        prefix.append(action.tolist())
        text = next_text
        if ended:
            break
    return columns


def build_maniskill_dataset(
    env_ids: Sequence[str],
    *,
    episodes: int = 20,
    max_steps: int = 50,
    policy: str = "expert",
    epsilon: float = 0.2,
    labelled_fraction: float = 0.5,
    test_episodes: int = 4,
    images: str = "none",
    fields: Sequence[str] | None = None,
    precision: int = ms.DEFAULT_PRECISION,
    action_precision: int = ms.DEFAULT_ACTION_PRECISION,
    control_mode: str = ms.DEFAULT_CONTROL_MODE,
    seed: int = 0,
    progress: bool = True,
):
    """Collect ``episodes`` training and ``test_episodes`` test episodes per task; see the module doc."""
    check_build_arguments(env_ids, policy, POLICIES, labelled_fraction=labelled_fraction, epsilon=epsilon,
                          episodes=episodes, max_steps=max_steps, test_episodes=test_episodes, seed=seed)
    if not 0 <= precision <= 8 or not 0 <= action_precision <= 8:
        raise SwirlError(f"precision and action_precision must be in 0..8, got {precision} and {action_precision}")
    for env_id in env_ids:
        ms.check_env_id(env_id)
    if policy == "expert":
        missing = [env_id for env_id in env_ids if not has_expert(env_id)]
        if missing:
            raise SwirlError(f"no scripted expert for {', '.join(missing)}; use --policy random for them")
        if control_mode != EXPERT_CONTROL_MODE:
            raise SwirlError(f"the scripted experts act in {EXPERT_CONTROL_MODE}, not {control_mode}; "
                             f"use --policy random for other control modes")
    envs = {env_id: ms.make_env(env_id, images=images, control_mode=control_mode) for env_id in dict.fromkeys(env_ids)}
    for env_id, env in envs.items():  # an unknown field name fails here, before any episode
        ms.observation_fields(ms.reset(env, 0), fields)

    def collect(env_id: str, env: Any, episode_seed: int, episode: int, rng: np.random.Generator) -> dict[str, list]:
        return collect_episode(env, env_id, episode_seed, episode, max_steps=max_steps, policy=policy, rng=rng,
                               epsilon=epsilon, images=images, fields=fields, precision=precision,
                               action_precision=action_precision)

    try:
        splits = collect_splits(envs, collect, episodes=episodes, test_episodes=test_episodes,
                                labelled_fraction=labelled_fraction, seed=seed, unlabelled_columns=("action",),
                                progress=progress)
    finally:
        for env in envs.values():
            env.close()
    return to_dataset_dict(splits, transition_features(RESIMULATION_FEATURES, images != "none"))


def summary_table(dataset_dict) -> str:
    """A markdown table: per split and task, episodes, transitions, how far the objects moved, text size."""
    header = "| split | env_id | episodes | transitions | object moved (mm/step) | mean state chars |"
    lines = [header, "|" + "---|" * 6]
    for split, dataset in dataset_dict.items():
        columns = dataset.select_columns(["env_id", "episode", "state", "next_state"]).to_dict()
        per_env: dict[str, list[int]] = defaultdict(list)
        for index, env_id in enumerate(columns["env_id"]):
            per_env[env_id].append(index)
        for env_id, rows in sorted(per_env.items()):
            moved = [object_motion(columns["state"][i], columns["next_state"][i]) for i in rows]
            moved = [m for m in moved if m is not None]
            mean_chars = sum(len(columns["state"][i]) for i in rows) / len(rows)
            moved_text = f"{1000 * np.mean(moved):.1f}" if moved else "-"
            lines.append(f"| {split} | {env_id} | {len({columns['episode'][i] for i in rows})} | {len(rows)} | "
                         f"{moved_text} | {mean_chars:.0f} |")
        if not per_env:
            lines.append(f"| {split} | - | 0 | 0 | - | - |")
    return "\n".join(lines)


def object_motion(state: str, next_state: str) -> float | None:
    """How far the objects' positions moved in one step (metres, summed over ``*_pose`` fields other than the
    TCP's); None when the state has no object pose."""
    before, after = ms.text_to_state(state), ms.text_to_state(next_state)
    names = [name for name in before if name.endswith("_pose") and name != "tcp_pose"]
    if not names:
        return None
    return float(sum(np.linalg.norm(after[name][:3] - before[name][:3]) for name in names))
