"""Which actions explain a MiniGrid transition: the actions whose step from ``s`` reproduces ``s'``.

An inverse model can only learn an action where the action is *identifiable* from ``(s, s')``. Often it is
not: ``pick up`` with nothing in front, ``drop`` with nothing carried, ``toggle`` of an empty cell and
``done`` all leave the state as it was, and a turn or a step into a wall can look like them. Exact-match
IDM accuracy then punishes a model for answering an action that is just as right, and an action-balanced
test split is full of such coin flips. So, for a dataset row (``env_id``, ``seed``, ``action_prefix``,
``next_state``) this module re-simulates the row's state in the real env, steps *every* action of the env's
action space from it and keeps those whose next state equals the row's ``next_state``:

* the row is **identifiable** when exactly one action reproduces ``s'`` (:func:`is_identifiable`);
* the row is a **no-op** when ``s' == s`` (:func:`is_noop`): nothing the model could read an action from.

States are compared as parsed :class:`~swirl.envs.minigrid.MiniGridState` objects, never as strings, so the
answer does not depend on which lossless text a row's state is written in. Stochastic envs (noisy floor
tiles, moving obstacles) draw from the env's seeded RNG, which re-simulation restores, so they are compared
exactly too (a noisy-tile env, whose floor changes every step, has no no-ops by this definition).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from minigrid.core.world_object import Wall

from swirl.envs.minigrid import MiniGridState, make_env, resimulate, text_to_state

__all__ = ["equivalent_actions", "equivalent_actions_for_rows", "is_identifiable", "is_noop"]

ROW_COLUMNS = ("env_id", "seed", "action_prefix", "next_state")


def _as_state(state: str | MiniGridState) -> MiniGridState:
    return state if isinstance(state, MiniGridState) else text_to_state(state)


def _actions_reproducing(env: Any, target: MiniGridState) -> list[int]:
    """Every action whose step from ``env``'s current state gives ``target``; ``env`` itself is left as it is.

    Each action is tried on a deep copy of the unwrapped env (grid, agent, carried object, RNG state), much
    cheaper than replaying the action prefix per action. What a step never changes is shared with the original
    instead of copied: the spaces, the spec and the walls (no action moves, takes or toggles a wall), which
    halves the copy's time."""
    core = env.unwrapped
    fixed = [core.observation_space, core.action_space, core.spec, *(o for o in core.grid.grid if type(o) is Wall)]
    found = []
    for action in range(env.action_space.n):
        trial = copy.deepcopy(core, {id(value): value for value in fixed})
        trial.step(action)
        if MiniGridState.from_env(trial) == target:
            found.append(action)
    return found


def equivalent_actions(env_id: str, seed: int, action_prefix: Sequence[int], next_state: str | MiniGridState,
                       env: Any = None) -> list[int]:
    """Every action index of ``env_id``'s action space whose step from the row's state reproduces ``next_state``.

    The row's state is rebuilt with :func:`~swirl.envs.minigrid.resimulate` (reset with ``seed``, replay
    ``action_prefix``); pass ``env`` to reuse an env of that id. ``next_state`` is a state text (any text
    :func:`~swirl.envs.minigrid.text_to_state` parses) or a parsed state. An empty list means no action gives it
    (e.g. a wrong prediction); one action means the transition is identifiable.

    >>> from swirl.envs.minigrid import make_env, state_to_text
    >>> env = make_env("MiniGrid-Empty-5x5-v0"); _ = env.reset(seed=0); _ = env.step(2)  # move forward
    >>> equivalent_actions("MiniGrid-Empty-5x5-v0", 0, [], state_to_text(env))
    [2]
    >>> _ = env.reset(seed=0)  # s' = s: pick up, drop, toggle and done all give it
    >>> equivalent_actions("MiniGrid-Empty-5x5-v0", 0, [], state_to_text(env))
    [3, 4, 5, 6]
    """
    env = resimulate(env_id, seed, action_prefix, env=env)
    return _actions_reproducing(env, _as_state(next_state))


def equivalent_actions_for_rows(rows: Any, envs: dict[str, Any] | None = None) -> list[list[int]]:
    """:func:`equivalent_actions` of every row of a dataset (a ``datasets.Dataset`` or a mapping of columns
    ``env_id``, ``seed``, ``action_prefix``, ``next_state``), in row order.

    Fast enough to run inside an evaluation: one env per env id (taken from ``envs`` when given, made and
    added there otherwise), and the rows of one episode are visited in order of their prefixes, so the env
    walks each episode once instead of replaying every row's prefix from the reset.
    """
    missing = [name for name in ROW_COLUMNS if name not in _column_names(rows)]
    if missing:
        raise ValueError(f"rows lack the column(s) {', '.join(missing)} needed to re-simulate them")
    env_ids, seeds = list(rows["env_id"]), list(rows["seed"])
    prefixes, next_states = [list(p) for p in rows["action_prefix"]], list(rows["next_state"])
    envs = {} if envs is None else envs
    at: dict[str, tuple[int, list[int], bool]] = {}  # env id -> (seed, action prefix, episode over) of its env now
    result: list[list[int]] = [[] for _ in env_ids]
    for index in sorted(range(len(env_ids)), key=lambda i: (env_ids[i], seeds[i], len(prefixes[i]))):
        env_id, seed, prefix = env_ids[index], int(seeds[index]), prefixes[index]
        if env_id not in envs:
            envs[env_id] = make_env(env_id)
        env = envs[env_id]
        done_seed, done, over = at.get(env_id, (None, [], False))
        if done_seed != seed or prefix[: len(done)] != done or (over and len(prefix) > len(done)):
            env.reset(seed=seed)  # not on the way of the walk: start the episode again
            done, over = [], False
        for step in range(len(done), len(prefix)):
            if over:
                raise ValueError(f"{env_id} seed {seed}: the episode ended at step {step - 1} of the action prefix")
            _, _, terminated, truncated, _ = env.step(int(prefix[step]))
            over = terminated or truncated
        at[env_id] = (seed, prefix, over)
        result[index] = _actions_reproducing(env, _as_state(next_states[index]))
    return result


def _column_names(rows: Any) -> Sequence[str]:
    return rows.column_names if hasattr(rows, "column_names") else list(rows) if isinstance(rows, Mapping) else []


def is_identifiable(equivalent: Sequence[int]) -> bool:
    """Exactly one action reproduces the next state, so an inverse model can tell which action it was."""
    return len(equivalent) == 1


def is_noop(state: str | MiniGridState, next_state: str | MiniGridState) -> bool:
    """The step changed nothing (``s' == s``, compared parsed): no action can be read from it."""
    return _as_state(state) == _as_state(next_state)
