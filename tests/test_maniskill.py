"""ManiSkill3: the codec on real PickCube/PushCube observations, the dataset builder (images, re-simulation),
the scripted experts, the CLI's one-line errors, and one SWIRL iteration of the recipe on ManiSkill text.

ManiSkill needs Vulkan: `make test` sources .vulkan/env.sh (made by `make maniskill-setup`) before pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swirl.builders.maniskill_dataset import build_maniskill_dataset, object_motion
from conftest import launch_recipe
from swirl.data import load_dataset_dict, save_dataset_dict
from swirl.envs import maniskill as ms
from swirl.envs.maniskill_experts import expert_action
from swirl.errors import ActionParseError, StateParseError, SwirlError

REPO = Path(__file__).resolve().parent.parent
SWIRL = [sys.executable, "-m", "swirl.cli"]
HALF_UNIT = 0.5e-3 + 1e-9  # half a unit in the last of 3 decimals (+ float64 rounding of the comparison)


@pytest.fixture(scope="module")
def envs():
    made = {env_id: ms.make_env(env_id) for env_id in ("PickCube-v1", "PushCube-v1")}
    yield made
    for env in made.values():
        env.close()


def random_observations(env, seed: int, steps: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    observations = [ms.reset(env, seed)]
    for _ in range(steps):
        action, _ = ms.quantise_action(rng.uniform(-1, 1, env.action_space.shape), env.action_space)
        observations.append(ms.step(env, action)[0])
    return observations


# ------------------------------------------------------------------------------------------ codec
@pytest.mark.parametrize("env_id", ["PickCube-v1", "PushCube-v1"])
def test_state_text_round_trip_is_within_half_a_unit(envs, env_id):
    for obs in random_observations(envs[env_id], seed=1, steps=12):
        fields = ms.observation_fields(obs)
        assert {"qpos", "qvel", "tcp_pose", "obj_pose", "goal_pos"} <= set(fields)
        text = ms.state_to_text(fields)
        parsed = ms.text_to_state(text, ms.state_schema(fields))
        assert list(parsed) == list(fields)
        for name, values in fields.items():
            assert np.abs(parsed[name] - values).max() <= HALF_UNIT, name
        assert ms.state_to_text(parsed) == text  # the text is a fixed point
        coarse = ms.text_to_state(ms.state_to_text(fields, precision=1))
        assert max(np.abs(coarse[name] - values).max() for name, values in fields.items()) <= 0.05 + 1e-9


def test_field_selection_keeps_the_order_asked_for(envs):
    obs = ms.reset(envs["PickCube-v1"], 0)
    fields = ms.observation_fields(obs, ["goal_pos", "tcp_pose"])
    assert list(fields) == ["goal_pos", "tcp_pose"] and fields["tcp_pose"].shape == (7,)
    with pytest.raises(SwirlError, match="unknown state field\\(s\\) gripper; this env has qpos, qvel"):
        ms.observation_fields(obs, ["gripper"])


def test_action_text_round_trip_and_quantisation(envs):
    space = envs["PickCube-v1"].action_space
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = rng.uniform(-1, 1, 4)
        vector, text = ms.quantise_action(action, space)
        assert len(text.split()) == 4 and all(len(part.split(".")[1]) == 2 for part in text.split())
        assert np.abs(vector - action).max() <= 0.005 + 1e-6
        assert ms.quantise_action(vector, space)[1] == text  # quantising twice changes nothing
        assert vector.dtype == np.float32
    assert ms.action_to_text([0.0001, -0.0001, 1, -1]) == "0.00 0.00 1.00 -1.00"  # no "-0.00"
    assert ms.quantise_action(np.array([3.0, -2.0, 0.5, 0.0]), space)[1] == "1.00 -1.00 0.50 0.00"  # clipped


@pytest.mark.parametrize("text, message", [
    ("0.1 0.2 0.3", "has 3 numbers; the env expects 4"),
    ("0.1 0.2 0.3 0.4 0.5", "has 5 numbers; the env expects 4"),
    ("0.1 0.2 1.5 0.4", "outside the action space"),
    ("move left", "is not 4 numbers separated by spaces"),
    ("", "has 0 numbers"),
])
def test_bad_action_texts_are_clear_errors(text, message):
    with pytest.raises(ActionParseError, match=message):
        ms.text_to_action(text, 4)


@pytest.mark.parametrize("text, message", [
    ("tcp_pose 0.1 0.2", "must end with a line 'end'"),
    ("tcp_pose 0.1 x\nend", "field 'tcp_pose' has a value that is not a number"),
    ("tcp_pose 0.1\ntcp_pose 0.2\nend", "field 'tcp_pose' appears twice"),
    ("tcp_pose\nend", "needs finite numbers"),
    ("0.5 0.1\nend", "expected 'name value ...'"),
    ("tcp_pose 0.1 0.2\nend", "expected tcp_pose\\[3\\]; got tcp_pose\\[2\\]"),
])
def test_malformed_state_texts_are_clear_errors(text, message):
    with pytest.raises(StateParseError, match=message):
        ms.text_to_state(text, {"tcp_pose": 3})


# ------------------------------------------------------------------------------------ environments
def test_unknown_task_is_one_line_with_close_matches():
    with pytest.raises(SwirlError, match="unknown ManiSkill environment id 'PickCube-v2'; did you mean PickCube-v1"):
        ms.make_env("PickCube-v2")
    with pytest.raises(SwirlError, match="unknown image source 'depth'"):
        ms.make_env("PickCube-v1", images="depth")


def test_same_seed_and_actions_give_the_same_states(envs):
    first = [ms.state_to_text(ms.observation_fields(o)) for o in random_observations(envs["PushCube-v1"], 4, 8)]
    second = [ms.state_to_text(ms.observation_fields(o)) for o in random_observations(envs["PushCube-v1"], 4, 8)]
    assert first == second and len(set(first)) > 1


@pytest.mark.parametrize("env_id, key", [("PickCube-v1", "lift"), ("PushCube-v1", "push")])
def test_experts_move_the_object_and_random_actions_barely_do(envs, env_id, key):
    env = envs[env_id]
    expert_motion, random_motion, successes = [], [], 0
    for seed in range(3):
        obs = ms.reset(env, seed)
        start = ms.observation_fields(obs)["obj_pose"][:3]
        for _ in range(30):
            obs, ended = ms.step(env, ms.quantise_action(expert_action(env_id, ms.observation_fields(obs)),
                                                         env.action_space)[0])
            if ended:
                break
        successes += bool(env.unwrapped.evaluate()["success"].any())
        end = ms.observation_fields(obs)["obj_pose"][:3]
        expert_motion.append(end[2] - start[2] if key == "lift" else np.linalg.norm(end[:2] - start[:2]))
        random_end = ms.observation_fields(random_observations(env, seed, 30)[-1])["obj_pose"][:3]
        random_motion.append(np.linalg.norm(random_end - start))
    assert successes >= 2, expert_motion
    assert np.median(expert_motion) > 0.05  # lifted by / pushed over 5 cm
    assert np.median(random_motion) < 0.01


# ----------------------------------------------------------------------------------------- dataset
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dataset = build_maniskill_dataset(["PickCube-v1", "PushCube-v1"], episodes=2, test_episodes=1, max_steps=8,
                                      images="sensor", progress=False)
    path = save_dataset_dict(dataset, tmp_path_factory.mktemp("ms") / "data")
    return dataset, path


def test_dataset_schema_splits_and_images(built):
    dataset, path = built
    loaded = load_dataset_dict(path)
    for split in ("labelled", "state_only", "test"):
        assert loaded[split].column_names == ["state", "action", "next_state", "env_id", "seed", "episode", "step",
                                              "action_prefix", "env_state", "image", "next_image"]
        assert loaded[split].num_rows == dataset[split].num_rows > 0
        assert set(loaded[split]["env_id"]) == {"PickCube-v1", "PushCube-v1"}
        row = loaded[split][0]
        assert row["image"].size == (128, 128) and row["image"].mode == "RGB"
        assert np.asarray(row["image"]).std() > 5  # a real frame, not a blank one
    assert all(a is None for a in loaded["state_only"]["action"])
    assert all(len(a.split()) == 4 for a in list(loaded["labelled"]["action"]) + list(loaded["test"]["action"]))
    keys = lambda split: {(e, s) for e, s in zip(loaded[split]["env_id"], loaded[split]["seed"])}  # noqa: E731
    assert not keys("labelled") & keys("state_only") and not keys("test") & (keys("labelled") | keys("state_only"))
    for split in ("labelled", "test"):  # consecutive rows chain: next_state is the next row's state
        rows = loaded[split]
        for i in range(rows.num_rows - 1):
            if (rows[i]["env_id"], rows[i]["seed"]) == (rows[i + 1]["env_id"], rows[i + 1]["seed"]):
                assert rows[i]["next_state"] == rows[i + 1]["state"]
                assert len(rows[i + 1]["action_prefix"]) == len(rows[i]["action_prefix"]) + 1


def test_rows_resimulate_from_the_prefix_and_from_the_simulator_state(built, envs):
    rows = built[0]["test"]
    checked = 0
    for row in rows:
        if row["step"] < 3:
            continue
        env = envs[row["env_id"]]
        action = ms.text_to_action(row["action"], 4)
        obs = ms.resimulate(env, row["seed"], row["action_prefix"])
        assert ms.state_to_text(ms.observation_fields(obs)) == row["state"]
        assert ms.state_to_text(ms.observation_fields(ms.step(env, action)[0])) == row["next_state"]  # exact
        ms.reset(env, row["seed"] + 1)  # elsewhere, then the simulator state alone
        ms.restore_env_state(env, row["env_state"])
        after = ms.observation_fields(ms.step(env, action)[0])
        truth = ms.text_to_state(row["next_state"])
        assert max(np.abs(after[name] - truth[name]).max() for name in truth) < 2e-3
        checked += 1
    assert checked >= 2
    json.loads(rows[0]["env_state"])  # plain JSON, no pickle


def test_build_is_deterministic_and_fields_are_selectable():
    kwargs = dict(episodes=2, test_episodes=0, max_steps=5, fields=["tcp_pose", "obj_pose"], precision=2,
                  progress=False)
    first, second = build_maniskill_dataset(["PickCube-v1"], **kwargs), build_maniskill_dataset(["PickCube-v1"], **kwargs)
    assert first["labelled"]["state"] == second["labelled"]["state"]
    assert first["state_only"]["next_state"] == second["state_only"]["next_state"]
    state = ms.text_to_state(first["labelled"][0]["state"])
    assert list(state) == ["tcp_pose", "obj_pose"]
    assert object_motion(first["labelled"][0]["state"], first["labelled"][0]["next_state"]) >= 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(env_ids=["PickCube-v1"], fields=["nope"]), "unknown state field\\(s\\) nope"),
    (dict(env_ids=["PegInsertionSide-v1"]), "no scripted expert for PegInsertionSide-v1; use --policy random"),
    (dict(env_ids=["PickCube-v1"], control_mode="pd_joint_delta_pos"), "the scripted experts act in pd_ee_delta_pos"),
    (dict(env_ids=["PickCube-v1"], precision=12), "precision and action_precision must be in 0..8"),
    (dict(env_ids=[]), "no environment given"),
])
def test_bad_build_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(SwirlError, match=message):
        build_maniskill_dataset(**kwargs, episodes=1, max_steps=2, progress=False)


# --------------------------------------------------------------------------------------------- CLI
def run_cli(*args, env=None):
    return subprocess.run([*SWIRL, *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)


def test_cli_builds_a_dataset_and_prints_a_summary(tmp_path):
    result = run_cli("data", "maniskill", "--env", "PushCube-v1", "--episodes", "2", "--test-episodes", "1",
                     "--max-steps", "4", "--fields", "tcp_pose", "obj_pose", "goal_pos", "--no-progress",
                     "--out", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| labelled | PushCube-v1 | 1 | 4 |" in result.stdout and "saved to" in result.stdout
    data = load_dataset_dict(tmp_path / "d")
    assert list(ms.text_to_state(data["test"][0]["state"])) == ["tcp_pose", "obj_pose", "goal_pos"]


def test_cli_errors_are_one_line(tmp_path):
    result = run_cli("data", "maniskill", "--env", "PushCube-v9", "--out", str(tmp_path / "d"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "swirl: error: unknown ManiSkill environment id 'PushCube-v9'; did you mean PushCube-v1, PullCube-v1, "
        "PokeCube-v1?"]
    assert not (tmp_path / "d").exists()
    help_text = run_cli("data", "maniskill", "--help").stdout
    for flag in ("--images", "--fields", "--precision", "--action-precision", "--control-mode", "--policy"):
        assert flag in help_text
    listed = run_cli("data", "maniskill", "--list-envs").stdout.split()
    assert "PickCube-v1" in listed and "PushCube-v1" in listed


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU driver provides Vulkan")
def test_without_a_vulkan_driver_the_error_names_the_setup_target(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES")}
    env["LD_LIBRARY_PATH"] = ""
    result = run_cli("data", "maniskill", "--env", "PickCube-v1", "--out", str(tmp_path / "d"), env=env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("swirl: error:")]
    assert len(errors) == 1 and "make maniskill-setup" in errors[0] and "source .vulkan/env.sh" in errors[0]
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------ recipe
def test_swirl_recipe_runs_one_iteration_on_maniskill_text(tmp_path):
    out = tmp_path / "run"
    result = launch_recipe("swirl_maniskill.py", "maniskill/cpu-tiny.yaml", out)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    for line in lines:
        assert 0 <= line["fwm_parse_rate"] <= 1 and 0 <= line["idm_parse_rate"] <= 1
        assert line["fwm_copy_mse"] > 0 and line["idm_zero_action_mse"] > 0
        assert set(line["per_env"]) == {"PickCube-v1"}
    from safetensors.torch import load_file

    def weights(stage: str, role: str) -> dict:
        return load_file(out / stage / role / "adapter_model.safetensors")

    for stage, role in (("iter_1/phase1", "fwm"), ("iter_1/phase2", "idm")):  # each phase trained its policy
        before, after = weights("warmstart" if stage.endswith("1") else "iter_1/phase1", role), weights(stage, role)
        assert any(not np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
    data = load_dataset_dict(out / "data")
    assert list(ms.text_to_state(data["labelled"][0]["state"])) == ["tcp_pose", "obj_pose", "goal_pos"]
    card = (out / "hub" / "README.md").read_text()
    assert "maniskill" in card and "recipes/swirl_maniskill.py" in card and "fwm_copy_mse" in card
    assert "| stage | fwm_parse_rate |" in result.stdout
    # `swirl eval` on the final stage picks the continuous metrics from the dataset's kind by itself
    evaluated = subprocess.run([*SWIRL, "eval", "--model", "tiny-qwen2", "--adapters", str(out / "iter_1" / "phase2"),
                                "--dataset", str(out / "data"), "--rows", "3", "--max-state-tokens", "32",
                                "--max-action-tokens", "8", "--out", str(tmp_path / "eval")],
                               capture_output=True, text=True, timeout=600, cwd=REPO)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["rows"] == 3 and report["fwm_copy_mse"] > 0 and "idm_confusion" not in report
    assert set(report["per_env"]) == {"PickCube-v1"} and "rollouts" not in report
    assert (tmp_path / "eval" / "eval.md").read_text().startswith("| env | fwm_parse_rate | fwm_exact_match | fwm_mse |")


@pytest.mark.slow
def test_swirl_recipe_runs_on_maniskill_camera_images_with_a_vlm(tmp_path):
    out = tmp_path / "run"
    result = launch_recipe("swirl_maniskill.py", "maniskill/cpu-tiny.yaml", out, "--model", "tiny-qwen2-vl",
                           "--state_modality", "image")
    assert result.returncode == 0, result.stderr[-3000:]
    data = load_dataset_dict(out / "data")
    assert data["labelled"][0]["image"].size == (128, 128)  # the task camera, built because the states are images
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    phase1 = json.loads((out / "iter_1" / "phase1" / "metrics.json").read_text())["training"]
    # the sampled next state is read as text, not drawn: no sample is floored at the clip value
    assert phase1["first_step"]["reward"] > -10 and phase1["steps"] == 2
