"""Scripted ManiSkill controllers, so that the data has contact and object motion (a random policy rarely
touches the cube).

They read the state fields (:func:`swirl.envs.maniskill.observation_fields`) and answer a ``pd_ee_delta_pos``
action (TCP dx, dy, dz in [-1, 1] = +-10 cm, then the gripper: 1 open, -1 closed). Each is stateless:
the action depends on the current observation only, so random actions mixed in (``epsilon``) are
recovered from.

* ``pick``: PickCube -- above the object, down, close, carry it to the goal;
* ``place``: StackCube -- the same with the top of cube B as the goal, then open the gripper there.
* ``push``: PushCube, PullCube -- from above to the side of the object away from the goal, down to the table,
  then towards the goal.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

EXPERTS = {"PickCube-v1": "pick", "StackCube-v1": "place", "PushCube-v1": "push", "PullCube-v1": "push"}
CONTROL_MODE = "pd_ee_delta_pos"
STEP_METRES = 0.1  # pd_ee_delta_pos maps an action of 1 to 10 cm
HOVER = 0.05  # metres above the object before going down
CUBE_HALF = 0.02


def has_expert(env_id: str) -> bool:
    return env_id in EXPERTS


def _towards(tcp: np.ndarray, target: np.ndarray, gripper: float) -> np.ndarray:
    return np.append(np.clip((target - tcp) / STEP_METRES, -1.0, 1.0), gripper)


def _object_and_goal(env_id: str, fields: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if env_id == "StackCube-v1":
        return fields["cubeA_pose"][:3], fields["cubeB_pose"][:3] + np.array([0.0, 0.0, 2 * CUBE_HALF + 0.005])
    return fields["obj_pose"][:3], fields["goal_pos"][:3]


def expert_action(env_id: str, fields: Mapping[str, np.ndarray]) -> np.ndarray:
    """The scripted controller's action for the state ``fields`` of ``env_id`` (see the module doc)."""
    if env_id not in EXPERTS:
        raise ValueError(f"no scripted policy for {env_id}; experts exist for {', '.join(EXPERTS)}")
    tcp = fields["tcp_pose"][:3]
    obj, goal = _object_and_goal(env_id, fields)
    if EXPERTS[env_id] in ("pick", "place"):
        fingers = fields["qpos"][-2:].sum()  # the Panda's two finger joints: ~0.08 open, ~0.04 on a 4 cm cube
        holding = np.linalg.norm(tcp - obj) < 0.015 and fingers < 0.05
        if holding:
            release = EXPERTS[env_id] == "place" and np.linalg.norm(tcp - goal) < 0.01
            return np.array([0.0, 0.0, 0.0, 1.0]) if release else _towards(tcp, goal, -1.0)
        if np.linalg.norm(tcp[:2] - obj[:2]) > 0.01:
            return _towards(tcp, np.append(obj[:2], obj[2] + HOVER), 1.0)
        if tcp[2] - obj[2] > 0.005:
            return _towards(tcp, obj, 1.0)
        return np.array([0.0, 0.0, 0.0, -1.0])
    direction = goal[:2] - obj[:2]
    direction = direction / max(np.linalg.norm(direction), 1e-6)
    offset = tcp[:2] - obj[:2]
    along = float(np.dot(offset, direction))  # < 0: on the side away from the goal
    across = abs(float(offset[0] * direction[1] - offset[1] * direction[0]))
    behind = obj[:2] - direction * (CUBE_HALF + 0.03)
    if tcp[2] < obj[2] + 0.02 and along < -CUBE_HALF and across < 0.015:  # in place: push towards the goal
        return _towards(tcp, np.append(tcp[:2] + direction * 0.05, obj[2]), -1.0)
    if np.linalg.norm(tcp[:2] - behind) < 0.015:  # above the pushing spot: go down
        return _towards(tcp, np.append(behind, obj[2]), -1.0)
    if tcp[2] > obj[2] + HOVER - 0.01:  # high enough to pass over the cube: move above the pushing spot
        return _towards(tcp, np.append(behind, obj[2] + HOVER), -1.0)
    return _towards(tcp, np.append(tcp[:2], obj[2] + HOVER), -1.0)  # lift first
