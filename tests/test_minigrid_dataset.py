"""The MiniGrid dataset builder, its on-disk format, re-simulation, and the `swirl data minigrid` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from datasets import Image, load_from_disk

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.data import load_dataset_dict, save_dataset_dict
from swirl.envs.minigrid import make_env, render_state, resimulate, state_to_text, text_to_action, text_to_state
from swirl.errors import DatasetError, SwirlError

ENVS = ["swirl/WAV-KeyDelivery-Noisy-v0", "swirl/WAV-ObjectMatching-v0"]
SWIRL = [sys.executable, "-m", "swirl.cli"]


def build(**overrides):
    options = dict(episodes=6, max_steps=30, policy="expert", epsilon=0.2, labelled_fraction=0.5,
                   test_episodes=6, images=True, tile_size=4, seed=7, progress=False)
    return build_minigrid_dataset(ENVS, **(options | overrides))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    dataset = build()
    path = save_dataset_dict(dataset, tmp_path_factory.mktemp("data") / "minigrid")
    return dataset, path


def test_splits_columns_and_features(saved):
    dataset, _ = saved
    assert set(dataset) == {"labelled", "state_only", "test"}
    features = dataset["labelled"].features
    assert isinstance(features["image"], Image) and isinstance(features["next_image"], Image)
    assert features["state"].dtype == "string" and features["action_id"].dtype == "int8"
    assert dataset["labelled"][0]["image"].size == (8 * 4, 8 * 4)
    for split in dataset.values():
        assert split.num_rows > 0
        assert split.features == features


def test_labels_are_present_only_in_labelled_and_test(saved):
    dataset, _ = saved
    for split in ("labelled", "test"):
        rows = dataset[split].select_columns(["action", "action_id"]).to_dict()
        assert all(text_to_action(text) == action for text, action in zip(rows["action"], rows["action_id"]))
    state_only = dataset["state_only"].select_columns(["action", "action_id"]).to_dict()
    assert set(state_only["action"]) == {None} and set(state_only["action_id"]) == {None}


def test_splits_are_by_episode_and_labelled_fraction_holds(saved):
    dataset, _ = saved
    episodes = {
        split: set(zip(dataset[split]["env_id"], dataset[split]["episode"])) for split in dataset
    }
    assert not episodes["labelled"] & episodes["state_only"]
    assert not episodes["test"] & (episodes["labelled"] | episodes["state_only"])
    for env_id in ENVS:
        assert sum(env == env_id for env, _ in episodes["labelled"]) == 3  # 0.5 of 6
        assert sum(env == env_id for env, _ in episodes["state_only"]) == 3


def test_consecutive_rows_chain_and_record_their_prefix(saved):
    dataset, _ = saved
    rows = dataset["labelled"].select_columns(["state", "next_state", "step", "action_prefix", "action_id"]).to_dict()
    for i in range(1, len(rows["step"])):
        if rows["step"][i] == rows["step"][i - 1] + 1:
            assert rows["state"][i] == rows["next_state"][i - 1]
            assert rows["action_prefix"][i] == rows["action_prefix"][i - 1] + [rows["action_id"][i - 1]]
        else:
            assert rows["step"][i] == 0 and rows["action_prefix"][i] == []


def test_test_split_is_balanced_over_actions(saved):
    dataset, _ = saved
    for env_id in ENVS:
        counts = Counter(a for env, a in zip(dataset["test"]["env_id"], dataset["test"]["action_id"]) if env == env_id)
        assert len(counts) >= 5 and len(set(counts.values())) == 1, counts


@pytest.mark.parametrize("split", ["labelled", "state_only", "test"])
def test_random_rows_resimulate_exactly(saved, split):
    dataset, _ = saved
    rows = dataset[split]
    rng = np.random.default_rng(0)
    envs = {env_id: make_env(env_id) for env_id in ENVS}
    for index in rng.choice(rows.num_rows, size=min(15, rows.num_rows), replace=False):
        row = rows[int(index)]
        env = resimulate(row["env_id"], row["seed"], row["action_prefix"], env=envs[row["env_id"]])
        assert state_to_text(env) == row["state"]
        if row["action_id"] is None:  # state-only: the next row's prefix (or a search) reveals the action
            candidates = []
            for action in range(7):
                env = resimulate(row["env_id"], row["seed"], row["action_prefix"], env=envs[row["env_id"]])
                env.step(action)
                candidates.append(state_to_text(env) == row["next_state"])
            assert any(candidates)
        else:
            env.step(row["action_id"])
            assert state_to_text(env) == row["next_state"]


def test_images_show_the_recorded_states(saved):
    dataset, _ = saved
    row = dataset["test"][3]
    expected = render_state(text_to_state(row["next_state"]), tile_size=4)
    assert np.array_equal(np.asarray(row["next_image"].convert("RGB")), np.asarray(expected))


def test_build_is_deterministic_given_the_seed():
    first = build(images=False, episodes=3, test_episodes=2)
    again = build(images=False, episodes=3, test_episodes=2)
    other = build(images=False, episodes=3, test_episodes=2, seed=8)
    for split in first:
        assert first[split].to_dict() == again[split].to_dict()
    assert first["labelled"]["state"] != other["labelled"]["state"]


def test_save_load_round_trip(saved):
    dataset, path = saved
    loaded = load_dataset_dict(path)
    for split in dataset:
        assert loaded[split]["state"] == dataset[split]["state"]
        assert loaded[split]["action_prefix"] == dataset[split]["action_prefix"]


def test_existing_dataset_is_never_overwritten_by_default(saved, tmp_path):
    dataset, _ = saved
    path = save_dataset_dict(dataset, tmp_path / "d")
    with pytest.raises(DatasetError, match="already exists; pass --overwrite"):
        save_dataset_dict(dataset, path)
    assert load_from_disk(str(path))["labelled"].num_rows == dataset["labelled"].num_rows
    smaller = build(images=False, episodes=2, test_episodes=1)
    save_dataset_dict(smaller, path, overwrite=True)
    assert load_from_disk(str(path))["labelled"].num_rows == smaller["labelled"].num_rows
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no staging folders left behind


def test_corrupt_or_missing_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no dataset at"):
        load_dataset_dict(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset_dict.json").write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read the dataset at"):
        load_dataset_dict(tmp_path / "broken")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(policy="greedy"), "unknown policy 'greedy'"),
        (dict(labelled_fraction=1.5), r"labelled_fraction must be in \[0, 1\]"),
        (dict(episodes=0), "episodes and max_steps must be >= 1"),
        (dict(tile_size=0), "tile_size must be >= 1"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(SwirlError, match=message):
        build(**kwargs)


def test_expert_policy_on_an_env_without_expert_is_a_clear_error():
    with pytest.raises(SwirlError, match="no scripted expert for MiniGrid-Empty-5x5-v0; use --policy random"):
        build_minigrid_dataset(["MiniGrid-Empty-5x5-v0"], policy="expert", progress=False)


# --------------------------------------------------------------------------------------------- CLI
def run_cli(*args, env=None):
    return subprocess.run([*SWIRL, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_builds_saves_and_prints_a_summary(tmp_path):
    out = tmp_path / "cli"
    result = run_cli("data", "minigrid", "--env", "MiniGrid-Empty-5x5-v0", "--env", "swirl/WAV-BallDelivery-v0",
                     "--episodes", "4", "--test-episodes", "2", "--max-steps", "10", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "| labelled | MiniGrid-Empty-5x5-v0 | 2 | 20 |" in result.stdout
    loaded = load_dataset_dict(out)
    assert set(loaded["labelled"]["env_id"]) == {"MiniGrid-Empty-5x5-v0", "swirl/WAV-BallDelivery-v0"}
    assert "image" not in loaded["labelled"].column_names


def test_cli_unknown_env_is_one_line_with_close_matches(tmp_path):
    result = run_cli("data", "minigrid", "--env", "MiniGrid-DorKey-8x8-v0", "--out", str(tmp_path / "x"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "unknown environment id 'MiniGrid-DorKey-8x8-v0'; did you mean MiniGrid-DoorKey-8x8-v0" in lines[0]
    assert not (tmp_path / "x").exists()


def test_cli_push_to_hub_offline_fails_before_any_work(tmp_path):
    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="0")
    start = time.monotonic()
    result = run_cli("data", "minigrid", "--env", "swirl/WAV-KeyDelivery-v0", "--episodes", "500",
                     "--out", str(tmp_path / "x"), "--push-to-hub", "me/minigrid", env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot reach the Hugging Face Hub at http://127.0.0.1:9" in result.stderr
    assert not (tmp_path / "x").exists()
    assert time.monotonic() - start < 30  # it did not play 500 episodes first


def test_cli_help_explains_every_flag():
    result = run_cli("data", "minigrid", "--help")
    assert result.returncode == 0
    for flag in ("--env", "--episodes", "--max-steps", "--policy", "--labelled-fraction", "--test-episodes",
                 "--images", "--seed", "--out", "--push-to-hub", "--overwrite"):
        assert flag in result.stdout


def test_cli_refuses_to_replace_existing_output(tmp_path):
    (tmp_path / "x").mkdir()
    result = run_cli("data", "minigrid", "--env", "MiniGrid-Empty-5x5-v0", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "already exists; pass --overwrite" in result.stderr


def test_listing_envs():
    result = run_cli("data", "minigrid", "--list-envs")
    ids = result.stdout.split()
    assert "swirl/WAV-ObjectMatching-v0" in ids and "BabyAI-GoToLocal-v0" in ids


def test_a_failed_replacement_keeps_the_old_folder(tmp_path):
    from swirl.paths import atomic_dir

    target = tmp_path / "kept"
    target.mkdir()
    (target / "data.txt").write_text("old")
    with pytest.raises(RuntimeError, match="crash while writing"):
        with atomic_dir(target, replace=True) as staging:
            staging.mkdir()
            (staging / "data.txt").write_text("half")
            raise RuntimeError("crash while writing")
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_dir(target, replace=True):
            pass
    assert (target / "data.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
