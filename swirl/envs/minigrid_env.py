"""MiniGrid envs as the world models meet them: the action vocabulary (text <-> index), RGB renders of a state,
making an env by id with a one-line error, and re-simulating a dataset row from its seed and action prefix.

States are :mod:`swirl.envs.minigrid_state`'s, their texts :mod:`swirl.envs.minigrid_text`'s;
:mod:`swirl.envs.minigrid` gathers all three.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Sequence

import gymnasium as gym

from swirl.envs.discrete import index_to_text, replay_prefix, text_to_index
from swirl.envs.minigrid_state import MiniGridState
from swirl.errors import UnknownEnvError

if TYPE_CHECKING:  # pragma: no cover - import only for type hints
    from PIL import Image

__all__ = ["action_to_text", "text_to_action", "action_texts", "ACTION_TEXTS", "WAV_ACTION_TEXTS", "render_state",
           "make_env", "resimulate", "minigrid_env_ids"]

# ------------------------------------------------------------------------------------------ actions
ACTION_TEXTS = ("turn left", "turn right", "move forward", "pick up", "drop", "toggle", "done")
"""MiniGrid's actions by index. Index 6 is MiniGrid's no-op ``done``; the WAV tasks replace it by ``switch``."""
WAV_ACTION_TEXTS = ACTION_TEXTS[:6] + ("switch",)
_TEXT_TO_ACTION = {text: i for i, text in enumerate(ACTION_TEXTS)} | {"switch": 6}


def action_texts(env_or_id: Any = None) -> tuple[str, ...]:
    """The action vocabulary of an env (object or id): ``switch`` at index 6 for the WAV tasks."""
    if isinstance(env_or_id, str):
        return WAV_ACTION_TEXTS if env_or_id.startswith("swirl/WAV-") else ACTION_TEXTS
    if env_or_id is not None and getattr(env_or_id.unwrapped, "has_switch_action", False):
        return WAV_ACTION_TEXTS
    return ACTION_TEXTS


def action_to_text(action: int, env_or_id: Any = None) -> str:
    """``2 -> "move forward"``; index 6 reads ``switch`` for the WAV tasks, ``done`` elsewhere."""
    return index_to_text(action, action_texts(env_or_id))


def text_to_action(text: str) -> int:
    """``"move forward" -> 2``. Case and surrounding whitespace are ignored; anything else is an error."""
    return text_to_index(text, _TEXT_TO_ACTION)


# ------------------------------------------------------------------------------------------- images
def render_state(state: Any, tile_size: int = 16) -> Image.Image:
    """RGB render of the full grid (agent included, no view highlight) as a PIL image.

    Accepts an env or a :class:`MiniGridState` (e.g. a parsed model prediction). The image is
    ``width * tile_size`` by ``height * tile_size`` pixels.
    """
    from PIL import Image  # lazy: PIL is heavy and needed only for renders

    if isinstance(state, MiniGridState):
        grid, pos, direction = state.to_grid(), state.agent_pos, state.agent_dir
    else:
        env = state.unwrapped
        grid, pos, direction = env.grid, env.agent_pos, env.agent_dir
    return Image.fromarray(grid.render(tile_size, tuple(pos), direction))


# ----------------------------------------------------------------------------------- environments
def minigrid_env_ids() -> list[str]:
    """Every registered MiniGrid, BabyAI and swirl WAV env id."""
    import swirl.envs  # noqa: F401  (registers the ids; lazy: the package imports this module)

    prefixes = ("MiniGrid-", "BabyAI-", "swirl/WAV-")
    return sorted(env_id for env_id in gym.registry if env_id.startswith(prefixes))


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with a one-line error naming close matches for an unknown id."""
    import swirl.envs  # noqa: F401  (the package registers the ids; it imports this module, so not at the top)

    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `swirl data minigrid --list-envs`"
        raise UnknownEnvError(f"unknown environment id {env_id!r}{hint}")
    return gym.make(env_id, **kwargs)


def resimulate(env_id: str, seed: int, action_prefix: Sequence[int], env: gym.Env | None = None) -> gym.Env:
    """Rebuild an env in the state a dataset row records: reset with ``seed``, then replay ``action_prefix``.

    Pass ``env`` to reuse an already-made env of the same id (much faster than ``gym.make`` each time).
    Stepping the row's ``action_id`` afterwards reproduces its ``next_state`` exactly.
    """
    return replay_prefix(env if env is not None else make_env(env_id), env_id, seed, action_prefix)

