"""The MiniGrid state texts (grid, objects) and the diffs between states: lossless over the whole registry,
exact on hand-made transitions stepped in real MiniGrid, strict (only StateParseError) on malformed input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swirl.envs.experts import expert_action
from swirl.envs.minigrid import (
    NO_CHANGE,
    STATE_TEXTS,
    MiniGridState,
    Obj,
    apply_diff,
    convert_state_text,
    front_cell_line,
    make_env,
    minigrid_env_ids,
    state_diff,
    state_text_kind,
    state_to_text,
    text_to_state,
)
from swirl.envs.wav_tasks import ASYMMETRY_NOISE_LEVELS, ASYMMETRY_OBJECTS, asymmetry_room
from swirl.errors import StateParseError

# minigrid 3.2's wheels ship without the WFC envs' pattern images (see test_minigrid_codec.py).
REGISTRY = [env_id for env_id in minigrid_env_ids() if not env_id.startswith("MiniGrid-WFC-")]
PICK_UP, DROP, TOGGLE, SWITCH = 3, 4, 5, 6

# Every feature: border exceptions (an empty border cell, a coloured border wall, a border door), each door
# state, nested boxes, floors, lava, an interior plain wall, the agent on the goal, a carried box.
RICH = """room 7x5
agent 4,2 facing up
empty 0,1
red key 1,1
blue ball 2,1
green box holding blue key 3,1
open yellow door 4,1
purple wall 6,1
locked purple door 1,2
closed grey door 2,2
blue box holding red box holding yellow ball 3,2
goal 4,2
open red door 6,2
floor 1,3
red floor 2,3
lava 3,3
wall 5,3
empty 3,4
carrying purple box holding yellow key
end"""
RICH_GRID = """grid 7x5
W W W W W W W
. Kr Ab Bg[Kb] Dyo . Wp
W Dpl Dxc Bb[Br[Ay]] ^G . Dro
W F Fr V . W W
W W W . W W W
carrying Bp[Ky]
end"""
RICH_DIFF = "agent 4,1 facing up\nwall 0,1\nempty 1,1\nred floor 3,4\ncarrying blue box holding red key"
RICH_GRID_DIFF = "0,1 W\n1,1 .\n4,1 ^Dyo\n4,2 G\n3,4 Fr\ncarrying Bb[Kr]"

# The brief's example room; hand-made transitions below start from variants of it.
ROOM = """room 6x6
agent 2,3 facing right
wall 3,1
locked yellow door 5,1
blue box holding red key 2,2
red key 3,2
goal 4,4
carrying none
end"""


def pose(text: str, agent: str, carrying: str = "none") -> str:
    """``ROOM``-like text with another agent line and carried object."""
    lines = text.split("\n")
    lines[1], lines[-2] = f"agent {agent}", f"carrying {carrying}"
    return "\n".join(lines)


def step_in_minigrid(text: str, action: int) -> str:
    """Load a state into a real 6x6 WAV env (MiniGrid's dynamics plus switch and WAV toggles), step it."""
    state = text_to_state(text)
    env = make_env("swirl/WAV-RandomPlay-4obj-6x6-v0")
    env.reset(seed=0)
    core = env.unwrapped
    core.grid = state.to_grid()
    core.agent_pos, core.agent_dir = state.agent_pos, state.agent_dir
    core.carrying = state.carrying.to_world_obj() if state.carrying else None
    env.step(action)
    return state_to_text(env, state_text_kind(text))


def interacting_action(env: gym.Env, rng: np.random.Generator) -> int:
    """Random, but picks up / toggles / drops / switches (WAV) when the cell in front allows it, so random
    transitions include the interactions, not only walking; the WAV tasks' scripted expert half the time."""
    core = env.unwrapped
    if hasattr(core, "expert_step") and rng.random() < 0.5:
        return expert_action(env, rng)
    x, y = core.front_pos
    front = core.grid.get(x, y) if 0 <= x < core.grid.width and 0 <= y < core.grid.height else None
    roll = rng.random()
    if front is not None and front.can_pickup() and roll < 0.4:
        return SWITCH if core.carrying is not None and getattr(core, "has_switch_action", False) else PICK_UP
    if front is not None and front.type in ("door", "box", "key", "ball") and roll < 0.6:
        return TOGGLE
    if front is None and core.carrying is not None and roll < 0.3:
        return DROP
    return int(rng.integers(env.action_space.n))


def check_texts(state: MiniGridState) -> None:
    grid, objects = state_to_text(state), state_to_text(state, "objects")
    assert state_text_kind(grid) == "grid" and state_text_kind(objects) == "objects"
    assert text_to_state(objects) == state
    assert state_to_text(text_to_state(objects), "objects") == objects  # canonical
    assert convert_state_text(grid, "objects") == objects and convert_state_text(objects, "grid") == grid


def check_diffs(before: MiniGridState, after: MiniGridState) -> dict[str, str]:
    diffs = {}
    for kind in STATE_TEXTS:
        text, next_text = state_to_text(before, kind), state_to_text(after, kind)
        diff = state_diff(text, next_text)
        assert apply_diff(text, diff) == next_text
        assert (diff == NO_CHANGE) == (before == after)
        other_kind = state_to_text(after, "objects" if kind == "grid" else "grid")
        assert state_diff(text, other_kind) == diff  # written in the kind of the first text
        diffs[kind] = diff
    return diffs


def transition_kind(before: MiniGridState, after: MiniGridState) -> str | None:
    if before.carrying is None and after.carrying is not None:
        return "pick up"
    if before.carrying is not None and after.carrying is None:
        return "drop"
    if before.carrying is not None and after.carrying != before.carrying:
        return "switch"
    changed = [(old, new) for old, new in zip(before.cells, after.cells) if old != new]
    if any(old is not None and new is not None and old.type == new.type == "door" for old, new in changed):
        return "toggle door"
    return None


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("env_id", REGISTRY)
def test_both_texts_and_diffs_are_lossless_on_every_registered_env(env_id):
    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    for seed in (0, 1, 2):
        env.reset(seed=seed)
        state = MiniGridState.from_env(env)
        check_texts(state)
        assert state_diff(state_to_text(state), state_to_text(state)) == NO_CHANGE
        for kind in STATE_TEXTS:
            assert apply_diff(state_to_text(state, kind), NO_CHANGE) == state_to_text(state, kind)
        for _ in range(20):
            _, _, terminated, truncated, _ = env.step(interacting_action(env, rng))
            after = MiniGridState.from_env(env)
            check_texts(after)
            check_diffs(state, after)
            state = after
            if terminated or truncated:
                break
    env.close()


@pytest.mark.parametrize(
    "env_id",
    ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-KeyCorridorS3R1-v0", "swirl/WAV-KeyDelivery-v0", "swirl/WAV-RandomPlay-4obj-6x6-v0"],
)
def test_random_transitions_include_the_interactions(env_id):
    env = make_env(env_id)
    rng = np.random.default_rng(1)
    seen: set[str | None] = set()
    env.reset(seed=0)
    state = MiniGridState.from_env(env)
    for step in range(400):
        _, _, terminated, truncated, _ = env.step(interacting_action(env, rng))
        after = MiniGridState.from_env(env)
        check_diffs(state, after)
        seen.add(transition_kind(state, after))
        state = after
        if terminated or truncated:
            env.reset(seed=step)
            state = MiniGridState.from_env(env)
    wanted = {"pick up", "drop"} | ({"switch"} if env_id.startswith("swirl/WAV-") else set())
    wanted |= {"toggle door"} if "Door" in env_id or "Corridor" in env_id else set()
    assert wanted <= seen


@pytest.mark.parametrize("env_id", ["swirl/WAV-KeyDelivery-v0", "swirl/WAV-RandomPlay-4obj-6x6-v0"])
def test_the_front_cell_line_names_the_cell_interactions_act_on(env_id):
    """Over random play in real MiniGrid: the line's position is the env's ``front_pos`` and its object is the one
    there, in both texts; every pick up takes what is there and every drop puts the carried object there."""
    env = make_env(env_id)
    rng = np.random.default_rng(2)
    env.reset(seed=0)
    state = MiniGridState.from_env(env)
    kinds = set()
    for step in range(300):
        core = env.unwrapped
        x, y = (int(v) for v in core.front_pos)
        obj = state.cell(x, y)
        assert front_cell_line(state_to_text(state, "objects")) == f"front {x},{y} {'empty' if obj is None else obj.words}"
        assert front_cell_line(state_to_text(state, "grid")) == f"front {x},{y} {'.' if obj is None else obj.code}"
        _, _, terminated, truncated, _ = env.step(interacting_action(env, rng))
        after = MiniGridState.from_env(env)
        kind = transition_kind(state, after)
        kinds.add(kind)
        if kind == "pick up":  # the object there, or what the box there held (the WAV rooms)
            assert obj is not None and after.carrying in (obj, obj.contains) and after.cell(x, y) != obj
        if kind == "drop":  # onto the floor, or into the box there (the WAV rooms)
            assert state.carrying in (after.cell(x, y), after.cell(x, y).contains)
        state = after
        if terminated or truncated:
            env.reset(seed=step)
            state = MiniGridState.from_env(env)
    assert {"pick up", "drop"} <= kinds
    env.close()


def test_the_front_cell_line_past_the_room_edge_and_on_bad_text():
    assert front_cell_line("room 3x3\nagent 2,1 facing right\nempty 2,1\ncarrying none\nend") == "front 3,1 outside"
    with pytest.raises(StateParseError, match="carrying"):
        front_cell_line("room 3x3\nagent 1,1 facing right\nend")


ASYMMETRY_ROOMS = [asymmetry_room(n) for n in ASYMMETRY_OBJECTS] + [asymmetry_room(ASYMMETRY_OBJECTS[0], level)
                                                                     for level in ASYMMETRY_NOISE_LEVELS[1:]]


@pytest.mark.parametrize("env_id", ASYMMETRY_ROOMS)
def test_the_asymmetry_rooms_stay_lossless_over_long_random_play(env_id):
    """Issue #31's rooms (up to 14 objects, up to 8 noisy tiles) through 300 steps of play: both texts and both
    diffs of every transition round-trip, through pick-ups, drops, switches and the tiles' colour changes."""
    env = make_env(env_id)
    rng = np.random.default_rng(3)
    env.reset(seed=3)
    state = MiniGridState.from_env(env)
    seen: set[str | None] = set()
    tile_changes = 0
    for _ in range(300):
        env.step(interacting_action(env, rng))
        after = MiniGridState.from_env(env)
        check_texts(after)
        check_diffs(state, after)
        seen.add(transition_kind(state, after))
        tile_changes += any(state.cell(x, y) != after.cell(x, y) for x, y in env.unwrapped.noisy_tiles)
        state = after
    assert {"pick up", "drop", "switch"} <= seen
    assert (tile_changes > 200) == ("Noise" in env_id)  # a noisy room's tiles change colour nearly every step


# ------------------------------------------------------------------------------------ objects text
def test_known_objects_text_of_a_small_env():
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    assert state_to_text(env, "objects") == "room 5x5\nagent 1,1 facing right\ngoal 3,3\ncarrying none\nend"


def test_rich_objects_text_is_the_rich_grid_text():
    state = text_to_state(RICH)
    assert state == text_to_state(RICH_GRID)
    assert state_to_text(state, "objects") == RICH and state_to_text(state) == RICH_GRID
    assert state.cell(0, 1) is None and state.cell(0, 0) == Obj("wall", "grey") and state.cell(6, 1) == Obj("wall", "purple")
    assert state.cell(3, 2) == Obj("box", "blue", contains=Obj("box", "red", contains=Obj("ball", "yellow")))
    assert (state.agent_pos, state.agent_dir, state.cell(4, 2)) == ((4, 2), 3, Obj("goal", "green"))
    assert Obj("door", "yellow", "locked").words == "locked yellow door" and Obj("lava", "red").words == "lava"


def test_the_brief_room_in_both_texts():
    assert convert_state_text(ROOM, "grid") == (
        "grid 6x6\nW W W W W W\nW . . W . Dyl\nW . Bb[Kr] Kr . W\nW . > . . W\nW . . . G W\nW W W W W W\ncarrying none\nend"
    )
    assert convert_state_text(convert_state_text(ROOM, "grid"), "objects") == ROOM


def test_unknown_text_kind_names_the_choices():
    with pytest.raises(ValueError, match="unknown state text 'words'; choose one of 'grid', 'objects'"):
        state_to_text(text_to_state(ROOM), "words")
    with pytest.raises(ValueError, match="choose one of"):
        convert_state_text(ROOM, "json")
    with pytest.raises(StateParseError, match="expected a header like 'grid 8x8' or 'room 8x8'"):
        state_text_kind("objects 6x6")


# ---------------------------------------------------------------------------------- hand-made diffs
@pytest.mark.parametrize(
    ("start", "action", "objects_diff", "grid_diff"),
    [
        (ROOM, 2, "agent 3,3 facing right", "2,3 .\n3,3 >"),  # move
        (ROOM, 0, "agent 2,3 facing up", "2,3 ^"),  # turn left
        (pose(ROOM, "3,3 facing up"), PICK_UP, "empty 3,2\ncarrying red key", "3,2 .\ncarrying Kr"),
        (pose(ROOM, "4,1 facing right", "yellow key"), TOGGLE, "open yellow door 5,1", "5,1 Dyo"),
        (pose(ROOM, "2,3 facing right", "green ball"), DROP, "green ball 3,3\ncarrying none", "3,3 Ag\ncarrying none"),
        (pose(ROOM, "3,3 facing up", "green ball"), SWITCH, "green ball 3,2\ncarrying red key", "3,2 Ag\ncarrying Kr"),
        (pose(ROOM, "2,3 facing up"), TOGGLE, "blue box 2,2\ncarrying red key", "2,2 Bb\ncarrying Kr"),  # WAV box
        (pose(ROOM, "4,3 facing down"), 2, "agent 4,4 facing down", "4,3 .\n4,4 vG"),  # onto the goal
        (ROOM, PICK_UP, NO_CHANGE, NO_CHANGE),  # nothing in front
    ],
)
def test_diffs_of_hand_made_transitions(start, action, objects_diff, grid_diff):
    after = step_in_minigrid(start, action)
    assert state_diff(start, after) == objects_diff
    assert apply_diff(start, objects_diff) == after
    start_grid, after_grid = convert_state_text(start, "grid"), convert_state_text(after, "grid")
    assert state_diff(start_grid, after_grid) == grid_diff
    assert apply_diff(start_grid, grid_diff) == after_grid


def test_rich_diffs_in_both_kinds():
    after = apply_diff(RICH, RICH_DIFF)
    assert state_diff(RICH, after) == RICH_DIFF
    assert state_diff(RICH_GRID, after) == RICH_GRID_DIFF
    assert apply_diff(RICH_GRID, RICH_GRID_DIFF) == convert_state_text(after, "grid")
    # any order, whitespace as in the texts, a line that changes nothing: all fine
    shuffled = "carrying  blue box holding red key\nred floor 3,4\ngoal 4,2\nempty 1,1\nwall 0,1\nagent 4,1 facing up"
    assert apply_diff(RICH, shuffled) == after
    assert apply_diff(RICH_GRID, "3,4 Fr\n0,1 Wx\n4,2 G\n4,1 ^Dyo\n1,1 .\ncarrying Bb[Kr]") == convert_state_text(after, "grid")


# ------------------------------------------------------------------------------------ strict errors
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RICH.replace("room 7x5", "room 7x"), r"^line 1: expected a header like 'room 8x8', got 'room 7x'$"),
        (RICH.replace("room 7x5", "room 07x5"), "line 1: expected a header like 'room 8x8'"),
        (RICH.replace("facing up", "facing north"), r"^line 2: unknown direction 'north' \(expected right, down, left or up\)$"),
        (RICH.replace("agent 4,2 facing up\n", ""), r"^line 2: expected 'agent X,Y facing right\|down\|left\|up', got 'empty 0,1'$"),
        (RICH.replace("red key 1,1", "rde key 1,1"), r"^line 4: unknown word 'rde' in 'rde key'$"),
        (RICH.replace("red key 1,1", "red key red 1,1"), r"^line 4: 'red' is out of place in 'red key red'"),
        (RICH.replace("red key 1,1", "red key 1;1"), r"^line 4: bad position '1;1' \(expected X,Y like 3,2\)$"),
        (RICH.replace("red key 1,1", "red key 01,1"), "line 4: bad position '01,1'"),
        (RICH.replace("red key 1,1", "red key 7,1"), r"^line 4: position 7,1 is outside the 7x5 room$"),
        (RICH.replace("blue ball 2,1", "blue ball 1,1"), r"^line 5: cell 1,1 is listed twice$"),
        (RICH.replace("blue ball 2,1", "blue ball 0,0"), r"^line 5: cell 0,0 is out of order \(cells are listed row by row, y then x; 1,1 came before it\)$"),
        (RICH.replace("empty 3,4", "empty 3,3"), r"^line 18: cell 3,3 is listed twice$"),
        (RICH.replace("lava 3,3", "empty 3,3"), r"^line 16: the empty interior cell 3,3 must be left out$"),
        (RICH.replace("empty 3,4", "wall 3,4"), r"^line 18: the plain border wall at 3,4 must be left out$"),
        (RICH.replace("goal 4,2", "green goal 4,2"), r"^line 12: write 'goal', not 'green goal' \(green is its default colour\)$"),
        (RICH.replace("blue ball", "ball"), r"^line 5: a ball needs a colour \(red, green, blue, purple, yellow, grey\)$"),
        (RICH.replace("closed grey door", "grey door"), r"^line 10: a door needs its state first \(open, closed or locked\)$"),
        (RICH.replace("red key 1,1", "open red key 1,1"), r"^line 4: only a door is open, not a key$"),
        (RICH.replace("blue ball 2,1", "blue ball holding red key 2,1"), r"^line 5: only a box can hold an object, not a ball$"),
        (RICH.replace("holding yellow key", "holding"), r"^line 19: 'holding' needs an object after it in 'purple box holding'$"),
        (RICH.replace("carrying purple box holding yellow key\n", ""), r"^line 19: expected a 'carrying' line before 'end'$"),
        (RICH[: RICH.index("\ncarrying")], r"^truncated: no 'carrying' line after line 18$"),
        (RICH[: -len("\nend")], r"^truncated: no 'end' line after line 19$"),
        (RICH.replace("\nend", "\nfin"), r"^line 20: expected 'end', got 'fin'$"),
        (RICH + "\nred key 1,1", r"^line 21: unexpected text after 'end': 'red key 1,1'$"),
        ("room 5x5", r"^truncated: no 'agent X,Y facing \.\.\.' line after the header$"),
    ],
)
def test_malformed_objects_text_says_where_and_what(text, message):
    with pytest.raises(StateParseError, match=message):
        text_to_state(text)


@pytest.mark.parametrize(
    ("state", "diff", "message"),
    [
        (RICH, "red key 1,1\nblue key 1,1", r"^diff line 2: cell 1,1 is changed twice$"),
        (RICH, "agent 1,1 facing up\nagent 1,1 facing up", r"^diff line 2: a second 'agent' line$"),
        (RICH, "carrying none\ncarrying none", r"^diff line 2: a second 'carrying' line$"),
        (RICH, "red kye 1,1", r"^diff line 1: unknown word 'kye' in 'red kye'$"),
        (RICH, "red key 9,1", r"^diff line 1: position 9,1 is outside the 7x5 room$"),
        (RICH, "red key", r"^diff line 1: bad position 'key' \(expected X,Y like 3,2\)$"),
        (RICH, "agent 1,1", r"^diff line 1: expected 'agent X,Y facing"),
        (RICH, "empty 1,1\n\nempty 2,1", r"^diff line 2: expected '<object> X,Y' or 'empty X,Y', got ''$"),
        (RICH, "empty 1,1\nno change", r"^diff line 2: 'no change' must be the whole diff$"),
        (RICH, "1,1 Kr", r"^diff line 1: bad position 'Kr'"),  # a grid diff does not apply to an objects text
        (RICH, "", r"^empty diff \(write 'no change' when nothing changes\)$"),
        (RICH_GRID, "5,3 >", r"^2 agents in the grid at \(4,2\), \(5,3\) after the diff; expected exactly one$"),
        (RICH_GRID, "4,2 G", r"^no agent in the grid after the diff \(expected one of > v < \^\)$"),
        (RICH_GRID, "1,1 Qr", r"^diff line 1, cell 1,1: unknown object letter 'Q'"),
        (RICH_GRID, "1,1 Kr\n1,1 Kb", r"^diff line 2: cell 1,1 is changed twice$"),
        (RICH_GRID, "9,1 Kr", r"^diff line 1: position 9,1 is outside the 7x5 room$"),
        (RICH_GRID, "carrying K", r"^diff line 1 \(carrying\): key needs a colour"),
        (RICH_GRID, "red key 1,1", r"^diff line 1: expected 'X,Y CODE' or 'carrying CODE', got 'red key 1,1'$"),
        (RICH_GRID, None, r"^expected a diff text, got NoneType$"),
    ],
)
def test_malformed_diff_says_where_and_what(state, diff, message):
    with pytest.raises(StateParseError, match=message):
        apply_diff(state, diff)


def test_diff_of_rooms_of_different_sizes_is_an_error():
    with pytest.raises(StateParseError, match="different room sizes, 7x5 and 6x6"):
        state_diff(RICH, ROOM)


# ---------------------------------------------------------------------------------------------- fuzz
def words_per_line(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().split("\n")]


def test_every_truncation_of_an_objects_text_raises():
    for end in range(len(RICH)):
        prefix = RICH[:end]
        if prefix.strip() == RICH.strip():
            continue
        with pytest.raises(StateParseError):
            text_to_state(prefix)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.text(max_size=200).map(lambda tail: "room 5x4\n" + tail))
def test_garbage_never_crashes_the_objects_parser(text):
    try:
        state = text_to_state(text)
    except StateParseError:
        return
    for kind in STATE_TEXTS:
        assert text_to_state(state_to_text(state, kind)) == state


MUTATIONS = st.sampled_from(list("roomagentfacingupdwlkybxhsplzv0123456789, \nQ")) | st.just("")


@settings(max_examples=500, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(RICH) - 1), replacement=MUTATIONS)
def test_mutated_objects_text_is_rejected_or_means_exactly_what_it_says(position, replacement):
    """One character replaced or deleted: either a StateParseError, or a state whose own objects text has
    the mutated text's words, line by line (one text per state: nothing was guessed or reordered)."""
    mutated = RICH[:position] + replacement + RICH[position + 1 :]
    try:
        state = text_to_state(mutated)
    except StateParseError:
        return
    assert words_per_line(state_to_text(state, "objects")) == words_per_line(mutated)


def check_applied_diff(state_text: str, diff: str) -> None:
    """``diff`` (maybe mangled) is rejected, or it means exactly what it says: each of its lines is true of
    the result, and everything that changed is named by one of its lines."""
    try:
        result = apply_diff(state_text, diff)
    except StateParseError:
        return
    kind = state_text_kind(state_text)
    assert state_text_kind(result) == kind and state_to_text(text_to_state(result), kind) == result
    lines = diff.strip().split("\n")
    if lines != [NO_CHANGE]:
        for line in lines:
            assert apply_diff(result, line) == result
    actual = state_diff(state_text, result)
    assert apply_diff(state_text, actual) == result
    if actual == NO_CHANGE:
        return
    if kind == "objects":
        assert {" ".join(line.split()) for line in actual.split("\n")} <= {" ".join(line.split()) for line in lines}
    else:
        key = lambda line: line.split()[0]  # noqa: E731  (a position or "carrying")
        assert {key(line) for line in actual.split("\n")} <= {key(line) for line in lines if line.split()}


@pytest.mark.parametrize(("state", "diff"), [(RICH, RICH_DIFF), (RICH_GRID, RICH_GRID_DIFF)])
def test_every_truncation_of_a_diff_is_rejected_or_exact(state, diff):
    for end in range(len(diff) + 1):
        check_applied_diff(state, diff[:end])


DIFF_MUTATIONS = st.sampled_from(list("agentfacingupdwlkybrxhpFWKBADGVo[]><^v0123456789, \nQ")) | st.just("")


@settings(max_examples=400, deadline=None)
@given(
    which=st.sampled_from([(RICH, RICH_DIFF), (RICH_GRID, RICH_GRID_DIFF)]),
    position=st.integers(min_value=0, max_value=len(RICH_GRID_DIFF) - 1),
    replacement=DIFF_MUTATIONS,
)
def test_mutated_diff_is_rejected_or_means_exactly_what_it_says(which, position, replacement):
    state, diff = which
    position %= len(diff)
    check_applied_diff(state, diff[:position] + replacement + diff[position + 1 :])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([ROOM, convert_state_text(ROOM, "grid")]), st.text(max_size=60))
def test_garbage_diff_never_crashes(state, diff):
    check_applied_diff(state, diff)
