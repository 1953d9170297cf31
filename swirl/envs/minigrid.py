"""The MiniGrid family's public API, in one import: the state model (:mod:`swirl.envs.minigrid_state`:
``MiniGridState``, ``Obj``), the text codec (:mod:`swirl.envs.minigrid_text`: two lossless state texts and their
diffs) and the env side (:mod:`swirl.envs.minigrid_env`: actions, renders, make and re-simulate), for users and
scripts that want the whole family; swirl's own modules import the part they use."""

from __future__ import annotations

from swirl.envs.minigrid_env import (ACTION_TEXTS, WAV_ACTION_TEXTS, action_texts, action_to_text, make_env,
                                     minigrid_env_ids, render_state, resimulate, text_to_action)
from swirl.envs.minigrid_state import MiniGridState, Obj
from swirl.envs.minigrid_text import (NO_CHANGE, STATE_TEXTS, apply_diff, convert_state_text, front_cell_line,
                                      state_diff, state_text_kind, state_to_text, text_to_state)

__all__ = ["Obj", "MiniGridState", "state_to_text", "text_to_state", "state_text_kind", "convert_state_text",
           "state_diff", "apply_diff", "front_cell_line", "STATE_TEXTS", "NO_CHANGE", "action_to_text", "text_to_action", "action_texts",
           "ACTION_TEXTS", "WAV_ACTION_TEXTS", "render_state", "make_env", "resimulate", "minigrid_env_ids"]
