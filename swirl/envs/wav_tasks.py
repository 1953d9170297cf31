"""The MiniGrid tasks of the WAV paper (World Action Verifier), registered with gymnasium.

Rules shared by every task here (they differ from stock MiniGrid on purpose):

* Action 6 is ``switch`` (stock MiniGrid's unused ``done``): when the agent carries an object and the cell
  in front holds an object it could pick up, the two are exchanged.
* ``toggle`` on a key or a ball flips its colour red <-> blue; ``toggle`` on a box swaps the carried object
  (or nothing) with the box's contents (or nothing): ``box_toggle="swap"``, the tasks' rule. The random-play rooms
  use the WAV paper's random-play rule instead, ``box_toggle="colour"``: a box toggle flips the box's colour
  red <-> blue like a key's (a constructor option of every env here). Doors toggle as usual.
* Optional *noisy floor tiles*: floor cells whose colours are redrawn at random (from the env's seeded RNG)
  after every step, inflating state stochasticity without touching the action's imprint. No action moves, takes
  or covers a tile (a floor cannot be picked up, dropped on, toggled or switched), and every step draws one colour
  per tile whatever the action, so the tiles' colours after a step depend only on the RNG state before it. Hence
  re-simulation is exact: :func:`swirl.envs.minigrid_env.resimulate` (reset with the seed, replay the prefix)
  gives the row's state, tile colours included, and :mod:`swirl.envs.identifiability` steps every action from a
  copy of that env, RNG state included, so each action sees the same new colours and next states are compared
  exactly, not modulo the tiles. A step that changes nothing but the tiles is therefore explained by every action
  that does nothing (not identifiable), though ``s' != s``.

Tasks (each has a random policy — ``env.action_space.sample()`` — and a scripted expert,
``swirl.envs.experts.expert_action(env, rng)``, so collected sequences contain the interactions, not only walking):

* ``swirl/WAV-KeyDelivery-v0``: make the key the box's colour, put the key into the box, switch the box for
  the ball (carry the box), make the ball the box's colour, reach the goal.
* ``swirl/WAV-BallDelivery-v0``: the mirror image (the ball goes into the box, then the key is matched).
* ``swirl/WAV-ObjectMatching-v0``: make key and ball the colour of the reference box, gather both next to
  the box, exit through the goal.
* ``swirl/WAV-RandomPlay-<n>obj-v0``: an empty 10x10 room with ``n`` keys, balls and boxes (6-14) for random play,
  boxes toggled by colour; ``swirl/WAV-RandomPlay-4obj-6x6-v0`` is a small one (4 objects in 6x6, boxes toggled
  by swap, as the quality study's data was built); its "expert" walks to random objects and interacts with them.
* The forward-inverse asymmetry rooms (issue #31, :mod:`swirl.wav.asymmetry`), one room size for every level so
  that only the factor changes: ``swirl/WAV-RandomPlay-<n>obj-8x8-v0`` (``n`` = 6, 8, 10, 12, 14 objects) and
  ``swirl/WAV-RandomPlay-6obj-8x8-Noise<k>-v0`` (noise level ``k`` = 1-4: ``2k`` noisy floor tiles). An 8x8 grid
  is a 6x6 floor inside its walls (MiniGrid's ``size`` counts the walls): a 6x6 *grid* has a 4x4 floor, where 14
  objects and the agent would leave one free cell, so random play would be almost all no-ops and no object could
  be carried anywhere. On the 6x6 floor, 14 objects cover 39% of the 36 cells (the rooms' rule is at most half).

The three tasks also come in 6x6 rooms (``swirl/WAV-KeyDelivery-6x6-v0`` etc.; states of ~50 SmolLM2 tokens
instead of ~100, for CPU studies). Each has a ``-Noisy`` variant with noisy floor tiles; any size, object or tile
count can also be passed to ``gymnasium.make(id, size=..., num_objects=..., num_noisy_tiles=...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.registration import register
from minigrid.core.actions import Actions
from minigrid.core.constants import COLOR_NAMES
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Floor, Goal, Key, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from swirl.envs.experts import act_on_cell, drop_anywhere, face_then, go_to, is_free

SWITCH = 6
TWO_COLOURS = ("red", "blue")
CARRIED, IN_BOX = "carried", "in_box"
BOX_TOGGLES = ("swap", "colour")  # what toggle does to a box: swap it with what is carried, or flip its colour
Pos = tuple[int, int]


def flip_colour(color: str) -> str:
    """The red <-> blue cycle of the WAV tasks (any other colour becomes red)."""
    return "blue" if color == "red" else "red"


class WAVEnv(MiniGridEnv):
    """A MiniGrid room with the WAV interaction rules; subclasses place objects and script an expert."""

    has_switch_action = True
    mission_text = "interact with the objects"

    def __init__(self, size: int = 8, num_noisy_tiles: int = 0, max_steps: int | None = None,
                 box_toggle: str = "swap", **kwargs: Any):
        if box_toggle not in BOX_TOGGLES:
            raise ValueError(f"box_toggle must be one of {', '.join(BOX_TOGGLES)} (got {box_toggle!r})")
        self.box_toggle = box_toggle
        self.num_noisy_tiles = num_noisy_tiles
        self.noisy_tiles: list[Pos] = []
        mission = self.mission_text
        super().__init__(
            mission_space=MissionSpace(mission_func=lambda: mission),
            grid_size=size,
            max_steps=max_steps or 4 * size * size,
            see_through_walls=True,
            **kwargs,
        )

    # -------------------------------------------------------------------------------- generation
    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        self._place_objects()
        self.noisy_tiles = []
        for _ in range(self.num_noisy_tiles):
            self.noisy_tiles.append(tuple(int(v) for v in self.place_obj(Floor(self._rand_elem(COLOR_NAMES)))))
        self.place_agent()
        self.mission = self.mission_text

    def _place_objects(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ dynamics
    def step(self, action: int):
        action = int(action)
        if action == SWITCH:
            self._switch()
            action = Actions.done  # a no-op in MiniGridEnv.step, which still counts the step
        elif action == Actions.toggle and self._wav_toggle():
            action = Actions.done
        obs, reward, terminated, truncated, info = super().step(action)
        if self.noisy_tiles:
            for x, y in self.noisy_tiles:
                tile = self.grid.get(x, y)
                if tile is not None and tile.type == "floor":
                    tile.color = self._rand_elem(COLOR_NAMES)
            obs = self.gen_obs()
        return obs, reward, terminated, truncated, info

    def _switch(self) -> None:
        front = self.grid.get(*self.front_pos)
        if self.carrying is not None and front is not None and front.can_pickup():
            self.grid.set(*self.front_pos, self.carrying)
            self.carrying.cur_pos = self.front_pos
            self.carrying, front.cur_pos = front, np.array([-1, -1])

    def _wav_toggle(self) -> bool:
        """Apply the WAV toggle rules; False means "not ours" (doors), so MiniGrid's toggle runs."""
        front = self.grid.get(*self.front_pos)
        if front is None:
            return False
        if front.type in ("key", "ball"):
            front.color = flip_colour(front.color)
            return True
        if front.type == "box" and self.box_toggle == "colour":
            front.color = flip_colour(front.color)
            return True
        if front.type == "box":
            front.contains, self.carrying = self.carrying, front.contains
            return True
        return False

    def _reward(self) -> float:
        return super()._reward() if self.task_complete() else 0.0

    def task_complete(self) -> bool:
        return False

    # ------------------------------------------------------------------------------ expert helpers
    def expert_step(self, rng: np.random.Generator) -> int | None:
        """The scripted expert's next action, re-planned from the current state (None: nothing to do).

        Use :func:`swirl.envs.experts.expert_action`, which turns None into a random action.
        """
        raise NotImplementedError

    def locate(self, obj: WorldObj) -> Pos | str | None:
        """Where ``obj`` is: an (x, y) cell, ``"carried"``, ``"in_box"``, or None if gone."""
        if self.carrying is obj:
            return CARRIED
        if self.carrying is not None and self.carrying.contains is obj:
            return IN_BOX
        width = self.grid.width
        for index, cell in enumerate(self.grid.grid):
            if cell is obj:
                return (index % width, index // width)
            if cell is not None and cell.contains is obj:
                return IN_BOX
        return None

    def _act_on(self, obj: WorldObj, action: int) -> int | None:
        """Walk to face ``obj`` (if it lies on the grid), then do ``action``."""
        pos = self.locate(obj)
        return act_on_cell(self, pos, action) if isinstance(pos, tuple) else None


class KeyDeliveryEnv(WAVEnv):
    """Key Delivery: match key to box colour, key into box, swap box for ball, match ball, reach goal."""

    mission_text = "deliver the key in the box, carry the box, match the ball and reach the goal"
    item_name, other_name = "key", "ball"

    def _place_objects(self) -> None:
        self.box = Box(self._rand_elem(TWO_COLOURS))
        self.key = Key(self._rand_elem(TWO_COLOURS))
        self.ball = Ball(self._rand_elem(TWO_COLOURS))
        for obj in (self.box, self.key, self.ball):
            self.place_obj(obj)
        self.goal_pos = tuple(int(v) for v in self.place_obj(Goal()))

    @property
    def item(self) -> WorldObj:
        return getattr(self, self.item_name)

    @property
    def other(self) -> WorldObj:
        return getattr(self, self.other_name)

    def task_complete(self) -> bool:
        box = self.box
        return (
            self.carrying is box
            and box.contains is self.item
            and self.item.color == box.color
            and self.other.color == box.color
        )

    def expert_step(self, rng: np.random.Generator) -> int | None:
        box, item, other, carrying = self.box, self.item, self.other, self.carrying
        if carrying is box and box.contains is item:
            if other.color != box.color:
                return self._act_on(other, Actions.toggle)
            return go_to(self, self.goal_pos)
        if box.contains is item and self.locate(box) != CARRIED:
            if carrying is other:
                return self._act_on(box, SWITCH)
            if carrying is None:
                return self._act_on(other, Actions.pickup)
            return drop_anywhere(self)
        if carrying is item:
            if item.color != box.color or self.locate(box) == CARRIED:
                return drop_anywhere(self)
            return self._act_on(box, Actions.toggle)
        if carrying is not None:
            return drop_anywhere(self)
        if item.color != box.color:
            return self._act_on(item, Actions.toggle)
        return self._act_on(item, Actions.pickup)


class BallDeliveryEnv(KeyDeliveryEnv):
    """Ball Delivery: the mirror of Key Delivery — the ball goes into the box, then the key is matched."""

    mission_text = "deliver the ball in the box, carry the box, match the key and reach the goal"
    item_name, other_name = "ball", "key"


class ObjectMatchingEnv(KeyDeliveryEnv):
    """Object Matching: make key and ball the reference box's colour, gather them by the box, exit."""

    mission_text = "match the key and the ball to the box, gather them by the box and exit"

    def _near_box(self, pos: Pos | str | None) -> bool:
        box_pos = self.locate(self.box)
        if not isinstance(pos, tuple) or not isinstance(box_pos, tuple):
            return False
        return max(abs(pos[0] - box_pos[0]), abs(pos[1] - box_pos[1])) <= 1

    def task_complete(self) -> bool:
        return all(
            obj.color == self.box.color and self._near_box(self.locate(obj)) for obj in (self.key, self.ball)
        )

    def expert_step(self, rng: np.random.Generator) -> int | None:
        if self.carrying in (self.key, self.ball) and self.carrying.color == self.box.color:
            return face_then(self, lambda p: is_free(self, p) and self._near_box(p) and p != self.goal_pos, Actions.drop)
        if self.carrying is not None:
            return drop_anywhere(self)
        for obj in (self.key, self.ball):
            if obj.color != self.box.color:
                return self._act_on(obj, Actions.toggle)
            if not self._near_box(self.locate(obj)):
                return self._act_on(obj, Actions.pickup)
        return go_to(self, self.goal_pos)


class RandomPlayEnv(WAVEnv):
    """An empty room with ``num_objects`` keys, balls and boxes (red/blue) to play with at random."""

    mission_text = "play with the objects"

    def __init__(self, num_objects: int = 8, size: int = 10, box_toggle: str = "colour", **kwargs: Any):
        if not 1 <= num_objects <= (size - 2) ** 2 // 2:
            raise ValueError(f"num_objects={num_objects} does not fit a {size}x{size} room")
        self.num_objects = num_objects
        self._target: tuple[WorldObj, int] | None = None
        super().__init__(size=size, box_toggle=box_toggle, **kwargs)

    def _place_objects(self) -> None:
        kinds = (Key, Ball, Box)
        self.objects = [kinds[self._rand_int(0, 3)](self._rand_elem(TWO_COLOURS)) for _ in range(self.num_objects)]
        for obj in self.objects:
            self.place_obj(obj)
        self._target = None

    def expert_step(self, rng: np.random.Generator) -> int | None:
        """Walk to a random object and interact with it (pick up, toggle, switch); drop what is carried."""
        if self.carrying is not None and rng.random() < 0.3:
            return drop_anywhere(self)
        if self._target is None or not isinstance(self.locate(self._target[0]), tuple):
            on_grid = [obj for obj in self.objects if isinstance(self.locate(obj), tuple)]
            if not on_grid:
                return None
            interaction = (Actions.pickup, Actions.toggle, SWITCH)[int(rng.integers(3))]
            self._target = (on_grid[int(rng.integers(len(on_grid)))], int(interaction))
        obj, interaction = self._target
        action = self._act_on(obj, interaction)
        if action == interaction:
            self._target = None
        return action


ASYMMETRY_SIZE = 8  # the grid, walls included: a 6x6 floor
ASYMMETRY_OBJECTS = (6, 8, 10, 12, 14)
ASYMMETRY_NOISE_LEVELS = (0, 1, 2, 3, 4)  # level 0 is the plain 6-object room
TILES_PER_NOISE_LEVEL = 2  # level 4 has 8 noisy tiles, as the 10x10 -Noisy random-play rooms


def asymmetry_room(num_objects: int, noise_level: int = 0) -> str:
    """The registered id of a forward-inverse asymmetry room (noise rooms exist for 6 objects only).

    >>> asymmetry_room(14), asymmetry_room(6, noise_level=3)
    ('swirl/WAV-RandomPlay-14obj-8x8-v0', 'swirl/WAV-RandomPlay-6obj-8x8-Noise3-v0')
    """
    size = f"{ASYMMETRY_SIZE}x{ASYMMETRY_SIZE}"
    noise = f"-Noise{noise_level}" if noise_level else ""
    return f"swirl/WAV-RandomPlay-{num_objects}obj-{size}{noise}-v0"


def _register() -> None:
    for name, cls in (
        ("KeyDelivery", KeyDeliveryEnv),
        ("BallDelivery", BallDeliveryEnv),
        ("ObjectMatching", ObjectMatchingEnv),
    ):
        entry = f"{__name__}:{cls.__name__}"
        register(id=f"swirl/WAV-{name}-v0", entry_point=entry)
        register(id=f"swirl/WAV-{name}-Noisy-v0", entry_point=entry, kwargs={"num_noisy_tiles": 6})
        register(id=f"swirl/WAV-{name}-6x6-v0", entry_point=entry, kwargs={"size": 6})
    entry = f"{__name__}:RandomPlayEnv"
    for num_objects in (6, 8, 10, 12, 14):
        register(id=f"swirl/WAV-RandomPlay-{num_objects}obj-v0", entry_point=entry, kwargs={"num_objects": num_objects})
        register(
            id=f"swirl/WAV-RandomPlay-{num_objects}obj-Noisy-v0",
            entry_point=entry,
            kwargs={"num_objects": num_objects, "num_noisy_tiles": 8},
        )
    # a small object-rich room (states of ~50 SmolLM2 tokens instead of ~130): the CPU quality study's
    register(id="swirl/WAV-RandomPlay-4obj-6x6-v0", entry_point=entry,
             kwargs={"num_objects": 4, "size": 6, "box_toggle": "swap"})
    # the forward-inverse asymmetry rooms: one 8x8 grid (a 6x6 floor) for every level, see the module docstring
    for num_objects in ASYMMETRY_OBJECTS:
        register(id=asymmetry_room(num_objects), entry_point=entry,
                 kwargs={"num_objects": num_objects, "size": ASYMMETRY_SIZE})
    for level in ASYMMETRY_NOISE_LEVELS[1:]:
        register(id=asymmetry_room(ASYMMETRY_OBJECTS[0], level), entry_point=entry,
                 kwargs={"num_objects": ASYMMETRY_OBJECTS[0], "size": ASYMMETRY_SIZE,
                         "num_noisy_tiles": TILES_PER_NOISE_LEVEL * level})


_register()
