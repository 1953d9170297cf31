"""FrozenLake, the third environment family and the worked example of adding one (docs/layout.md): the codec on every
transition of real episodes, its one-line errors, actions and envs, the dataset builder's splits, the run config,
and one tiny SWIRL run (warm start + one iteration, the tiny model) that writes its metrics."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from gymnasium.envs.toy_text.frozen_lake import DOWN, LEFT, RIGHT, UP

from swirl.builders.frozenlake_dataset import FrozenLakeDataFields, build_frozenlake_dataset, build_from_config
from swirl.config_fields import parse_config
from swirl.data import domain_of, load_dataset_dict, save_dataset_dict
from swirl.envs import frozenlake as fl
from swirl.envs.domain import DOMAINS, domain_of_columns, get_domain
from swirl.errors import ActionParseError, StateParseError, SwirlError, UnknownEnvError
from swirl.training.swirl_config import SwirlFrozenLakeConfig

ENV_IDS = ("FrozenLake-v1", "FrozenLake8x8-v1")
START = "lake 4x4\nS F F F\nF H F H\nF F F H\nH F F G\nagent 0,0\nend"


@pytest.fixture(scope="module")
def envs():
    made = {env_id: fl.make_env(env_id) for env_id in ENV_IDS}
    yield made
    for env in made.values():
        env.close()


@pytest.fixture(scope="module")
def built():
    return build_frozenlake_dataset(list(ENV_IDS), episodes=10, max_steps=30, test_episodes=6, seed=1, progress=False)


def play(env, seed: int, rng: np.random.Generator, epsilon: float, max_steps: int = 40) -> list[tuple]:
    """One real episode: (state text, action, next state text, the FrozenLakeState gymnasium is in after the step)."""
    env.reset(seed=seed)
    steps = []
    for _ in range(max_steps):
        state = fl.FrozenLakeState.from_env(env)
        action = fl.expert_action(state, rng) if rng.random() >= epsilon else int(rng.integers(4))
        _, _, terminated, truncated, _ = env.step(action)
        steps.append((fl.state_to_text(state), action, fl.state_to_text(env), fl.FrozenLakeState.from_env(env)))
        if terminated or truncated:
            break
    return steps


# ------------------------------------------------------------------------------------------------ codec
def test_the_state_text_shows_the_map_and_the_agent(envs):
    env = envs["FrozenLake-v1"]
    env.reset(seed=0)
    assert fl.state_to_text(env) == START
    env.step(DOWN)
    env.step(RIGHT)  # into the hole at 1,1
    state = fl.text_to_state(fl.state_to_text(env))
    assert (state.agent, state.cell) == ((1, 1), "H")
    assert fl.state_to_text(env).splitlines()[-2:] == ["agent 1,1", "end"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_texts_and_diffs_round_trip_on_every_transition(envs, env_id):
    rng = np.random.default_rng(0)
    transitions = [step for seed in range(30) for step in play(envs[env_id], seed, rng, epsilon=0.5)]
    for state_text, action, next_text, truth in transitions:
        state = fl.text_to_state(state_text)
        assert fl.state_to_text(state) == state_text and fl.text_to_state(next_text) == truth
        assert state.moved(action) == truth  # the codec's step is gymnasium's (not slippery)
        diff = fl.state_diff(state_text, next_text)
        assert fl.apply_diff(state_text, diff) == next_text
        assert diff == (fl.NO_CHANGE if state.agent == truth.agent else f"agent {truth.agent[0]},{truth.agent[1]}")
    assert {truth.cell for *_, truth in transitions} >= {"F", "H", "G"}  # holes and goals were reached
    assert Counter(fl.state_diff(s, n) == fl.NO_CHANGE for s, _, n, _ in transitions).keys() == {True, False}


@pytest.mark.parametrize("text, message", [
    ("", "line 1: expected a header like 'lake 4x4', got ''"),
    (START.replace("lake 4x4", "grid 4x4"), "line 1: expected a header like 'lake 4x4'"),
    (START.rsplit("\n", 1)[0], "expected 7 lines for a 4x4 lake (header, 4 map rows, agent, end), got 6"),
    (START.replace("S F F F", "S F X F"), "line 2: expected 4 cells of S, F, H, G separated by spaces, got 'S F X F'"),
    (START.replace("S F F F", "S F F"), "line 2: expected 4 cells"),
    (START.replace("agent 0,0", "agent 4,0"), "line 6: agent 4,0 is off the 4x4 lake"),
    (START.replace("agent 0,0", "agent 0"), "line 6: expected 'agent ROW,COL', got 'agent 0'"),
    (START.replace("\nend", "\nfin"), "line 7: expected 'end', got 'fin'"),
])
def test_malformed_state_texts_are_one_line_errors(text, message):
    with pytest.raises(StateParseError) as error:
        fl.text_to_state(text)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("diff, message", [
    ("", "empty diff (write 'no change' when nothing changes)"),
    ("agent 9,9", "diff line 1: agent 9,9 is off the 4x4 lake"),
    ("agent 1,0\nagent 2,0", "a FrozenLake diff is one line"),
    ("no change\nagent 1,0", "a FrozenLake diff is one line"),
    ("move down", "diff line 1: expected 'agent ROW,COL', got 'move down'"),
])
def test_malformed_diffs_are_one_line_errors(diff, message):
    with pytest.raises(StateParseError) as error:
        fl.apply_diff(START, diff)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_diff_never_changes_the_map():
    other_map = START.replace("H F F G", "H F H G")
    with pytest.raises(StateParseError, match="different maps"):
        fl.state_diff(START, other_map)
    assert fl.apply_diff(START, " no change \n") == START and fl.apply_diff(START, "agent 0,0") == START


# ------------------------------------------------------------------------------------------ actions, envs
def test_action_texts_follow_gymnasium_ids():
    assert [fl.text_to_action(text) for text in ("left", "down", "right", "up")] == [LEFT, DOWN, RIGHT, UP]
    assert [fl.action_to_text(action) for action in range(4)] == list(fl.ACTION_TEXTS)
    assert fl.text_to_action("  Right ") == RIGHT
    with pytest.raises(ActionParseError, match="unknown action 'rigth'; did you mean 'right'"):
        fl.text_to_action("rigth")
    with pytest.raises(ActionParseError, match="out of range 0..3"):
        fl.action_to_text(4)


def test_make_env_is_deterministic_and_names_the_known_ids():
    env = fl.make_env("FrozenLake8x8-v1")
    assert all(len(outcomes) == 1 for moves in env.unwrapped.P.values() for outcomes in moves.values())  # no slip
    env.close()
    with pytest.raises(UnknownEnvError, match="unknown FrozenLake environment id 'FrozenLake-v2'; did you mean "
                                              "FrozenLake-v1"):
        fl.make_env("FrozenLake-v2")
    with pytest.raises(UnknownEnvError, match=r"'CartPole-v1'; \(known: FrozenLake-v1, FrozenLake8x8-v1\)"):
        fl.make_env("CartPole-v1")  # registered, but not a lake
    with pytest.raises(SwirlError, match="is_slippery=False only"):
        fl.make_env("FrozenLake-v1", is_slippery=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_expert_reaches_the_goal(envs, env_id):
    steps = play(envs[env_id], seed=0, rng=np.random.default_rng(0), epsilon=0.0)
    assert steps[-1][3].cell == "G" and all(truth.cell != "H" for *_, truth in steps)


# ------------------------------------------------------------------------------------------------ builder
def test_splits_by_episode_with_the_marker_column_and_the_actions(built):
    for split, rows in built.items():
        assert rows.num_rows > 0 and fl.MARKER_COLUMN in rows.column_names, split
        assert domain_of_columns(rows.column_names) is get_domain("frozenlake")
        assert rows[fl.MARKER_COLUMN] == [fl.text_to_state(text).cell for text in rows["next_state"]]
        maps = [(fl.text_to_state(s).rows, fl.text_to_state(n).rows) for s, n in zip(rows["state"], rows["next_state"])]
        assert all(before == after for before, after in maps)
    # only FrozenLake rows carry its marker: no other family's, and no other family names the same column
    markers = [domain.marker_column for domain in DOMAINS.values() if domain.marker_column]
    assert len(markers) == len(set(markers)) and set(markers) & set(built["test"].column_names) == {fl.MARKER_COLUMN}
    for env_id in ENV_IDS:
        episodes = {split: {e for e, i in zip(built[split]["episode"], built[split]["env_id"]) if i == env_id}
                    for split in built}
        assert len(episodes["labelled"]) == len(episodes["state_only"]) == 5  # half of 10 each
        assert episodes["labelled"] | episodes["state_only"] == set(range(10)) and min(episodes["test"]) >= 10
    for split in ("labelled", "state_only"):  # whole episodes: steps 0..n-1, ended by a hole, the goal or 30 steps
        rows = built[split]
        lengths = Counter(zip(rows["env_id"], rows["episode"]))
        assert sorted(rows["step"]) == sorted(step for length in lengths.values() for step in range(length))
        last = {(e, i): cell for e, i, step, cell in zip(rows["env_id"], rows["episode"], rows["step"],
                                                         rows[fl.MARKER_COLUMN]) if step == lengths[(e, i)] - 1}
        assert all(cell in "HG" or lengths[key] == 30 for key, cell in last.items())
    labelled = built["labelled"]
    assert labelled["action"] == [fl.ACTION_TEXTS[i] for i in labelled["action_id"]]
    assert set(built["state_only"]["action"]) == set(built["state_only"]["action_id"]) == {None}
    test_actions = Counter(zip(built["test"]["env_id"], built["test"]["action"]))
    for env_id in ENV_IDS:  # balanced over actions, per env
        assert len({count for (e, _), count in test_actions.items() if e == env_id}) == 1


def test_every_row_resimulates_to_its_next_state(built, envs):
    for split in ("labelled", "test"):
        for row in built[split]:
            env = fl.resimulate(row["env_id"], row["seed"], row["action_prefix"], env=envs[row["env_id"]])
            assert fl.state_to_text(env) == row["state"]
            env.step(row["action_id"])
            assert fl.state_to_text(env) == row["next_state"]


def test_the_build_is_deterministic_and_saves(tmp_path):
    first, second = (build_frozenlake_dataset(["FrozenLake-v1"], episodes=4, max_steps=10, test_episodes=2, seed=5,
                                              progress=False) for _ in range(2))
    assert {split: rows.to_dict() for split, rows in first.items()} == {split: rows.to_dict()
                                                                        for split, rows in second.items()}
    loaded = load_dataset_dict(save_dataset_dict(first, tmp_path / "lake"))
    assert domain_of(loaded["state_only"]) == "frozenlake" and loaded["test"].to_dict() == first["test"].to_dict()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"env_ids": ["FrozenLake-v9"]}, UnknownEnvError, "unknown FrozenLake environment id 'FrozenLake-v9'"),
    ({"env_ids": ["FrozenLake-v1"], "policy": "greedy"}, SwirlError,
     "unknown policy 'greedy'; choose one of random, expert"),
    ({"env_ids": []}, SwirlError, "no environment given"),
])
def test_bad_build_arguments_are_one_line_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_frozenlake_dataset(**kwargs, progress=False)


# ------------------------------------------------------------------------------------------ registration
def test_the_registry_record_and_the_run_config():
    domain = get_domain("frozenlake")
    assert (domain.codec, domain.make_env, domain.continuous, domain.image_fields) == (fl, fl.make_env, False, ())
    assert domain.action_texts == fl.ACTION_TEXTS and domain.marker_column == fl.MARKER_COLUMN
    assert SwirlFrozenLakeConfig.domain == FrozenLakeDataFields.domain == domain.name
    config = parse_config(SwirlFrozenLakeConfig, ["--env_ids", "FrozenLake8x8-v1", "--env_episodes", "3"], "test")
    assert (config.env_ids, config.env_episodes) == (["FrozenLake8x8-v1"], 3)
    assert config.output_dir == "runs/swirl-frozenlake"
    with pytest.raises(ValueError, match="env_policy must be one of random, expert"):
        SwirlFrozenLakeConfig(env_policy="greedy")
    with pytest.raises(ValueError, match="state_modality must be text: FrozenLake states have no images"):
        SwirlFrozenLakeConfig(state_modality="image")
    with pytest.raises(SwirlError, match="no images"):
        build_from_config(SwirlFrozenLakeConfig(), seed=0, images=True)


def test_the_discrete_fwm_metrics_read_frozenlake_states(built):
    """The evaluation scores FrozenLake predictions with the family's own fields (``Domain.state_fields``)."""
    from swirl.evaluation.world_model import world_model_metrics

    rows = built["test"]
    wrong = [fl.apply_diff(s, "agent 0,0") for s in rows["state"]]  # every prediction sends the agent home
    metrics = world_model_metrics(rows, wrong, np.zeros(rows.num_rows), list(rows["action"]), domain="frozenlake")
    assert metrics["fwm_parse_rate"] == 1.0 and metrics["idm_accuracy"] == 1.0 and metrics["fwm_exact_match"] < 1.0
    right = world_model_metrics(rows, list(rows["next_state"]), np.zeros(rows.num_rows), None, domain="frozenlake")
    assert right["fwm_exact_match"] == right["fwm_field_accuracy"] == right["fwm_changed_accuracy"] == 1.0
    assert set(get_domain("frozenlake").headline_metrics) <= set(metrics)


# ------------------------------------------------------------------------------------------------- SWIRL
def test_a_tiny_swirl_run_on_frozenlake_writes_its_metrics(tmp_path):
    from swirl.training.loop import run_swirl

    out = tmp_path / "run"
    config = SwirlFrozenLakeConfig(
        output_dir=str(out), model="tiny-qwen2", env_episodes=6, env_max_steps=8, env_test_episodes=3,
        state_format="diff", max_state_only_pairs=4, eval_rows=4, lora_r=8, lora_alpha=16, sft_steps=30,
        sft_learning_rate=5e-3, sft_batch_size=8, iterations=1, phase_steps=1, save_steps=1, learning_rate=1e-3,
        num_generations=2, prompts_per_step=2, max_state_tokens=16, max_action_tokens=4,
        annotation_min_logprob=-100.0, sampler="hf", disable_tqdm=True)
    lines = run_swirl(config, "test_frozenlake")
    assert [line["stage"] for line in lines] == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    written = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert written == json.loads(json.dumps(lines))
    for line in lines:
        assert all(0.0 <= line[name] <= 1.0 for name in get_domain("frozenlake").headline_metrics), line["stage"]
    assert domain_of(load_dataset_dict(out / "data")["labelled"]) == "frozenlake"
    assert json.loads((out / "iter_1" / "phase1" / "metrics.json").read_text())["training"]["steps"] == 1
    card = (out / "hub" / "README.md").read_text()
    assert "frozenlake" in card and "swirl.envs.frozenlake.apply_diff(state, diff)" in card
