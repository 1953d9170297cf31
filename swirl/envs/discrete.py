"""What the discrete families (MiniGrid, FrozenLake) share: action index <-> text with one-line errors, and
replaying a dataset row's recorded action prefix in a gymnasium env."""

from __future__ import annotations

import difflib
from typing import Any, Mapping, Sequence

from swirl.errors import ActionParseError


def index_to_text(action: int, texts: Sequence[str]) -> str:
    """The text of action ``action`` among ``texts`` (by index); out of range is one :class:`ActionParseError` line."""
    if not 0 <= int(action) < len(texts):
        raise ActionParseError(f"action index {action} out of range 0..{len(texts) - 1}")
    return texts[int(action)]


def text_to_index(text: str, indices: Mapping[str, int]) -> int:
    """The index of an action text (case and surrounding whitespace ignored); an unknown text is one
    :class:`ActionParseError` line with the closest known one."""
    key = " ".join(str(text).lower().split())
    if key not in indices:
        close = difflib.get_close_matches(key, list(indices), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ActionParseError(f"unknown action {str(text)[:40]!r}{hint} (known: {', '.join(indices)})")
    return indices[key]


def replay_prefix(env: Any, env_id: str, seed: int, action_prefix: Sequence[int]) -> Any:
    """``env`` in the state a dataset row records: reset with ``seed``, then ``action_prefix`` replayed; stepping the
    row's ``action_id`` then reproduces its ``next_state``. An episode that ends inside the prefix is a
    ``ValueError`` (the row does not belong to this env or seed)."""
    env.reset(seed=int(seed))
    for step, action in enumerate(action_prefix):
        _, _, terminated, truncated, _ = env.step(int(action))
        if (terminated or truncated) and step < len(action_prefix) - 1:
            raise ValueError(f"{env_id} seed {seed}: the episode ended at step {step} of the action prefix")
    return env
