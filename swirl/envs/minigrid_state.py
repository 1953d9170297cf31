"""The MiniGrid state model: a full-observability state as plain, comparable, hashable data.

A :class:`MiniGridState` is everything the dynamics depend on: the whole grid (not MiniGrid's 7x7 egocentric
view), the agent's pose and the carried object, so that the next state is a function of (state, action). Each
cell holds an :class:`Obj` or None. States are read from an env (:meth:`MiniGridState.from_env`) and turned back
into MiniGrid objects (:meth:`MiniGridState.to_grid`, :meth:`Obj.to_world_obj`) for renders and rebuilt envs.

The tables here name MiniGrid's object types, colours and door states, and the colour each type has by default;
an object spells itself with them, as a cell code (:attr:`Obj.code`, ``Dyl``) and in words (:attr:`Obj.words`,
``locked yellow door``). Objects are interned (:func:`intern_obj`): equal objects are one instance, so a grid
converts with a dict lookup per cell and each spelling is computed once.

The model is its own module because everything else builds on it: both state texts and their diffs
(:mod:`swirl.envs.minigrid_text`, which parses into and prints from these classes), the env side
(:mod:`swirl.envs.minigrid_env`: renders, re-simulation) and the models that read parsed states. It imports no
text code, so any of them can use it without the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = ["Obj", "MiniGridState", "intern_obj", "TYPE_TO_CODE", "CODE_TO_TYPE", "COLOR_TO_CODE", "CODE_TO_COLOR",
           "DEFAULT_COLOR", "DOOR_STATE_TO_CODE", "CODE_TO_DOOR_STATE"]

# ----------------------------------------------------------------------------------------------- codes
TYPE_TO_CODE = {"wall": "W", "floor": "F", "door": "D", "key": "K", "ball": "A", "box": "B", "goal": "G", "lava": "V"}
CODE_TO_TYPE = {code: name for name, code in TYPE_TO_CODE.items()}
COLOR_TO_CODE = {"red": "r", "green": "g", "blue": "b", "purple": "p", "yellow": "y", "grey": "x"}
CODE_TO_COLOR = {code: name for name, code in COLOR_TO_CODE.items()}
DEFAULT_COLOR = {"wall": "grey", "floor": "blue", "goal": "green", "lava": "red"}
DOOR_STATE_TO_CODE = {"open": "o", "closed": "c", "locked": "l"}
CODE_TO_DOOR_STATE = {code: name for name, code in DOOR_STATE_TO_CODE.items()}


_INTERNED: dict[tuple, "Obj"] = {}


def intern_obj(obj_type: str, color: str, state: str | None = None, contains: Obj | None = None) -> Obj:
    """The one shared :class:`Obj` with these fields, so its cached code/words are computed once."""
    key = (obj_type, color, state, contains)
    interned = _INTERNED.get(key)
    if interned is None:
        interned = _INTERNED.setdefault(key, Obj(*key))
    return interned


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
        if obj.type not in TYPE_TO_CODE or obj.color not in COLOR_TO_CODE:
            raise ValueError(f"cannot serialise MiniGrid object type={obj.type!r} color={obj.color!r}")
        return intern_obj(obj.type, obj.color, state, contains)

    def to_world_obj(self) -> Any:
        """Build the equivalent ``WorldObj`` (used for rendering and for rebuilding grids)."""
        from minigrid.core import world_object as wo  # lazy: parsing and printing states need no minigrid

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

    @cached_property
    def words(self) -> str:
        """This object in the objects text's words, e.g. ``red key``, ``locked yellow door``, ``wall``."""
        parts = [self.state or "closed"] if self.type == "door" else []
        if DEFAULT_COLOR.get(self.type) != self.color:
            parts.append(self.color)
        parts.append(self.type)
        if self.contains is not None:
            parts += ("holding", self.contains.words)
        return " ".join(parts)


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

    def cell(self, x: int, y: int) -> Obj | None:
        return self.cells[y * self.width + x]

    def to_grid(self) -> Any:
        """A ``minigrid.core.grid.Grid`` holding this state's objects (agent and carried object excluded)."""
        from minigrid.core.grid import Grid  # lazy: parsing and printing states need no minigrid

        grid = Grid(self.width, self.height)
        for index, obj in enumerate(self.cells):
            if obj is not None:
                grid.set(index % self.width, index // self.width, obj.to_world_obj())
        return grid
