"""The WAV MiniGrid tasks: switch/toggle rules, noisy tiles, scripted experts."""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.core.world_object import Ball, Box, Door, Key

from swirl.builders.minigrid_dataset import collect_episode
from swirl.envs.experts import expert_action, go_to
from swirl.envs.identifiability import equivalent_actions_for_rows, is_identifiable, is_noop
from swirl.envs.minigrid import MiniGridState, Obj, make_env, resimulate, state_to_text, text_to_state
from swirl.envs.wav_tasks import (ASYMMETRY_NOISE_LEVELS, ASYMMETRY_OBJECTS, SWITCH, TILES_PER_NOISE_LEVEL,
                                  asymmetry_room)

TURN_LEFT, TURN_RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(6)


def room_with(front, carrying=None):
    """A KeyDelivery env with the agent at (3, 3) facing right at ``front`` in (4, 3)."""
    env = make_env("swirl/WAV-KeyDelivery-v0")
    env.reset(seed=0)
    core = env.unwrapped
    for x in range(1, 7):
        for y in range(1, 7):
            core.grid.set(x, y, None)
    core.agent_pos, core.agent_dir = (3, 3), 0
    core.grid.set(4, 3, front)
    core.carrying = carrying
    return env


def front_and_carried(env):
    state = MiniGridState.from_env(env)
    return state.cell(4, 3), state.carrying


def test_switch_exchanges_carried_and_front_objects():
    env = room_with(Ball("blue"), carrying=Key("red"))
    env.step(SWITCH)
    assert front_and_carried(env) == (Obj("key", "red"), Obj("ball", "blue"))


@pytest.mark.parametrize(
    ("front", "carrying"),
    [(Ball("blue"), None), (None, Key("red")), (Door("red"), Key("red"))],
)
def test_switch_needs_a_carried_object_and_a_pickable_front(front, carrying):
    env = room_with(front, carrying)
    before = state_to_text(env)
    env.step(SWITCH)
    assert state_to_text(env) == before


def test_toggle_flips_key_and_ball_colours_red_blue():
    env = room_with(Key("red"))
    env.step(TOGGLE)
    assert front_and_carried(env)[0] == Obj("key", "blue")
    env.step(TOGGLE)
    assert front_and_carried(env)[0] == Obj("key", "red")
    env = room_with(Ball("blue"))
    env.step(TOGGLE)
    assert front_and_carried(env)[0] == Obj("ball", "red")


def test_toggle_on_a_box_swaps_carried_object_and_contents():
    env = room_with(Box("red", contains=Ball("blue")), carrying=Key("red"))
    env.step(TOGGLE)
    assert front_and_carried(env) == (Obj("box", "red", contains=Obj("key", "red")), Obj("ball", "blue"))
    env.step(TOGGLE)  # swap back
    assert front_and_carried(env) == (Obj("box", "red", contains=Obj("ball", "blue")), Obj("key", "red"))
    env = room_with(Box("blue", contains=Key("blue")))
    env.step(TOGGLE)  # empty-handed: take the contents out, the box stays
    assert front_and_carried(env) == (Obj("box", "blue"), Obj("key", "blue"))


def test_doors_still_toggle_as_in_minigrid():
    env = room_with(Door("red"))
    env.step(TOGGLE)
    assert front_and_carried(env)[0] == Obj("door", "red", "open")


def noisy_tile_colours(env_id, seed, steps):
    env = make_env(env_id)
    env.reset(seed=seed)
    core = env.unwrapped
    history = []
    for _ in range(steps):
        env.step(TURN_LEFT)
        history.append(tuple(core.grid.get(x, y).color for x, y in core.noisy_tiles))
    return core.noisy_tiles, history


def test_noisy_tiles_change_colour_every_step_and_are_seeded():
    tiles, history = noisy_tile_colours("swirl/WAV-KeyDelivery-Noisy-v0", seed=5, steps=20)
    assert len(tiles) == 6
    assert len(set(history)) > 10  # the colours really change
    assert noisy_tile_colours("swirl/WAV-KeyDelivery-Noisy-v0", seed=5, steps=20)[1] == history
    assert noisy_tile_colours("swirl/WAV-KeyDelivery-Noisy-v0", seed=6, steps=20)[1] != history


@pytest.mark.parametrize(
    "env_id",
    ["swirl/WAV-KeyDelivery-v0", "swirl/WAV-BallDelivery-v0", "swirl/WAV-ObjectMatching-v0",
     "swirl/WAV-KeyDelivery-Noisy-v0", "swirl/WAV-KeyDelivery-6x6-v0", "swirl/WAV-BallDelivery-6x6-v0",
     "swirl/WAV-ObjectMatching-6x6-v0"],
)
def test_scripted_expert_solves_the_task(env_id):
    env = make_env(env_id)
    assert env.unwrapped.width == env.unwrapped.height == (6 if "6x6" in env_id else 8)
    rng = np.random.default_rng(0)
    used = set()
    for seed in range(10):
        env.reset(seed=seed)
        actions = []
        for _ in range(150):
            action = expert_action(env, rng)
            actions.append(action)
            _, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        assert terminated and reward > 0, f"{env_id} seed {seed}: expert did not finish"
        used |= set(actions)
        if "Delivery" in env_id:  # key/ball into the box (toggle), box for the other object (switch)
            assert {PICKUP, TOGGLE, SWITCH} <= set(actions)
    assert {PICKUP, TOGGLE} <= used  # it interacts, not only walks
    if "ObjectMatching" in env_id:
        assert DROP in used


def test_reaching_the_goal_without_doing_the_task_earns_nothing():
    env = make_env("swirl/WAV-KeyDelivery-v0")
    env.reset(seed=0)
    core = env.unwrapped
    for _ in range(100):
        action = go_to(core, core.goal_pos)
        if action is None:
            break
        _, reward, terminated, _, _ = env.step(action)
        if terminated:
            break
    assert terminated and reward == 0.0
    assert not core.task_complete()


@pytest.mark.parametrize("num_objects", [6, 10, 14])
def test_random_play_room_has_the_requested_objects(num_objects):
    env = make_env(f"swirl/WAV-RandomPlay-{num_objects}obj-v0")
    env.reset(seed=0)
    state = MiniGridState.from_env(env)
    objects = [cell for cell in state.cells if cell is not None and cell.type in ("key", "ball", "box")]
    assert len(objects) == num_objects
    assert {obj.color for obj in objects} <= {"red", "blue"}


def test_random_play_expert_interacts():
    env = make_env("swirl/WAV-RandomPlay-8obj-Noisy-v0")
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    changes = 0
    for _ in range(100):
        before = MiniGridState.from_env(env)
        env.step(expert_action(env, rng))
        after = MiniGridState.from_env(env)
        noisy = set(env.unwrapped.noisy_tiles)
        cells_changed = [
            i for i, (a, b) in enumerate(zip(before.cells, after.cells))
            if a != b and (i % after.width, i // after.width) not in noisy
        ]
        changes += bool(cells_changed) or before.carrying != after.carrying
    assert changes >= 10


def test_too_many_objects_is_a_clear_error():
    with pytest.raises(ValueError, match="num_objects=40 does not fit a 10x10 room"):
        make_env("swirl/WAV-RandomPlay-8obj-v0", num_objects=40)


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-8x8-v0"])
def test_doorkey_expert_unlocks_the_door_and_reaches_the_goal(env_id):
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    for seed in range(5):
        env.reset(seed=seed)
        actions = []
        for _ in range(100):
            actions.append(expert_action(env, rng))
            _, reward, terminated, truncated, _ = env.step(actions[-1])
            if terminated or truncated:
                break
        assert terminated and reward > 0 and {PICKUP, TOGGLE} <= set(actions)


def test_envs_without_an_expert_say_so():
    with pytest.raises(ValueError, match="no scripted expert for EmptyEnv"):
        expert_action(make_env("MiniGrid-Empty-5x5-v0"), np.random.default_rng(0))


def box_in_front(env_id: str, **kwargs):
    """An env whose agent carries a blue key and faces an empty red box."""
    env = make_env(env_id, **kwargs)
    env.reset(seed=0)
    core = env.unwrapped
    front = tuple(int(v) for v in core.front_pos)
    core.grid.set(*front, Box("red"))
    core.carrying = Key("blue")
    return env, core, front


@pytest.mark.parametrize("box_toggle", ["swap", "colour"])
def test_a_box_toggle_swaps_with_the_carried_object_or_flips_the_box_colour(box_toggle):
    env, core, front = box_in_front("swirl/WAV-RandomPlay-6obj-v0", box_toggle=box_toggle)
    before = state_to_text(env, "objects")
    env.step(core.actions.toggle)
    box = core.grid.get(*front)
    if box_toggle == "swap":  # the key goes into the box, the agent's hands are empty
        assert (box.color, box.contains.type, core.carrying) == ("red", "key", None)
    else:  # the box turns blue, the agent keeps its key, the box stays empty
        assert (box.color, box.contains, core.carrying.type) == ("blue", None, "key")
    assert state_to_text(env, "objects") != before
    env.step(core.actions.toggle)  # either rule undoes itself
    assert state_to_text(env, "objects") == before


def test_random_play_rooms_toggle_boxes_by_colour_and_the_tasks_by_swap():
    assert make_env("swirl/WAV-RandomPlay-10obj-Noisy-v0").unwrapped.box_toggle == "colour"
    assert make_env("swirl/WAV-RandomPlay-4obj-6x6-v0").unwrapped.box_toggle == "swap"  # the quality study's data
    assert make_env("swirl/WAV-KeyDelivery-v0").unwrapped.box_toggle == "swap"
    with pytest.raises(ValueError, match=r"box_toggle must be one of swap, colour \(got 'paint'\)"):
        make_env("swirl/WAV-RandomPlay-6obj-v0", box_toggle="paint")


# ------------------------------------------------------------------ the forward-inverse asymmetry rooms (#31)
@pytest.mark.parametrize(("num_objects", "level"), [(n, 0) for n in ASYMMETRY_OBJECTS]
                         + [(ASYMMETRY_OBJECTS[0], level) for level in ASYMMETRY_NOISE_LEVELS[1:]])
def test_the_asymmetry_rooms_share_one_size_and_hold_their_objects_and_tiles(num_objects, level):
    env = make_env(asymmetry_room(num_objects, level))
    for seed in range(5):
        env.reset(seed=seed)
        core, state = env.unwrapped, MiniGridState.from_env(env)
        assert (state.width, state.height) == (8, 8)  # a 6x6 floor
        objects = [cell for cell in state.cells if cell is not None and cell.type in ("key", "ball", "box")]
        floors = [cell for cell in state.cells if cell is not None and cell.type == "floor"]
        assert len(objects) == num_objects and {obj.color for obj in objects} <= {"red", "blue"}
        assert len(floors) == len(set(core.noisy_tiles)) == TILES_PER_NOISE_LEVEL * level
        assert 36 - num_objects - len(floors) >= 14  # room for the agent to walk and drop
        assert core.box_toggle == "colour"  # the random-play rule, as the 10x10 random-play rooms


def test_the_asymmetry_rooms_leave_the_existing_random_play_ids_as_they_were():
    assert asymmetry_room(14) == "swirl/WAV-RandomPlay-14obj-8x8-v0"
    assert asymmetry_room(6, 4) == "swirl/WAV-RandomPlay-6obj-8x8-Noise4-v0"
    rooms = {env_id: make_env(env_id).unwrapped for env_id in (
        "swirl/WAV-RandomPlay-14obj-v0", "swirl/WAV-RandomPlay-8obj-Noisy-v0", "swirl/WAV-RandomPlay-4obj-6x6-v0")}
    assert [(r.width, r.num_objects, r.num_noisy_tiles, r.box_toggle) for r in rooms.values()] == [
        (10, 14, 0, "colour"), (10, 8, 8, "colour"), (6, 4, 0, "swap")]


@pytest.fixture(scope="module", params=[asymmetry_room(ASYMMETRY_OBJECTS[0], ASYMMETRY_NOISE_LEVELS[-1]),
                                        "swirl/WAV-RandomPlay-8obj-Noisy-v0"])
def noisy_episode(request):
    """60 steps of random play in the noisiest asymmetry room and in a 10x10 noisy room (8 tiles each), as dataset
    columns."""
    env_id = request.param
    return collect_episode(make_env(env_id), env_id, 11, 0, max_steps=60, policy="expert",
                           rng=np.random.default_rng(11), epsilon=0.3)


def test_noisy_rows_resimulate_exactly_tile_colours_included(noisy_episode):
    rows, env = noisy_episode, None
    for i in range(0, 60, 6):
        env = resimulate(rows["env_id"][i], rows["seed"][i], rows["action_prefix"][i], env=env)
        assert MiniGridState.from_env(env) == text_to_state(rows["state"][i])
        env.step(rows["action_id"][i])
        assert MiniGridState.from_env(env) == text_to_state(rows["next_state"][i])


def test_noise_does_not_hide_the_action_that_was_taken(noisy_episode):
    """Every action is tried from a copy of the re-simulated env, RNG included, so each draws the row's own new tile
    colours: the recorded action always reproduces s'. A step that changed only the tiles is not a no-op (s' != s)
    but every do-nothing action explains it, so the identifiable split leaves it out."""
    rows = noisy_episode
    equivalent = equivalent_actions_for_rows(rows)
    assert all(action in found for action, found in zip(rows["action_id"], equivalent))
    tiles_only = [i for i, (s, n) in enumerate(zip(rows["state"], rows["next_state"]))
                  if only_tiles_changed(text_to_state(s), text_to_state(n))]
    assert tiles_only  # random play bumps into walls and picks up nothing
    for i in tiles_only:
        assert not is_noop(rows["state"][i], rows["next_state"][i])
        assert not is_identifiable(equivalent[i]) and len(equivalent[i]) >= 2
    assert sum(map(is_identifiable, equivalent)) >= 20  # moves, turns and interactions stay identifiable


def only_tiles_changed(state: MiniGridState, next_state: MiniGridState) -> bool:
    """The agent, what it carries and every object are as they were; some floor tile changed colour."""
    agent = (state.agent_pos, state.agent_dir, state.carrying)
    changed = [(a, b) for a, b in zip(state.cells, next_state.cells) if a != b]
    tiles = all(a is not None and b is not None and a.type == b.type == "floor" for a, b in changed)
    return agent == (next_state.agent_pos, next_state.agent_dir, next_state.carrying) and bool(changed) and tiles
