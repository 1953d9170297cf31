"""The MiniGrid codec: lossless on every registered env, strict on malformed text, actions, images."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swirl.envs.minigrid import (
    ACTION_TEXTS,
    MiniGridState,
    Obj,
    action_to_text,
    make_env,
    minigrid_env_ids,
    render_state,
    state_to_text,
    text_to_action,
    text_to_state,
)
from swirl.errors import ActionParseError, StateParseError, UnknownEnvError

# minigrid 3.2's wheels ship without the pattern images its WFC envs read at reset, so those cannot run.
REGISTRY = [env_id for env_id in minigrid_env_ids() if not env_id.startswith("MiniGrid-WFC-")]

# A state with every feature: coloured objects, a door in each state, nested box, agent on the goal.
RICH_TEXT = """grid 6x5
W W W W W W
W Kr Ab Bg[Kb] Dyo W
W Dpl Dxc Bb[Br[Ay]] >G W
W F Fr V . W
W W W W W W
carrying Bp[Ky]
end"""


def test_registry_is_covered():
    assert len(REGISTRY) > 150
    assert {"MiniGrid-DoorKey-8x8-v0", "BabyAI-BossLevel-v0", "swirl/WAV-KeyDelivery-v0"} <= set(REGISTRY)


@pytest.mark.parametrize("env_id", REGISTRY)
def test_lossless_on_every_registered_env(env_id):
    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    for seed in (0, 1, 2):
        env.reset(seed=seed)
        for _ in range(30):
            text = state_to_text(env)
            assert text_to_state(text) == MiniGridState.from_env(env)
            assert state_to_text(text_to_state(text)) == text  # canonical: re-serialising changes nothing
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                env.reset(seed=seed + 100)
    env.close()


def test_wfc_envs_skip_reason_is_still_true():
    """If a later minigrid ships the WFC patterns, this fails and the WFC ids should join the sweep."""
    wfc = [env_id for env_id in minigrid_env_ids() if env_id.startswith("MiniGrid-WFC-")]
    env = gym.make(wfc[0])
    with pytest.raises(Exception, match="imageio|ScaledMaze|pattern|No such file"):
        env.reset(seed=0)


def test_known_text_of_a_small_env():
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    assert state_to_text(env) == "grid 5x5\nW W W W W\nW > . . W\nW . . . W\nW . . G W\nW W W W W\ncarrying none\nend"
    env.step(2)  # move forward
    env.step(1)  # turn right: now facing down
    assert state_to_text(env).splitlines()[2] == "W . v . W"


def test_rich_text_parses_to_the_right_objects():
    state = text_to_state(RICH_TEXT)
    assert (state.width, state.height, state.agent_pos, state.agent_dir) == (6, 5, (4, 2), 0)
    assert state.cell(1, 1) == Obj("key", "red")
    assert state.cell(4, 1) == Obj("door", "yellow", "open")
    assert state.cell(1, 2) == Obj("door", "purple", "locked")
    assert state.cell(2, 2) == Obj("door", "grey", "closed")
    assert state.cell(3, 2) == Obj("box", "blue", contains=Obj("box", "red", contains=Obj("ball", "yellow")))
    assert state.cell(4, 2) == Obj("goal", "green")  # the agent stands on it
    assert state.cell(1, 3) == Obj("floor", "blue") and state.cell(2, 3) == Obj("floor", "red")
    assert state.cell(3, 3) == Obj("lava", "red") and state.cell(4, 3) is None
    assert state.carrying == Obj("box", "purple", contains=Obj("key", "yellow"))
    assert state_to_text(state) == RICH_TEXT


def test_state_round_trips_through_a_minigrid_grid():
    state = text_to_state(RICH_TEXT)
    grid = state.to_grid()
    rebuilt = tuple(Obj.from_world_obj(obj) for obj in grid.grid)
    assert rebuilt == state.cells


def test_every_truncation_raises():
    for end in range(len(RICH_TEXT)):
        prefix = RICH_TEXT[:end]
        if prefix.strip() == RICH_TEXT.strip():
            continue
        with pytest.raises(StateParseError):
            text_to_state(prefix)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RICH_TEXT.replace("Kr", "Qr"), r"line 3 \(row 1\), cell 1: unknown object letter 'Q'"),
        (RICH_TEXT.replace("grid 6x5", "grid 7x5"), r"line 2: grid row 0 has 6 cells, expected 7"),
        (RICH_TEXT.replace("grid 6x5", "grid 6x6"), "truncated"),
        (RICH_TEXT.replace("W F Fr", "W > Fr"), r"2 agents in the grid at \(4,2\), \(1,3\)"),
        (RICH_TEXT.replace(">G", "G"), "no agent"),
        (RICH_TEXT.replace("Kr", "K"), "key needs a colour"),
        (RICH_TEXT.replace("Dyo", "Dy"), "door needs a state"),
        (RICH_TEXT.replace("Ab", "Ab[Kr]"), "only a box can hold"),
        (RICH_TEXT.replace("Bg[Kb]", "Bg[Kb"), "unclosed"),
        (RICH_TEXT.replace("carrying Bp[Ky]", "holding Bp[Ky]"), "expected 'carrying"),
        (RICH_TEXT + "\nW W", "unexpected text after 'end'"),
        ("the agent moves forward", "expected a header"),
        ("", "expected a header"),
    ],
)
def test_malformed_text_says_where_and_what(text, message):
    with pytest.raises(StateParseError, match=message):
        text_to_state(text)


def test_non_string_input_is_a_parse_error():
    with pytest.raises(StateParseError, match="expected a state text"):
        text_to_state(None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_garbage_never_crashes_the_parser(text):
    try:
        state = text_to_state(text)
    except StateParseError:
        return
    assert text_to_state(state_to_text(state)) == state


@settings(max_examples=400, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(RICH_TEXT) - 1),
    replacement=st.sampled_from(list("WFDKABGVrgbpyxocl[]>v<^. \nQz0")) | st.just(""),
)
def test_mutated_text_is_rejected_or_means_exactly_what_it_says(position, replacement):
    """One character replaced or deleted: either a StateParseError, or a state whose own text equals the
    mutated text up to whitespace and default colours (so nothing was silently guessed)."""
    mutated = RICH_TEXT[:position] + replacement + RICH_TEXT[position + 1 :]
    try:
        state = text_to_state(mutated)
    except StateParseError:
        return
    canonical = state_to_text(state)
    assert text_to_state(canonical) == state
    normalise = lambda text: [line.split() for line in text.strip().splitlines()]  # noqa: E731
    explicit_defaults = {"Wx": "W", "Fb": "F", "Gg": "G", "Vr": "V"}
    mutated_cells = normalise(mutated)
    for row in mutated_cells:
        for i, code in enumerate(row):
            for explicit, default in explicit_defaults.items():
                code = code.replace(explicit, default)
            row[i] = code
    assert mutated_cells == normalise(canonical)


def test_actions_round_trip_and_reject_unknown_text():
    for index, text in enumerate(ACTION_TEXTS):
        assert text_to_action(text) == index
        assert action_to_text(index) == text
    assert action_to_text(6, "swirl/WAV-KeyDelivery-v0") == "switch"
    assert action_to_text(6, make_env("swirl/WAV-BallDelivery-v0")) == "switch"
    assert action_to_text(6, "MiniGrid-Empty-5x5-v0") == "done"
    assert text_to_action("switch") == 6
    assert text_to_action("  Move   Forward ") == 2
    with pytest.raises(ActionParseError, match="unknown action 'move forwards'; did you mean 'move forward'"):
        text_to_action("move forwards")
    with pytest.raises(ActionParseError, match="out of range"):
        action_to_text(7)


def test_render_from_text_matches_render_from_env():
    env = make_env("MiniGrid-DoorKey-8x8-v0")
    env.reset(seed=3)
    for action in (0, 2, 2, 1, 2):
        env.step(action)
    from_env = render_state(env, tile_size=8)
    from_text = render_state(text_to_state(state_to_text(env)), tile_size=8)
    assert from_env.size == (8 * 8, 8 * 8) and from_env.mode == "RGB"
    assert np.array_equal(np.asarray(from_env), np.asarray(from_text))
    assert render_state(env, tile_size=4).size == (32, 32)


def test_unknown_env_id_names_close_matches():
    with pytest.raises(UnknownEnvError, match=r"unknown environment id 'MiniGrid-DoorKey-8x8-v9'; did you mean .*MiniGrid-DoorKey-8x8-v0"):
        make_env("MiniGrid-DoorKey-8x8-v9")
