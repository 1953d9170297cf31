"""SWIRL sees its data: each iteration draws its own state-only pairs, each phase its own seed, a phase with
``phase_steps: None`` trains on every pair it has (counted from the rewards' calls), and the anchored phase I
adds the observed-next-state reward. A real loop with the tiny model, real TRL trainers and real MiniGrid data."""

from __future__ import annotations

import doctest
import json

import pytest

import swirl.training.rewards as rewards_module
from swirl.data import load_dataset_dict
from swirl.training.swirl_config import SwirlConfig
from swirl.training.loop import run_swirl, state_only_pairs
from swirl.training.phases import phase_seed, planned_phase_steps


def test_iterations_take_successive_blocks_of_the_shuffled_pool(small_dataset):
    data = load_dataset_dict(small_dataset)
    pool = data["state_only"].num_rows
    config = SwirlConfig(max_state_only_pairs=4, iterations=3, seed=1)
    blocks = [list(zip(*state_only_pairs(config, data, k)[:].values())) for k in (1, 2, 3)]
    assert all(len(block) == 4 for block in blocks)
    assert not set(blocks[0]) & set(blocks[1])  # disjoint while the pool lasts
    assert list(zip(*state_only_pairs(config, data)[:].values())) == blocks[0] + blocks[1] + blocks[2]
    wrapped = SwirlConfig(max_state_only_pairs=pool - 1, iterations=2, seed=1)
    second = state_only_pairs(wrapped, data, 2)
    assert second.num_rows == pool - 1  # wraps round to the start of the shuffle
    assert state_only_pairs(SwirlConfig(max_state_only_pairs=pool + 5), data, 1).num_rows == pool  # each pair once
    assert state_only_pairs(SwirlConfig(max_state_only_pairs=None), data, 2).num_rows == pool


def test_phase_seeds_differ_and_one_pass_covers_every_pair():
    seeds = {phase_seed(3, iteration, phase) for iteration in (1, 2, 3) for phase in (1, 2)}
    assert len(seeds) == 6 and phase_seed(3, 1, 1) == phase_seed(3, 1, 1)
    assert phase_seed(0, 1, 1) != phase_seed(1, 1, 1)
    one_pass = SwirlConfig(phase_steps=None, prompts_per_step=4)
    assert planned_phase_steps(one_pass, 64) == 16 and planned_phase_steps(one_pass, 65) == 17
    assert planned_phase_steps(one_pass, 64, processes=2) == 8
    assert planned_phase_steps(SwirlConfig(phase_steps=3), 64) == 3


def test_a_phase_is_padded_to_whole_steps_so_one_pass_sees_every_pair():
    from datasets import Dataset

    from swirl.training.phases import padded_to_whole_steps

    rows = Dataset.from_dict({"state": [f"s{i}" for i in range(5)], "next_state": [f"n{i}" for i in range(5)]})
    padded = padded_to_whole_steps(rows, 4)
    assert padded.num_rows == 8 and padded["state"] == ["s0", "s1", "s2", "s3", "s4", "s0", "s1", "s2"]
    assert padded_to_whole_steps(rows.select(range(1)), 4)["state"] == ["s0"] * 4  # one pair still makes a step
    assert padded_to_whole_steps(rows.select(range(4)), 4).num_rows == 4
    with pytest.raises(ValueError, match="phase_steps"):
        SwirlConfig(phase_steps=0)
    with pytest.raises(ValueError, match="phase1_anchor"):
        SwirlConfig(phase1_anchor=-1.0)


def test_the_anchor_reward_doctest_runs():
    failures, tried = doctest.testmod(rewards_module)
    assert tried >= 4 and failures == 0


def test_every_phase_trains_on_all_of_its_own_pairs_and_the_anchor_is_logged(tmp_path):
    config = SwirlConfig(output_dir=str(tmp_path / "run"), model="tiny-qwen2", env_ids=["swirl/WAV-KeyDelivery-v0"],
                         env_episodes=8, env_max_steps=10, env_test_episodes=2, state_text="objects",
                         state_format="diff", lora_r=8, lora_alpha=16, sft_steps=40, sft_learning_rate=5e-3, sft_eval_rows=0, iterations=2,
                         phase_steps=None, prompts_per_step=2, num_generations=2, learning_rate=1e-3,
                         max_state_tokens=24, max_action_tokens=6, max_state_only_pairs=5, eval_rows=4, sampler="hf",
                         annotation_min_logprob=-100.0, phase1_anchor=0.5, save_steps=100, disable_tqdm=True)
    run_swirl(config)
    out = tmp_path / "run"
    trained = {}
    for iteration in (1, 2):
        for phase in (1, 2):
            training = json.loads((out / f"iter_{iteration}" / f"phase{phase}" / "metrics.json").read_text())["training"]
            assert training["max_steps"] == 3  # 5 pairs, 2 prompts a step: one pass (the last step repeats one)
            assert training["distinct_pairs_trained"] == training["pairs_available"] == 5
            trained[(iteration, phase)] = training
        assert trained[(iteration, 1)]["seed"] != trained[(iteration, 2)]["seed"]
        anchor = [step.get("rewards/observed_next_state/mean") for step in trained[(iteration, 1)]["log"]]
        assert all(value is not None and 0.0 <= value <= 1.0 for value in anchor)
        assert all("rewards/observed_next_state/mean" not in step for step in trained[(iteration, 2)]["log"])
    assert trained[(1, 1)]["seed"] != trained[(2, 1)]["seed"]
    first, second = ([json.loads(line)["state"] + json.loads(line)["next_state"]
                      for line in (out / f"iter_{k}" / "phase1" / "latent_actions.jsonl").read_text().splitlines()]
                     for k in (1, 2))
    assert len(first) == len(second) == 5 and not set(first) & set(second)  # iteration 2 saw new pairs
