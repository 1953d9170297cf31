"""Scripted experts for MiniGrid envs: shortest-path planning over agent poses plus a few rules per task.

An expert re-plans from the current state at every step (no hidden plan to get out of sync), so it can be
mixed with random actions (``--epsilon``) and still recover. :func:`expert_action` is the one entry point:
it uses the env's own ``expert_step`` (the WAV tasks have one) or an expert registered here for a stock
MiniGrid env, and falls back to a random action when the expert has nothing useful to do.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np
from minigrid.core.actions import Actions
from minigrid.core.constants import DIR_TO_VEC
from minigrid.envs import DoorKeyEnv

Pos = tuple[int, int]


def agent_pose(env: Any) -> tuple[int, int, int]:
    return int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir)


def facing(x: int, y: int, direction: int) -> Pos:
    dx, dy = DIR_TO_VEC[direction]
    return x + int(dx), y + int(dy)


def passable(env: Any, pos: Pos, destination: Pos | None = None) -> bool:
    """Can the agent walk onto ``pos``? Goal and lava cells only when they are the destination."""
    cell = env.grid.get(*pos)
    if pos == destination:
        return cell is None or cell.can_overlap()
    return cell is None or (cell.can_overlap() and cell.type not in ("goal", "lava"))


def plan(env: Any, done: Callable[[int, int, int], bool], destination: Pos | None = None) -> int | None:
    """First action (left, right, forward) of a shortest path to a pose where ``done(x, y, dir)`` holds.

    None when the agent is already there or no such pose is reachable.
    """
    start = agent_pose(env)
    if done(*start):
        return None
    first: dict[tuple[int, int, int], int] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        x, y, d = queue.popleft()
        moves = [(Actions.left, (x, y, (d - 1) % 4)), (Actions.right, (x, y, (d + 1) % 4))]
        ahead = facing(x, y, d)
        if passable(env, ahead, destination):
            moves.append((Actions.forward, (*ahead, d)))
        for action, pose in moves:
            if pose in seen:
                continue
            seen.add(pose)
            first[pose] = first.get((x, y, d), int(action))
            if done(*pose):
                return first[pose]
            queue.append(pose)
    return None


def face_then(env: Any, want: Callable[[Pos], bool], action: int) -> int | None:
    """Do ``action`` if the cell in front satisfies ``want``; otherwise walk towards such a pose."""
    if want(facing(*agent_pose(env))):
        return int(action)
    return plan(env, lambda x, y, d: want(facing(x, y, d)))


def act_on_cell(env: Any, pos: Pos, action: int) -> int | None:
    return face_then(env, lambda cell: cell == pos, action)


def go_to(env: Any, pos: Pos) -> int | None:
    return plan(env, lambda x, y, d: (x, y) == pos, destination=pos)


def is_free(env: Any, pos: Pos) -> bool:
    """An empty cell the agent is not standing on (where an object can be dropped)."""
    return env.grid.get(*pos) is None and pos != (int(env.agent_pos[0]), int(env.agent_pos[1]))


def drop_anywhere(env: Any) -> int | None:
    return face_then(env, lambda pos: is_free(env, pos), Actions.drop)


def find_cells(env: Any, obj_type: str) -> list[Pos]:
    width = env.grid.width
    return [(i % width, i // width) for i, cell in enumerate(env.grid.grid) if cell is not None and cell.type == obj_type]


# --------------------------------------------------------------------------- stock MiniGrid experts
def doorkey_expert(env: DoorKeyEnv, rng: np.random.Generator) -> int | None:
    """MiniGrid-DoorKey: pick up the key, unlock and open the door, walk to the goal."""
    door_pos = find_cells(env, "door")[0]
    door = env.grid.get(*door_pos)
    if not door.is_open:
        if door.is_locked and (env.carrying is None or env.carrying.type != "key"):
            keys = find_cells(env, "key")
            return act_on_cell(env, keys[0], Actions.pickup) if keys else None
        return act_on_cell(env, door_pos, Actions.toggle)
    return go_to(env, find_cells(env, "goal")[0])


STOCK_EXPERTS: dict[type, Callable[[Any, np.random.Generator], int | None]] = {DoorKeyEnv: doorkey_expert}


def has_expert(env: Any) -> bool:
    core = env.unwrapped
    return hasattr(core, "expert_step") or type(core) in STOCK_EXPERTS


def expert_action(env: Any, rng: np.random.Generator) -> int:
    """The scripted expert's next action for ``env`` (wrapped or not); random when it has none to give."""
    core = env.unwrapped
    if hasattr(core, "expert_step"):
        action = core.expert_step(rng)
    elif type(core) in STOCK_EXPERTS:
        action = STOCK_EXPERTS[type(core)](core, rng)
    else:
        raise ValueError(f"no scripted expert for {type(core).__name__}")
    return int(rng.integers(env.action_space.n)) if action is None else int(action)
