"""Rollouts and the Action Following Score, checked against two reference world models built on the real env:
a perfect one (looks up the re-simulated truth) and the copy baseline (predicts s' = s)."""

from __future__ import annotations

import math
import re

import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.evaluation.rollouts import action_following_score, known_actions, rollout_accuracy
from swirl.envs.minigrid import action_texts, make_env, resimulate, state_to_text
from swirl.sampling import HFSampler

PROMPT = re.compile(r"State:\n(.*?\nend)\nAction: (.*?)\n", re.S)


class ReferenceModel:
    """A sampler whose 'model' is the environment itself (perfect) or the identity (copy baseline)."""

    def __init__(self, rows, copy: bool):
        self.copy = copy
        self.truth = {}
        for env_id, seed, sequence in [(e, s, seq) for (e, s), seq in known_actions(rows).items()] + [
            (e, s, list(p)) for e, s, p in zip(rows["env_id"], rows["seed"], rows["action_prefix"])
        ]:
            env = make_env(env_id)
            for cut in range(len(sequence) + 1):
                for action, word in enumerate(action_texts(env_id)):
                    resimulate(env_id, seed, sequence[:cut], env=env)
                    state = state_to_text(env)
                    env.step(action)
                    self.truth[(state, word)] = state_to_text(env)

    def generate(self, prompts, adapter=None, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, stop=None):
        answers = []
        for prompt in prompts:
            state, action = PROMPT.search(prompt).groups()
            answers.append([state if self.copy else self.truth.get((state, action), "unknown")])
        return answers


@pytest.fixture(scope="module")
def rows():
    return build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=1, max_steps=12, policy="expert", epsilon=0.3,
                                  test_episodes=2, seed=5, balance_test=False, progress=False)["test"]


def test_known_actions_rebuild_each_episode(rows):
    episodes = known_actions(rows)
    assert len(episodes) == 2 and all(len(sequence) == 12 for sequence in episodes.values())


def test_a_perfect_model_rolls_out_perfectly(rows, tokenizer):
    steps = rollout_accuracy(ReferenceModel(rows, copy=False), tokenizer, rows, horizon=6)
    assert [step["horizon"] for step in steps] == [1, 2, 3, 4, 5, 6]
    assert all(step["exact_match"] == 1.0 and step["field_accuracy"] == 1.0 for step in steps)


def test_the_copy_baseline_loses_accuracy_with_the_horizon(rows, tokenizer):
    steps = rollout_accuracy(ReferenceModel(rows, copy=True), tokenizer, rows, horizon=6)
    assert all(step["parse_rate"] == 1.0 for step in steps)
    assert all(step["exact_match"] < 1.0 for step in steps)  # the expert's episodes move the agent
    assert steps[0]["field_accuracy"] > 0.9  # one step changes a few fields of 67
    assert steps[-1]["field_accuracy"] < steps[0]["field_accuracy"]  # six steps change more


def test_action_following_score_known_answers(rows, tokenizer):
    perfect = action_following_score(ReferenceModel(rows, copy=False), tokenizer, rows, max_states=6)
    copy = action_following_score(ReferenceModel(rows, copy=True), tokenizer, rows, max_states=6)
    assert perfect["pairs"] == copy["pairs"] > 0 and perfect["states"] == 6
    assert perfect["action_following_score"] == 1.0 and copy["action_following_score"] == 0.0


def test_rollouts_and_afs_run_with_a_real_model(world_model, tokenizer, rows):
    sampler = HFSampler(world_model, tokenizer)
    steps = rollout_accuracy(sampler, tokenizer, rows, horizon=2, max_starts=2, max_state_tokens=8)
    assert len(steps) == 2 and all(step["exact_match"] == 0.0 for step in steps)  # 8 random tokens
    score = action_following_score(sampler, tokenizer, rows, max_states=1, max_state_tokens=8)
    assert 0.0 <= score["action_following_score"] <= 1.0 or math.isnan(score["action_following_score"])


def test_too_short_episodes_are_a_clear_error(rows, tokenizer):
    with pytest.raises(ValueError, match="no episode in the split has 20 consecutive known actions"):
        rollout_accuracy(ReferenceModel(rows, copy=True), tokenizer, rows, horizon=20)


def test_a_few_starts_cover_every_env(tokenizer):
    """Starts are taken from the envs in turn: two starts over two envs roll out one episode of each."""
    rows = build_minigrid_dataset(["MiniGrid-DoorKey-5x5-v0", "swirl/WAV-KeyDelivery-v0"], episodes=1, max_steps=8,
                                  test_episodes=3, seed=1, balance_test=False, progress=False)["test"]
    first_calls = []

    class CopyRecorder:
        def generate(self, prompts, **kwargs):
            first_calls.append([PROMPT.search(prompt).group(1) for prompt in prompts])
            return [[state] for state in first_calls[-1]]

    steps = rollout_accuracy(CopyRecorder(), tokenizer, rows, horizon=2, max_starts=2)
    assert len(steps) == 2 and len(first_calls[0]) == 2
    assert sorted(len(state.splitlines()) for state in first_calls[0]) == [8, 11]  # a 5x5 and an 8x8 room
