"""ManiSkill3 state diffs: exact text, round trips (hand-made and real transitions), strict errors, fuzzing.

Only the real-transition test needs the simulator (and Vulkan: run with scripts/with_vulkan.sh); it skips where
ManiSkill or a Vulkan driver is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from swirl.envs import maniskill as ms
from swirl.errors import StateParseError, SwirlError

STATE = """qpos 0.012 0.435 -0.007 -1.869 0.003 2.303 0.794 0.040 0.040
is_grasped 0.000
tcp_pose 0.012 -0.001 0.180 0.000 1.000 0.000 0.000
goal_pos -0.088 0.054 0.243
end"""
NEXT = """qpos 0.023 0.437 -0.007 -1.870 0.003 2.303 0.794 0.040 0.040
is_grasped 0.000
tcp_pose 0.024 -0.002 0.180 0.000 1.000 0.000 0.000
goal_pos -0.088 0.054 0.243
end"""
DIFF = """qpos +0.011 +0.002 +0.000 -0.001 +0.000 +0.000 +0.000 +0.000 +0.000
tcp_pose +0.012 -0.001 +0.000 +0.000 +0.000 +0.000 +0.000"""
SCHEMA = {"qpos": 9, "is_grasped": 1, "tcp_pose": 7, "goal_pos": 3}


def test_exact_diff_text_and_its_application():
    assert ms.state_diff(STATE, NEXT) == DIFF
    assert ms.apply_diff(STATE, DIFF) == NEXT
    assert ms.apply_diff(STATE, "\n".join(reversed(DIFF.splitlines()))) == NEXT  # any line order
    assert ms.state_diff(NEXT, STATE) == ("qpos -0.011 -0.002 +0.000 +0.001 +0.000 +0.000 +0.000 +0.000 +0.000\n"
                                          "tcp_pose -0.012 +0.001 +0.000 +0.000 +0.000 +0.000 +0.000")
    assert ms.state_diff("x 5 -3\nend", "x 2 -3\nend") == "x -3 +0"  # precision 0: no decimal point
    assert ms.apply_diff("x 5 -3\nend", "x -3 +0") == "x 2 -3\nend"


def test_no_change():
    assert ms.NO_CHANGE == "no change"
    assert ms.state_diff(STATE, STATE) == "no change"
    assert ms.apply_diff(STATE, "no change") == STATE
    assert ms.apply_diff(STATE, "  no change\n") == STATE
    assert ms.apply_diff(STATE, "goal_pos +0.000 -0.000 +0.000") == STATE  # an all-zero line changes nothing


def test_signed_zeros_do_not_break_equality():
    # state_to_text writes a value that rounds to zero as 0.000, never -0.000; the diff's zeros are +0.000
    near_zero = ms.state_to_text({"v": np.array([-0.0004, 0.0004, -0.0006])})
    assert near_zero == "v 0.000 0.000 -0.001\nend"
    later = ms.state_to_text({"v": np.array([0.0011, -0.0002, 0.0])})
    assert ms.state_diff(near_zero, later) == "v +0.001 +0.000 +0.001"
    assert ms.apply_diff(near_zero, ms.state_diff(near_zero, later)) == later
    assert ms.apply_diff(later, ms.state_diff(later, near_zero)) == near_zero
    # a hand-written "-0.000" equals 0.000; applying a diff writes it the way state_to_text does
    signed = "v -0.000 0.000 -0.001\nend"
    assert ms.state_diff(signed, near_zero) == ms.state_diff(near_zero, signed) == "no change"
    assert ms.apply_diff(signed, "no change") == near_zero
    assert ms.apply_diff("v 0.001\nend", "v -0.001") == "v 0.000\nend"


@pytest.mark.parametrize("precision", [0, 1, 3, 5])
def test_round_trip_on_random_states_is_exact_text(precision):
    rng = np.random.default_rng(precision)
    unit = 10.0 ** -precision
    for _ in range(200):
        fields = {name: rng.normal(0, rng.choice([unit, 1.0, 50.0]), size) for name, size in SCHEMA.items()}
        nxt = {name: values + (rng.random() < 0.5) * rng.normal(0, rng.choice([unit, 0.01, 3.0]), values.size)
               for name, values in fields.items()}
        state, next_state = ms.state_to_text(fields, precision), ms.state_to_text(nxt, precision)
        diff = ms.state_diff(state, next_state)
        assert ms.apply_diff(state, diff) == next_state
        parsed = ms.text_to_state(ms.apply_diff(state, diff), SCHEMA)
        assert all(np.abs(parsed[name] - nxt[name]).max() <= unit / 2 * (1 + 1e-9) + 1e-9 for name in SCHEMA)
        assert ms.apply_diff(next_state, ms.state_diff(next_state, state)) == state
        changed = [line.split()[0] for line in diff.splitlines()] if diff != "no change" else []
        assert changed == [name for name in SCHEMA if name in changed]  # the state's field order
        for line in diff.splitlines() if changed else []:
            for value in line.split()[1:]:
                assert value[0] in "+-" and len(value.partition(".")[2]) == precision


@pytest.mark.parametrize("diff, message", [
    ("tcp_pose +0.012 -0.001", "diff line 1: field 'tcp_pose' has 2 deltas; the state has 7 values"),
    ("qpos +0.011 +0.002 +0.000 -0.001 +0.000 +0.000 +0.000 +0.000 +0.000\ngripper +0.100",
     "diff line 2: unknown field 'gripper'; the state has qpos, is_grasped, tcp_pose, goal_pos"),
    ("goal_pos +0.001 0.002 +0.000",
     "diff line 1: field 'goal_pos': '0.002' is not a signed number with 3 decimals like +0.012"),
    ("goal_pos +0.001 +0.02 +0.000",
     "diff line 1: field 'goal_pos': '+0.02' is not a signed number with 3 decimals like +0.012"),
    ("goal_pos +0.001 +1e-3 +0.000",
     "diff line 1: field 'goal_pos': '+1e-3' is not a signed number with 3 decimals like +0.012"),
    ("goal_pos +0.001 +0.000 +0.000\ngoal_pos +0.001 +0.000 +0.000", "diff line 2: field 'goal_pos' appears twice"),
    (DIFF + "\nend", "diff line 3: unknown field 'end'; the state has qpos, is_grasped, tcp_pose, goal_pos"),
    (DIFF + "\nThe gripper moved right.",
     "diff line 3: unknown field 'The'; the state has qpos, is_grasped, tcp_pose, goal_pos"),
    ("no change\n" + DIFF, "diff line 1: 'no change' must be the whole diff"),
    ("goal_pos +0.001 +0.000 +0.000\n\ngoal_pos +0.001",
     "diff line 2: empty line; write one 'field +0.012 ...' line per changed field"),
    ("  \n", "the diff is empty; write 'no change' when nothing changes"),
])
def test_malformed_diffs_are_exact_one_line_errors(diff, message):
    with pytest.raises(StateParseError) as caught:
        ms.apply_diff(STATE, diff)
    assert str(caught.value) == message


@pytest.mark.parametrize("state, next_state, message", [
    (STATE, NEXT.replace("goal_pos -0.088 0.054 0.243\n", ""),
     "the next state's fields do not match the state's: expected qpos[9], is_grasped[1], tcp_pose[7], goal_pos[3]; "
     "got qpos[9], is_grasped[1], tcp_pose[7]"),
    ("v 0.10 0.20\nend", "v 0.100 0.200\nend", "the next state has 3 decimals; the state has 2"),
    ("v 0.10 0.2\nend", "v 0.10 0.20\nend", "state: line 1: field 'v' value '0.2' has 1 decimals; the state uses 2"),
    ("v 0.1\nend", "v 1e-1\nend",
     "next state: line 1: field 'v' value '1e-1' is not a fixed-precision number like -0.012"),
    ("v 0.1\n", "v 0.1\nend", "state: a state must end with a line 'end'"),
    ("end", "end", "state: a state needs at least one field"),
])
def test_state_texts_a_diff_cannot_use_are_exact_errors(state, next_state, message):
    with pytest.raises(StateParseError) as caught:
        ms.state_diff(state, next_state)
    assert str(caught.value) == message


def test_a_blank_line_in_a_state_is_a_parse_error():
    with pytest.raises(StateParseError, match="line 2: expected 'name value ...'"):
        ms.text_to_state("tcp_pose 0.1\n\nend")


def _apply_or_parse_error(diff: str) -> None:
    try:
        result = ms.apply_diff(STATE, diff)
    except StateParseError as error:
        assert "\n" not in str(error) and str(error)
        return
    ms.text_to_state(result, SCHEMA)  # whatever is accepted is a whole state


def test_fuzzed_diffs_apply_or_raise_state_parse_error():
    full = DIFF + "\ngoal_pos -0.100 +0.000 +1.250"
    for cut in range(len(full) + 1):
        _apply_or_parse_error(full[:cut])
        if cut and full[cut - 1] != "\n" and full[cut:cut + 1] not in ("\n", ""):  # inside a line: never applies
            with pytest.raises(StateParseError):
                ms.apply_diff(STATE, full[:cut])
    for cut in range(len("no change") + 1):
        _apply_or_parse_error("no change"[:cut])
    rng = np.random.default_rng(0)
    alphabet = list("+-.0123456789 \n\tabceghnopqrstz_") + ["é", "\x00", "∞", "nan", "inf", "1e5", "no change"]
    for _ in range(3000):
        text = list(full if rng.random() < 0.8 else "no change")
        for _ in range(rng.integers(1, 4)):
            where = int(rng.integers(0, len(text) + 1))
            kind = rng.integers(3)
            if kind == 0 and text:
                del text[min(where, len(text) - 1)]
            elif kind == 1:
                text.insert(where, str(rng.choice(alphabet)))
            elif text:
                text[min(where, len(text) - 1)] = str(rng.choice(alphabet))
        _apply_or_parse_error("".join(text))
    for junk in (None, 12, b"qpos", "\x00", "qpos " + "+0.000 " * 10000):
        _apply_or_parse_error(junk)


# ------------------------------------------------------------------------------------------- real
@pytest.fixture(scope="module")
def push_cube():
    try:
        env = ms.make_env("PushCube-v1")
    except SwirlError as error:  # ManiSkill not installed, or no Vulkan driver
        pytest.skip(str(error))
    yield env
    env.close()


def test_round_trip_on_real_transitions(push_cube):
    rng = np.random.default_rng(3)
    obs = ms.reset(push_cube, 3)
    changed = set()
    for _ in range(8):
        action, _ = ms.quantise_action(rng.uniform(-1, 1, push_cube.action_space.shape), push_cube.action_space)
        next_obs = ms.step(push_cube, action)[0]
        for precision in (1, 3):
            state = ms.state_to_text(ms.observation_fields(obs), precision)
            next_state = ms.state_to_text(ms.observation_fields(next_obs), precision)
            diff = ms.state_diff(state, next_state)
            assert ms.apply_diff(state, diff) == next_state
            changed |= {line.split()[0] for line in diff.splitlines()} - {"no"}
        obs = next_obs
    assert {"qpos", "tcp_pose"} <= changed
