"""FrozenLake (gymnasium's toy-text lake), deterministic: the state text and its diffs, the action texts, making
and re-simulating envs, and a scripted expert. The third environment family, and the worked example of adding
one (docs/layout.md, "Adding an environment family"); its dataset builder is :mod:`swirl.builders.frozenlake_dataset`.

**State text**: the whole map and where the agent stands, so that a model can tell a step into a hole (``H``)
or onto the goal (``G``) from the text alone::

    lake 4x4
    S F F F
    F H F H
    F F F H
    H F F G
    agent 0,0
    end

* ``lake RxC``: the map's rows and columns.
* One line per map row, top first, one letter per cell separated by spaces (one token per cell for most
  tokenizers): gymnasium's ``desc`` letters, ``S`` start, ``F`` frozen, ``H`` hole, ``G`` goal.
* ``agent R,C``: the agent's row and column (0-based, row 0 at the top; gymnasium's ``s = R * C_total + C``).
  The episode ends when that cell is ``H`` or ``G``.
* ``end``, so a truncated text never parses as a state.

Parsing is strict: anything else (an unknown letter, a row of the wrong length, an agent off the map, a missing
or extra line) raises a one-line :class:`~swirl.errors.StateParseError` naming the line.

**Diffs** (:func:`state_diff`, :func:`apply_diff`): the map never changes, so a diff is ``agent R,C`` when the
agent moved and ``no change`` (``NO_CHANGE``, as in MiniGrid's codec) when it did not (a step into the edge).
``apply_diff(s, state_diff(s, s2)) == s2``.

**Actions**: ``left``, ``down``, ``right``, ``up``, gymnasium's ids 0..3 (:data:`ACTION_TEXTS`).

**Envs**: :func:`make_env` makes a registered FrozenLake id (``FrozenLake-v1``, ``FrozenLake8x8-v1``) with
``is_slippery=False``, so a step's result is a function of (state, action) and a dataset row re-simulates
exactly (:func:`resimulate`: reset with the row's seed, replay its action prefix).
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from swirl.envs.discrete import index_to_text, replay_prefix, text_to_index
from swirl.errors import StateParseError, SwirlError, UnknownEnvError

__all__ = ["FrozenLakeState", "state_to_text", "text_to_state", "state_diff", "apply_diff", "state_fields",
           "NO_CHANGE", "ACTION_TEXTS", "action_to_text", "text_to_action", "frozenlake_env_ids", "make_env",
           "resimulate", "expert_action", "MARKER_COLUMN"]

CELLS = "SFHG"  # start, frozen, hole, goal: gymnasium's desc letters
ENDS_EPISODE = "HG"  # a hole or the goal ends the episode
NO_CHANGE = "no change"
ACTION_TEXTS = ("left", "down", "right", "up")  # gymnasium's FrozenLake action ids 0..3
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # (row, column) step of each action; off the map = stay
ENTRY_POINT = "gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv"
MARKER_COLUMN = "lake_cell"  # dataset column only FrozenLake rows have: the map letter the step ended on


# ------------------------------------------------------------------------------------------------ state
@dataclass(frozen=True)
class FrozenLakeState:
    """Everything a deterministic step depends on: the map and the agent's cell."""

    rows: tuple[str, ...]  # the map, top row first, one letter of CELLS per cell (gymnasium's desc)
    agent: tuple[int, int]  # (row, column)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])

    @property
    def cell(self) -> str:
        """The map letter under the agent (``H``: it fell in; ``G``: it arrived)."""
        return self.rows[self.agent[0]][self.agent[1]]

    @classmethod
    def from_env(cls, env: Any) -> FrozenLakeState:
        """Read a FrozenLake env (wrapped or not); it must have been reset."""
        lake = env.unwrapped
        rows = tuple(b"".join(row).decode() for row in np.asarray(lake.desc))
        return cls(rows, divmod(int(lake.s), int(lake.ncol)))

    def moved(self, action: int) -> FrozenLakeState:
        """The state after ``action`` on the map (no slipping; the edge stops the agent)."""
        (row, col), (d_row, d_col), (height, width) = self.agent, MOVES[action], self.shape
        return FrozenLakeState(self.rows, (min(max(row + d_row, 0), height - 1), min(max(col + d_col, 0), width - 1)))


def state_to_text(state: Any) -> str:
    """The state text of a FrozenLake env (wrapped or not) or a :class:`FrozenLakeState` (see the module doc)."""
    if not isinstance(state, FrozenLakeState):
        state = FrozenLakeState.from_env(state)
    height, width = state.shape
    return "\n".join([f"lake {height}x{width}", *(" ".join(row) for row in state.rows),
                      _agent_line(state.agent), "end"])


def _agent_line(agent: tuple[int, int]) -> str:
    return f"agent {agent[0]},{agent[1]}"


def text_to_state(text: str) -> FrozenLakeState:
    """Parse :func:`state_to_text`'s output; strict (see the module doc). Raises :class:`StateParseError`."""
    if not isinstance(text, str):
        raise StateParseError(f"expected a state text, got {type(text).__name__}")
    lines = [line.strip() for line in text.strip().split("\n")]
    words = lines[0].split()
    size = words[1].split("x") if len(words) == 2 and words[0] == "lake" else []
    if len(size) != 2 or not all(part.isdigit() and int(part) >= 1 for part in size):
        raise StateParseError(f"line 1: expected a header like 'lake 4x4', got {lines[0][:40]!r}")
    height, width = map(int, size)
    if len(lines) != height + 3:
        raise StateParseError(f"expected {height + 3} lines for a {height}x{width} lake (header, {height} map rows, "
                              f"agent, end), got {len(lines)}")
    rows = []
    for line_no, line in enumerate(lines[1:height + 1], 2):
        cells = line.split()
        if len(cells) != width or any(cell not in CELLS for cell in cells):
            raise StateParseError(f"line {line_no}: expected {width} cells of {', '.join(CELLS)} separated by "
                                  f"spaces, got {line[:40]!r}")
        rows.append("".join(cells))
    agent = _parse_agent(lines[height + 1], f"line {height + 2}", height, width)
    if lines[height + 2] != "end":
        raise StateParseError(f"line {height + 3}: expected 'end', got {lines[height + 2][:40]!r}")
    return FrozenLakeState(tuple(rows), agent)


def _parse_agent(line: str, where: str, height: int, width: int) -> tuple[int, int]:
    words = line.split()
    position = words[1].split(",") if len(words) == 2 and words[0] == "agent" else []
    if len(position) != 2 or not all(part.isdigit() for part in position):
        raise StateParseError(f"{where}: expected 'agent ROW,COL', got {line[:40]!r}")
    row, col = map(int, position)
    if row >= height or col >= width:
        raise StateParseError(f"{where}: agent {row},{col} is off the {height}x{width} lake")
    return row, col


def state_fields(text: str) -> tuple[tuple[int, int], list[Any]]:
    """The state's shape and the fields a discrete FWM metric compares one by one: every map cell, then the agent's
    cell (the only field a step changes). Raises :class:`StateParseError` when ``text`` does not parse."""
    state = text_to_state(text)
    return state.shape, [*"".join(state.rows), state.agent]


# ------------------------------------------------------------------------------------------------ diffs
def state_diff(state_text: str, next_text: str) -> str:
    """``agent R,C`` when the agent moved, else ``no change``. Both texts must parse and share the map (a step
    never changes it), else :class:`StateParseError`."""
    state, other = text_to_state(state_text), text_to_state(next_text)
    if state.rows != other.rows:
        raise StateParseError("the two states have different maps (a FrozenLake step never changes the map)")
    return NO_CHANGE if other.agent == state.agent else _agent_line(other.agent)


def apply_diff(state_text: str, diff: str) -> str:
    """The whole next-state text after ``diff`` (``agent R,C`` or ``no change``); strict: anything else, or an
    agent off the map, raises a one-line :class:`StateParseError`."""
    state = text_to_state(state_text)
    if not isinstance(diff, str):
        raise StateParseError(f"expected a diff text, got {type(diff).__name__}")
    lines = [line.strip() for line in diff.strip().split("\n")]
    if lines == [NO_CHANGE]:
        return state_to_text(state)
    if lines == [""]:
        raise StateParseError(f"empty diff (write {NO_CHANGE!r} when nothing changes)")
    if len(lines) > 1:
        raise StateParseError(f"a FrozenLake diff is one line ('agent ROW,COL' or {NO_CHANGE!r}), got {len(lines)}")
    agent = _parse_agent(lines[0], "diff line 1", *state.shape)
    return state_to_text(FrozenLakeState(state.rows, agent))


# ---------------------------------------------------------------------------------------------- actions
def action_to_text(action: int) -> str:
    """``2 -> "right"`` (gymnasium's ids: 0 left, 1 down, 2 right, 3 up)."""
    return index_to_text(action, ACTION_TEXTS)


def text_to_action(text: str) -> int:
    """``"right" -> 2``. Case and surrounding whitespace are ignored; anything else is an error."""
    return text_to_index(text, {action: index for index, action in enumerate(ACTION_TEXTS)})


# ------------------------------------------------------------------------------------------ environments
def frozenlake_env_ids() -> list[str]:
    """Every gymnasium id whose env is FrozenLake (``FrozenLake-v1``, ``FrozenLake8x8-v1``, ...)."""
    return sorted(env_id for env_id, spec in gym.registry.items() if spec.entry_point == ENTRY_POINT)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, is_slippery=False, **kwargs)`` (e.g. ``desc=[...]`` for a map of your own); a
    one-line :class:`UnknownEnvError` naming the FrozenLake ids for any other id."""
    known = frozenlake_env_ids()
    if env_id not in known:
        close = difflib.get_close_matches(env_id, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownEnvError(f"unknown FrozenLake environment id {env_id!r}; {hint}(known: {', '.join(known)})")
    if kwargs.pop("is_slippery", False):
        raise SwirlError("FrozenLake runs with is_slippery=False only: a row must re-simulate to its next state")
    return gym.make(env_id, is_slippery=False, **kwargs)


def resimulate(env_id: str, seed: int, action_prefix: Sequence[int], env: gym.Env | None = None) -> gym.Env:
    """The env in the state a dataset row records: reset with ``seed``, then ``action_prefix`` replayed (pass
    ``env``, an env of the same id, to reuse it). Stepping the row's ``action_id`` then gives its ``next_state``."""
    return replay_prefix(env if env is not None else make_env(env_id), env_id, seed, action_prefix)


def expert_action(state: FrozenLakeState, rng: np.random.Generator) -> int:
    """An action on a shortest path to a goal that steps on no hole (a seeded choice among equally short ones);
    a random action when no goal can be reached."""
    height, width = state.shape
    distance = {(r, c): 0 for r in range(height) for c in range(width) if state.rows[r][c] == "G"}
    queue = deque(distance)
    while queue:  # breadth first from the goals, backwards through cells that are not holes
        row, col = queue.popleft()
        for d_row, d_col in MOVES:
            cell = (row - d_row, col - d_col)
            if (0 <= cell[0] < height and 0 <= cell[1] < width and cell not in distance
                    and state.rows[cell[0]][cell[1]] != "H"):
                distance[cell] = distance[(row, col)] + 1
                queue.append(cell)
    scores = [distance.get(state.moved(action).agent, np.inf) if state.moved(action).agent != state.agent else np.inf
              for action in range(len(ACTION_TEXTS))]
    best = [action for action, score in enumerate(scores) if score == min(scores) and score < np.inf]
    return int(rng.choice(best)) if best else int(rng.integers(len(ACTION_TEXTS)))
