"""MiniGrid codec: a full-observability state <-> compact, lossless text; actions <-> text; images.

The world models see the *whole* grid (not MiniGrid's 7x7 egocentric view), so that the next state is a
function of (state, action). A state serialises to a few lines::

    grid 5x4
    W W W W W
    W . Kr >G W
    W Bb[Ab] Dyl . W
    W W W W W
    carrying none
    end

Cell codes (one token per cell, cells separated by spaces, one grid row per line):

* ``.`` empty.
* An object is a type letter, a colour letter, then type-specific parts:
  type ``W`` wall, ``F`` floor, ``D`` door, ``K`` key, ``A`` ball, ``B`` box, ``G`` goal, ``V`` lava;
  colour ``r`` red, ``g`` green, ``b`` blue, ``p`` purple, ``y`` yellow, ``x`` grey.
  The colour is left out when it is the type's usual one (grey wall, blue floor, green goal, red lava).
  A door ends with its state: ``o`` open, ``c`` closed, ``l`` locked (``Dyl`` = locked yellow door).
  A box may hold an object in brackets, recursively (``Bb[Kr]`` = blue box holding a red key).
* The agent is drawn over its cell as an arrow pointing where it faces (``>`` right, ``v`` down, ``<`` left,
  ``^`` up), followed by the object it stands on, if any (``>G`` = agent facing right, on the goal).

``carrying`` names the carried object (or ``none``) and ``end`` closes the state, so a truncated text can
never parse as a (wrong) smaller state. Parsing is strict: anything else raises :class:`StateParseError`
naming the line and cell.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from swirl.errors import ActionParseError, StateParseError, UnknownEnvError

if TYPE_CHECKING:  # pragma: no cover - import only for type hints
    import gymnasium as gym
    from PIL import Image

__all__ = [
    "Obj",
    "MiniGridState",
    "state_to_text",
    "text_to_state",
    "action_to_text",
    "text_to_action",
    "action_texts",
    "ACTION_TEXTS",
    "render_state",
    "make_env",
    "resimulate",
    "minigrid_env_ids",
]

# ----------------------------------------------------------------------------------------------- codes
TYPE_TO_CODE = {"wall": "W", "floor": "F", "door": "D", "key": "K", "ball": "A", "box": "B", "goal": "G", "lava": "V"}
CODE_TO_TYPE = {code: name for name, code in TYPE_TO_CODE.items()}
COLOR_TO_CODE = {"red": "r", "green": "g", "blue": "b", "purple": "p", "yellow": "y", "grey": "x"}
CODE_TO_COLOR = {code: name for name, code in COLOR_TO_CODE.items()}
DEFAULT_COLOR = {"wall": "grey", "floor": "blue", "goal": "green", "lava": "red"}
DOOR_STATE_TO_CODE = {"open": "o", "closed": "c", "locked": "l"}
CODE_TO_DOOR_STATE = {code: name for name, code in DOOR_STATE_TO_CODE.items()}
DIR_TO_ARROW = (">", "v", "<", "^")  # MiniGrid's agent_dir: 0 right (+x), 1 down (+y), 2 left, 3 up
ARROW_TO_DIR = {arrow: i for i, arrow in enumerate(DIR_TO_ARROW)}


_INTERNED: dict[tuple, "Obj"] = {}


@dataclass(frozen=True)
class Obj:
    """One MiniGrid object, as plain data: comparable, hashable, serialisable."""

    type: str
    color: str
    state: str | None = None  # doors only: "open" | "closed" | "locked"
    contains: Obj | None = None  # boxes only

    @classmethod
    def from_world_obj(cls, obj: Any) -> Obj | None:
        """Convert a ``minigrid.core.world_object.WorldObj`` (or None).

        Objects are interned (equal objects are one instance) so that a whole grid converts with a dict
        lookup per cell and each code string is computed once: serialising is on the data builder's hot path.
        """
        if obj is None:
            return None
        state = None
        if obj.type == "door":
            state = "open" if obj.is_open else ("locked" if obj.is_locked else "closed")
        contains = cls.from_world_obj(obj.contains) if obj.type == "box" else None
        key = (obj.type, obj.color, state, contains)
        interned = _INTERNED.get(key)
        if interned is None:
            if obj.type not in TYPE_TO_CODE or obj.color not in COLOR_TO_CODE:
                raise ValueError(f"cannot serialise MiniGrid object type={obj.type!r} color={obj.color!r}")
            interned = _INTERNED.setdefault(key, cls(*key))
        return interned

    def to_world_obj(self) -> Any:
        """Build the equivalent ``WorldObj`` (used for rendering and for rebuilding grids)."""
        from minigrid.core import world_object as wo

        if self.type == "door":
            return wo.Door(self.color, is_open=self.state == "open", is_locked=self.state == "locked")
        if self.type == "box":
            return wo.Box(self.color, contains=self.contains.to_world_obj() if self.contains else None)
        made = {"wall": wo.Wall, "floor": wo.Floor, "key": wo.Key, "ball": wo.Ball, "goal": wo.Goal}
        if self.type in made:
            return made[self.type](self.color)
        lava = wo.Lava()  # Lava takes no colour argument
        lava.color = self.color
        return lava

    @cached_property
    def code(self) -> str:
        """This object's cell code, e.g. ``Kr``, ``Dyl``, ``Bb[Ar]``, ``W``."""
        text = TYPE_TO_CODE[self.type]
        if DEFAULT_COLOR.get(self.type) != self.color:
            text += COLOR_TO_CODE[self.color]
        if self.type == "door":
            text += DOOR_STATE_TO_CODE[self.state or "closed"]
        if self.contains is not None:
            text += "[" + self.contains.code + "]"
        return text


@dataclass(frozen=True)
class MiniGridState:
    """Everything the dynamics depend on: the full grid, the agent's pose and the carried object."""

    width: int
    height: int
    cells: tuple[Obj | None, ...]  # row-major: cells[y * width + x]
    agent_pos: tuple[int, int]  # (x, y)
    agent_dir: int  # 0 right, 1 down, 2 left, 3 up
    carrying: Obj | None

    @classmethod
    def from_env(cls, env: Any) -> MiniGridState:
        """Read the state of a MiniGrid env (wrapped or not); it must have been reset."""
        env = env.unwrapped
        grid = env.grid
        if env.agent_pos is None:
            raise ValueError("the environment has not been reset")
        convert = Obj.from_world_obj
        return cls(
            width=grid.width,
            height=grid.height,
            cells=tuple([None if obj is None else convert(obj) for obj in grid.grid]),
            agent_pos=(int(env.agent_pos[0]), int(env.agent_pos[1])),
            agent_dir=int(env.agent_dir),
            carrying=convert(env.carrying),
        )

    @classmethod
    def from_text(cls, text: str) -> MiniGridState:
        return text_to_state(text)

    def to_text(self) -> str:
        return state_to_text(self)

    def cell(self, x: int, y: int) -> Obj | None:
        return self.cells[y * self.width + x]

    def to_grid(self) -> Any:
        """A ``minigrid.core.grid.Grid`` holding this state's objects (agent and carried object excluded)."""
        from minigrid.core.grid import Grid

        grid = Grid(self.width, self.height)
        for index, obj in enumerate(self.cells):
            if obj is not None:
                grid.set(index % self.width, index // self.width, obj.to_world_obj())
        return grid

    def render(self, tile_size: int = 16) -> Image.Image:
        return render_state(self, tile_size)


# ------------------------------------------------------------------------------------------ serialise
def state_to_text(state: Any) -> str:
    """Serialise a MiniGrid env (wrapped or not) or a :class:`MiniGridState` to text.

    >>> import gymnasium as gym, minigrid  # doctest: +SKIP
    >>> env = gym.make("MiniGrid-Empty-5x5-v0"); _ = env.reset(seed=0)  # doctest: +SKIP
    >>> print(state_to_text(env))  # doctest: +SKIP
    grid 5x5
    W W W W W
    W > . . W
    W . . . W
    W . . G W
    W W W W W
    carrying none
    end
    """
    if not isinstance(state, MiniGridState):
        state = MiniGridState.from_env(state)
    width = state.width
    codes = ["." if obj is None else obj.code for obj in state.cells]
    x, y = state.agent_pos
    under = state.cells[y * width + x]
    codes[y * width + x] = DIR_TO_ARROW[state.agent_dir] + ("" if under is None else under.code)
    lines = [f"grid {width}x{state.height}"]
    lines.extend(" ".join(codes[row * width : (row + 1) * width]) for row in range(state.height))
    lines.append("carrying " + ("none" if state.carrying is None else state.carrying.code))
    lines.append("end")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- parse
_HEADER = re.compile(r"grid (\d{1,3})x(\d{1,3})")


def _parse_obj(code: str, pos: int, where: str) -> tuple[Obj, int]:
    """Parse one object code starting at ``code[pos]``; return it and the position after it."""

    def fail(what: str) -> StateParseError:
        return StateParseError(f"{where}: {what} in cell {code!r}")

    if pos >= len(code):
        raise fail("missing object after the agent arrow")
    letter = code[pos]
    if letter not in CODE_TO_TYPE:
        raise fail(f"unknown object letter {letter!r} (expected one of {''.join(CODE_TO_TYPE)})")
    obj_type = CODE_TO_TYPE[letter]
    pos += 1
    if pos < len(code) and code[pos] in CODE_TO_COLOR:
        color = CODE_TO_COLOR[code[pos]]
        pos += 1
    elif obj_type in DEFAULT_COLOR:
        color = DEFAULT_COLOR[obj_type]
    else:
        raise fail(f"{obj_type} needs a colour letter (one of {''.join(CODE_TO_COLOR)})")
    state = None
    if obj_type == "door":
        if pos >= len(code) or code[pos] not in CODE_TO_DOOR_STATE:
            raise fail("door needs a state letter (o open, c closed, l locked)")
        state = CODE_TO_DOOR_STATE[code[pos]]
        pos += 1
    contains = None
    if pos < len(code) and code[pos] == "[":
        if obj_type != "box":
            raise fail(f"only a box can hold an object, not a {obj_type}")
        contains, pos = _parse_obj(code, pos + 1, where)
        if pos >= len(code) or code[pos] != "]":
            raise fail("unclosed '['")
        pos += 1
    return Obj(obj_type, color, state, contains), pos


def _parse_single_obj(code: str, where: str) -> Obj:
    obj, end = _parse_obj(code, 0, where)
    if end != len(code):
        raise StateParseError(f"{where}: unexpected {code[end:]!r} after the object in cell {code!r}")
    return obj


def text_to_state(text: str) -> MiniGridState:
    """Parse :func:`state_to_text`'s output back to a :class:`MiniGridState`; strict.

    Raises :class:`StateParseError` (saying which line/cell and what is wrong) on anything that is not a
    complete, well-formed state: truncation, unknown codes, wrong row/column counts, zero or two agents.
    """
    if not isinstance(text, str):
        raise StateParseError(f"expected a state text, got {type(text).__name__}")
    lines = text.strip().split("\n")
    header = _HEADER.fullmatch(lines[0].strip())
    if header is None:
        raise StateParseError(f"line 1: expected a header like 'grid 8x8', got {lines[0][:40]!r}")
    width, height = int(header.group(1)), int(header.group(2))
    if width < 1 or height < 1:
        raise StateParseError(f"line 1: grid size must be positive, got {width}x{height}")
    if len(lines) < height + 3:
        raise StateParseError(
            f"truncated: a {width}x{height} grid needs {height + 3} lines (header, {height} rows, carrying, end), "
            f"got {len(lines)}"
        )
    cells: list[Obj | None] = []
    agents: list[tuple[int, int, int]] = []
    for y in range(height):
        line_no = y + 2
        row = lines[line_no - 1].split()
        if len(row) != width:
            raise StateParseError(f"line {line_no}: grid row {y} has {len(row)} cells, expected {width}")
        for x, code in enumerate(row):
            where = f"line {line_no} (row {y}), cell {x}"
            if code == ".":
                cells.append(None)
                continue
            if code[0] in ARROW_TO_DIR:
                agents.append((x, y, ARROW_TO_DIR[code[0]]))
                cells.append(_parse_single_obj(code[1:], where) if len(code) > 1 else None)
                continue
            cells.append(_parse_single_obj(code, where))
    if not agents:
        raise StateParseError("no agent in the grid (expected one of > v < ^)")
    if len(agents) > 1:
        places = ", ".join(f"({x},{y})" for x, y, _ in agents)
        raise StateParseError(f"{len(agents)} agents in the grid at {places}; expected exactly one")
    carry_line_no = height + 2
    carry = lines[carry_line_no - 1].strip()
    if not carry.startswith("carrying "):
        raise StateParseError(f"line {carry_line_no}: expected 'carrying <object|none>', got {carry[:40]!r}")
    carry_code = carry[len("carrying ") :].strip()
    carrying = None if carry_code == "none" else _parse_single_obj(carry_code, f"line {carry_line_no} (carrying)")
    end_line_no = height + 3
    if lines[end_line_no - 1].strip() != "end":
        raise StateParseError(f"line {end_line_no}: expected 'end', got {lines[end_line_no - 1][:40]!r}")
    if len(lines) > end_line_no:
        raise StateParseError(f"line {end_line_no + 1}: unexpected text after 'end': {lines[end_line_no][:40]!r}")
    x, y, direction = agents[0]
    return MiniGridState(width, height, tuple(cells), (x, y), direction, carrying)


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
    texts = action_texts(env_or_id)
    if not 0 <= int(action) < len(texts):
        raise ActionParseError(f"action index {action} out of range 0..{len(texts) - 1}")
    return texts[int(action)]


def text_to_action(text: str) -> int:
    """``"move forward" -> 2``. Case and surrounding whitespace are ignored; anything else is an error."""
    key = " ".join(str(text).lower().split())
    if key not in _TEXT_TO_ACTION:
        close = difflib.get_close_matches(key, list(_TEXT_TO_ACTION), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ActionParseError(f"unknown action {str(text)[:40]!r}{hint} (known: {', '.join(_TEXT_TO_ACTION)})")
    return _TEXT_TO_ACTION[key]


# ------------------------------------------------------------------------------------------- images
def render_state(state: Any, tile_size: int = 16) -> Image.Image:
    """RGB render of the full grid (agent included, no view highlight) as a PIL image.

    Accepts an env or a :class:`MiniGridState` (e.g. a parsed model prediction). The image is
    ``width * tile_size`` by ``height * tile_size`` pixels.
    """
    from PIL import Image

    if isinstance(state, MiniGridState):
        grid, pos, direction = state.to_grid(), state.agent_pos, state.agent_dir
    else:
        env = state.unwrapped
        grid, pos, direction = env.grid, env.agent_pos, env.agent_dir
    return Image.fromarray(grid.render(tile_size, tuple(pos), direction))


# ----------------------------------------------------------------------------------- environments
def minigrid_env_ids() -> list[str]:
    """Every registered MiniGrid, BabyAI and swirl WAV env id."""
    import gymnasium as gym

    import swirl.envs  # noqa: F401  (registers the WAV tasks and MiniGrid's own ids)

    prefixes = ("MiniGrid-", "BabyAI-", "swirl/WAV-")
    return sorted(env_id for env_id in gym.registry if env_id.startswith(prefixes))


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with a one-line error naming close matches for an unknown id."""
    import gymnasium as gym

    import swirl.envs  # noqa: F401

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
    env = env if env is not None else make_env(env_id)
    env.reset(seed=int(seed))
    for step, action in enumerate(action_prefix):
        _, _, terminated, truncated, _ = env.step(int(action))
        if (terminated or truncated) and step < len(action_prefix) - 1:
            raise ValueError(f"{env_id} seed {seed}: the episode ended at step {step} of the action prefix")
    return env

