"""WAV's structured world models (swirl.wav.structured): they learn real MiniGrid dynamics from a few hundred
labelled transitions, every prediction decodes to a valid state, the verification loss prefers the true action,
and they save and load."""

from __future__ import annotations

import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.envs.minigrid_env import action_texts
from swirl.envs.minigrid_text import obj_from_code, text_to_state
from swirl.errors import SwirlError
from swirl.wav.structured import StructuredModel, train_structured_model

ENV = "swirl/WAV-RandomPlay-4obj-6x6-v0"


@pytest.fixture(scope="module")
def data():
    return build_minigrid_dataset([ENV], episodes=30, max_steps=20, policy="expert", epsilon=0.3,
                                  labelled_fraction=0.5, test_episodes=10, test_split="identifiable",
                                  state_text="objects", seed=0, progress=False)


@pytest.fixture(scope="module")
def forward(data):
    rows = data["labelled"]
    return train_structured_model(rows["state"], rows["next_state"], rows["action"], code_names=action_texts(ENV),
                                  steps=300, batch_size=128)


def test_cell_codes_decode_to_the_objects_they_name(data):
    state = text_to_state(data["labelled"]["state"][0])
    for obj in (*state.cells, state.carrying):
        assert obj_from_code("." if obj is None else obj.code) == obj


def test_the_forward_model_learns_the_dynamics_not_the_copy(forward, data):
    test = data["test"]  # identifiable transitions: copying s is always wrong
    predictions = forward.predict(test["state"], test["action"])
    assert all(text_to_state(p).width == 6 for p in predictions)  # every prediction is a valid state
    exact = sum(p == n for p, n in zip(predictions, test["next_state"])) / test.num_rows
    assert exact >= 0.6, exact
    copies = sum(p == s for p, s in zip(predictions, test["state"])) / test.num_rows
    assert copies <= 0.2, copies


def test_the_verification_loss_prefers_the_true_action(forward, data):
    test = data["test"]
    labels = list(action_texts(ENV))
    wrong = [labels[(labels.index(a) + 1) % len(labels)] for a in test["action"]]
    true_loss = forward.loss(test["state"], test["action"], test["next_state"])
    wrong_loss = forward.loss(test["state"], wrong, test["next_state"])
    assert sum(t < w for t, w in zip(true_loss, wrong_loss)) >= 0.8 * test.num_rows
    assert forward.loss(test["state"][:1], test["action"][:1], ["not a state"]) == [float("inf")]


def test_samples_vary_and_a_saved_model_predicts_the_same(forward, data, tmp_path):
    test = data["test"].select(range(8))
    samples = forward.sample(test["state"], test["action"], n=3, temperature=2.0)
    assert [len(drawn) for drawn in samples] == [3] * 8
    loaded = StructuredModel.load(forward.save(tmp_path / "fwm"))
    assert loaded.predict(test["state"], test["action"]) == forward.predict(test["state"], test["action"])
    (tmp_path / "fwm" / "config.json").write_text("{")
    with pytest.raises(SwirlError, match="not a readable structured model"):
        StructuredModel.load(tmp_path / "fwm")


def test_the_subgoal_generator_proposes_distinct_valid_next_states(data, forward):
    rows = data["state_only"]
    generator = train_structured_model(rows["state"], rows["next_state"], latent_codes=4, steps=60, batch_size=64)
    states = data["test"]["state"][:6]
    proposals = generator.propose(states, k=3)
    assert all(1 <= len(found) <= 3 and len(set(found)) == len(found) for found in proposals)
    assert all(text_to_state(p).width == 6 for found in proposals for p in found)
    with pytest.raises(ValueError, match="propose needs a subgoal generator"):
        forward.propose(states, k=2)
    with pytest.raises(ValueError, match=r"codes \['fly'\] are not among"):
        forward.predict(states[:1], ["fly"])
