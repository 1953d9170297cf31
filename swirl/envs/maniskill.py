"""The ManiSkill3 family's public API, in one import: the text codec (:mod:`swirl.envs.maniskill_text`: state
observations and continuous actions <-> fixed-precision text, and state diffs) and the env side
(:mod:`swirl.envs.maniskill_env`: make, step, re-simulate, images), for users and scripts that want the whole
family; swirl's own modules import the half they use."""

from __future__ import annotations

from swirl.envs.maniskill_env import (DEFAULT_CONTROL_MODE, IMAGE_SOURCES, check_env_id, env_state_json, make_env,
                                      maniskill_env_ids, render_image, reset, resimulate, restore_env_state,
                                      sensor_image, step)
from swirl.envs.maniskill_text import (DEFAULT_ACTION_PRECISION, DEFAULT_PRECISION, NO_CHANGE, action_to_text,
                                       apply_diff, observation_fields, quantise_action, state_diff, state_schema,
                                       state_to_text, text_to_action, text_to_state)

__all__ = ["DEFAULT_PRECISION", "DEFAULT_ACTION_PRECISION", "DEFAULT_CONTROL_MODE", "IMAGE_SOURCES",
           "observation_fields", "state_to_text", "text_to_state", "state_schema", "NO_CHANGE", "state_diff",
           "apply_diff", "action_to_text", "text_to_action", "quantise_action", "check_env_id", "make_env", "reset",
           "step", "env_state_json", "restore_env_state", "resimulate", "sensor_image", "render_image",
           "maniskill_env_ids"]
