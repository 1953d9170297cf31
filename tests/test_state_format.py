"""``state_format: diff`` through prompts, rewards, evaluation and rollouts (the codecs' diffs themselves are tested
in test_minigrid_state_texts.py and test_maniskill_diff.py)."""

from __future__ import annotations

import re

import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.evaluation.rollouts import rollout_accuracy
from swirl.evaluation.world_model import evaluate_world_model
from swirl.data import convert_state_texts, load_dataset_dict
from swirl.envs.minigrid_text import NO_CHANGE, apply_diff, state_diff, state_text_kind
from swirl.envs.state_format import next_state_answer, reconstruct
from swirl.errors import StateParseError
from swirl.models.prompts import completion, fwm_prompt, idm_prompt, prompt_completion_dataset, prompt_for_row
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import state_view
from swirl.training.rewards import FWMStateReward, IDMActionReward

DIFF = state_view("text", "minigrid", "diff")
FWM_PROMPT = re.compile(r"State:\n(.*?\nend)\nAction: (.*?)\n", re.S)


@pytest.fixture(scope="module")
def objects_data(small_dataset):
    return convert_state_texts(load_dataset_dict(small_dataset), "objects")


def changing_rows(split, count: int = 3) -> list[dict]:
    return [row for row in split if row["state"] != row["next_state"]][:count]


def test_state_texts_convert_on_load_and_keep_every_row(small_dataset, objects_data):
    grid = load_dataset_dict(small_dataset)
    assert state_text_kind(grid["labelled"][0]["state"]) == "grid"
    for split in grid:
        assert objects_data[split].num_rows == grid[split].num_rows
        assert all(state_text_kind(text) == "objects" for text in objects_data[split]["next_state"])
    back = convert_state_texts(objects_data, "grid")
    assert back["test"]["next_state"] == grid["test"]["next_state"]  # lossless both ways


def test_diff_prompts_show_the_change_and_targets_are_the_change(tokenizer, objects_data):
    row = changing_rows(objects_data["labelled"], 1)[0]
    change = state_diff(row["state"], row["next_state"])
    assert change != NO_CHANGE and apply_diff(row["state"], change) == row["next_state"]
    idm = prompt_for_row(tokenizer, "idm", row, DIFF)
    assert f"Change:\n{change}\nAction?" in idm and row["next_state"] not in idm
    assert f"Action: {row['action']}\nChange?" in prompt_for_row(tokenizer, "fwm", row, DIFF)
    examples = prompt_completion_dataset(objects_data["labelled"].select(range(4)), "fwm", tokenizer, DIFF)
    for example, source in zip(examples, objects_data["labelled"].select(range(4))):
        assert example["completion"] == completion(tokenizer, state_diff(source["state"], source["next_state"]))
    full = prompt_completion_dataset(objects_data["labelled"].select(range(1)), "fwm", tokenizer)
    assert full[0]["completion"] == completion(tokenizer, objects_data["labelled"][0]["next_state"])


def test_phase1_reward_floors_diffs_that_do_not_apply(world_model, tokenizer, objects_data):
    rows = changing_rows(objects_data["state_only"], 2)
    state = [rows[0]["state"], rows[1]["state"], rows[0]["state"], rows[0]["state"]]
    sampled = [state_diff(rows[0]["state"], rows[0]["next_state"]), NO_CHANGE, "agent 99,99 facing up", "garbage"]
    logged = {}
    rewards = IDMActionReward(world_model, tokenizer, clip=-10.0, view=DIFF)(
        prompts=["p"] * 4, completions=[s + "<|im_end|>" for s in sampled], state=state,
        latent_action=["toggle", "drop", "toggle", "drop"], log_metric=logged.__setitem__)
    expected = log_likelihood(world_model, tokenizer, [idm_prompt(tokenizer, s, d, DIFF) for s, d in
                                                       zip(state[:2], sampled[:2])],
                              [completion(tokenizer, a) for a in ("toggle", "drop")], adapter="idm").mean
    assert rewards[:2] == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-6)
    assert rewards[2:] == [-10.0, -10.0]  # out of the room / not a diff: the floor, not a score
    assert logged == {"parse_rate": 0.5}


def test_phase2_reward_scores_the_true_diff(world_model, tokenizer, objects_data):
    rows = changing_rows(objects_data["state_only"], 2)
    state, next_state = [r["state"] for r in rows], [r["next_state"] for r in rows]
    rewards = FWMStateReward(world_model, tokenizer, view=DIFF)(prompts=["p", "p"], completions=["toggle", "drop"],
                                                                state=state, next_state=next_state)
    expected = log_likelihood(world_model, tokenizer, [fwm_prompt(tokenizer, state[0], "toggle", DIFF),
                                                       fwm_prompt(tokenizer, state[1], "drop", DIFF)],
                              [completion(tokenizer, state_diff(s, n)) for s, n in zip(state, next_state)],
                              adapter="fwm").mean
    assert rewards == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-6)


def test_answers_round_trip_and_invalid_ones_reconstruct_to_none(objects_data):
    for row in objects_data["test"]:
        answer = next_state_answer(row["state"], row["next_state"], "diff")
        assert reconstruct(row["state"], answer, "diff") == row["next_state"]
        assert reconstruct(row["state"], row["next_state"], "full") == row["next_state"]
    assert reconstruct(row["state"], "garbage", "diff") is None and reconstruct(row["state"], "garbage") is None
    with pytest.raises(StateParseError):
        DIFF.next_state(row["state"], "agent 1,1 facing nowhere")


class DiffOracle:
    """A sampler that answers every FWM prompt with the true diff (from the rows it was given), else garbage."""

    def __init__(self, rows):
        self.truth = {(row["state"], row["action"]): state_diff(row["state"], row["next_state"]) for row in rows}

    def generate(self, prompts, adapter=None, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, stop=None,
                 images=None):
        return [[self.truth.get(FWM_PROMPT.search(p).groups(), "garbage")] * n if FWM_PROMPT.search(p) else ["drop"] * n
                for p in prompts]


def test_evaluation_scores_reconstructed_full_states(world_model, tokenizer, objects_data):
    test = objects_data["test"]
    result = evaluate_world_model(world_model, tokenizer, DiffOracle(test), test, view=DIFF)
    assert result["fwm_exact_match"] == 1.0 and result["fwm_parse_rate"] == 1.0
    assert result["fwm_changed_accuracy"] == 1.0 and result["fwm_copy_exact_match"] < 1.0


def test_rollouts_apply_diffs_step_by_step(tokenizer):
    rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=1, max_steps=8, policy="expert",
                                  epsilon=0.3, test_episodes=1, seed=5, balance_test=False, progress=False)
    rows = convert_state_texts(rows, "objects")["test"]
    steps = rollout_accuracy(DiffOracle(rows), tokenizer, rows, horizon=4, view=DIFF)
    assert [step["exact_match"] for step in steps] == [1.0] * 4


def test_front_cell_prompts_show_the_faced_cell_after_the_state_and_keep_the_answers(tokenizer, objects_data):
    from swirl.envs.minigrid_text import front_cell_line

    front = state_view("text", "minigrid", "diff", front_cell=True)
    rows = objects_data["labelled"].select(range(4))
    for role in ("fwm", "idm", "subgoal"):
        for row in rows:
            line = front_cell_line(row["state"])
            assert line.startswith("front ") and line not in row["state"]
            shown = prompt_for_row(tokenizer, role, row, front)
            assert f"State:\n{row['state']}\n{line}\n" in shown
            assert shown.replace(f"\n{line}", "", 1) == prompt_for_row(tokenizer, role, row, DIFF)
        with_front = prompt_completion_dataset(rows, role, tokenizer, front)
        assert with_front["completion"] == prompt_completion_dataset(rows, role, tokenizer, DIFF)["completion"]
    row = rows[0]
    assert fwm_prompt(tokenizer, row["state"], row["action"], front) == prompt_for_row(tokenizer, "fwm", row, front)
    # a rollout's broken prediction has no faced cell: shown as it is, never an error
    assert fwm_prompt(tokenizer, "", "turn left", front) == fwm_prompt(tokenizer, "", "turn left", DIFF)


def test_front_cell_views_need_text_states_of_a_family_with_a_faced_cell():
    from swirl.sft import SwirlSFTConfig
    from swirl.training.swirl_config import SwirlConfig, SwirlManiSkillConfig
    from swirl.wav.wav_config import WAVConfig

    with pytest.raises(ValueError, match="state_front_cell needs state_modality text, got 'image'"):
        state_view("image", "minigrid", front_cell=True)
    with pytest.raises(ValueError, match="maniskill states have no cell the agent faces"):
        state_view("text", "maniskill", front_cell=True)
    assert WAVConfig(state_front_cell=True).state_view.front_cell
    assert SwirlConfig(state_front_cell=True).state_view.front_cell and not SwirlConfig().state_view.front_cell
    assert SwirlSFTConfig(output_dir="unused", role="fwm", dataset="unused", state_front_cell=True).state_front_cell
    with pytest.raises(ValueError, match="maniskill states have no cell"):  # at parse time, not mid-run
        SwirlManiSkillConfig(state_front_cell=True)


def test_configs_reject_unknown_state_formats_and_texts_in_one_line():
    from swirl.training.swirl_config import SwirlConfig, SwirlManiSkillConfig
    from swirl.wav.wav_config import WAVConfig

    with pytest.raises(ValueError, match=r"^state_format must be one of full, diff \(got 'delta'\)$"):
        SwirlConfig(state_format="delta")
    with pytest.raises(ValueError, match=r"^state_text must be one of grid, objects \(got 'pixels'\)$"):
        SwirlConfig(state_text="pixels")
    with pytest.raises(ValueError, match="state_format"):
        WAVConfig(state_format="delta")
    assert SwirlManiSkillConfig(state_format="diff").state_view.is_diff
    assert SwirlConfig(state_format="diff").state_view.domain == "minigrid"


def test_a_run_folder_is_not_resumed_with_another_state_format(tmp_path):
    import json
    from dataclasses import asdict

    from swirl.errors import SwirlError
    from swirl.training.swirl_config import SwirlConfig
    from swirl.training.loop import check_resumable

    path = tmp_path / "swirl_config.json"
    check_resumable(SwirlConfig(), path)  # a new folder: nothing to compare
    path.write_text(json.dumps(asdict(SwirlConfig(state_format="full", state_text="grid"))))
    check_resumable(SwirlConfig(state_format="full", state_text="grid", phase_steps=7), path)  # budgets may change
    with pytest.raises(SwirlError, match=r"was trained with other settings \(state_format: 'full'\)"):
        check_resumable(SwirlConfig(state_format="diff", state_text="grid"), path)
    with pytest.raises(SwirlError, match=r"other settings \(state_front_cell: False\)"):
        check_resumable(SwirlConfig(state_format="full", state_text="grid", state_front_cell=True), path)


def test_swirl_eval_finds_the_run_config_above_a_stage(tmp_path):
    from swirl.paths import find_run_config

    (tmp_path / "run" / "iter_1" / "phase2" / "fwm").mkdir(parents=True)
    (tmp_path / "run" / "swirl_config.json").write_text('{"state_format": "diff", "state_text": "objects"}')
    assert find_run_config(tmp_path / "run" / "iter_1" / "phase2")["state_format"] == "diff"
    assert find_run_config(tmp_path) is None


class Garbage:
    """A sampler whose every answer is a diff that does not apply."""

    def generate(self, prompts, adapter=None, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, stop=None,
                 images=None):
        return [["agent 99,99 facing up"] * n for _ in prompts]


def test_wav_scores_survive_diffs_that_do_not_apply(world_model, tokenizer, objects_data):
    import math

    from conftest import random_lora
    from swirl.wav.scores import PoolScorer
    from swirl.wav.candidates import pool_candidates
    from swirl.wav.world_models import LLMWorldModels

    world_model.add_adapter("fwm_before", random_lora())
    candidates = pool_candidates(objects_data["state_only"].select(range(2)))  # objects texts: re-simulated as such
    models = LLMWorldModels(world_model, tokenizer, Garbage(), lambda states, goals: [None] * len(states), view=DIFF)
    scorer = PoolScorer(candidates, models)
    assert scorer.predictions == [""] * len(candidates)  # never parses: not mistaken for a prediction
    assert scorer.oracle() == [1.0] * len(candidates)  # fields: a full mismatch
    assert all(math.isfinite(score) for score in scorer.progress())  # scored as written, no crash
    assert scorer.wav() == [-math.inf] * len(candidates) and scorer.details["subgoals_with_action"] == 0


class Respaced:
    """A sampler that answers given diffs in order: right, but not written the canonical way."""

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, adapter=None, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, stop=None,
                 images=None):
        assert len(prompts) == len(self.answers)
        return [[answer] * n for answer in self.answers]


def test_the_oracle_scores_the_truth_alike_whether_or_not_f_predicted_it_first(world_model, tokenizer, objects_data):
    from swirl.envs.minigrid_text import state_diff
    from swirl.wav.candidates import pool_candidates
    from swirl.wav.scores import PoolScorer
    from swirl.wav.world_models import LLMWorldModels

    candidates = pool_candidates(objects_data["state_only"].select(range(2)))
    truths = PoolScorer(candidates, None).true_next_states
    respaced = [state_diff(c.state, truth).replace(" ", "  ", 1) for c, truth in zip(candidates, truths)]
    models = LLMWorldModels(world_model, tokenizer, Respaced(respaced), lambda states, goals: [None] * len(states),
                            view=DIFF)
    first = PoolScorer(candidates, models, score_loss="nll").oracle()  # before f predicted anything
    scorer = PoolScorer(candidates, models, score_loss="nll")  # a scorer caches its oracle: a new one, f first
    right = [i for i, (p, t) in enumerate(zip(scorer.predictions, truths)) if p == t]
    assert len(right) >= 4  # where the extra space still applies (not in "no change"), f predicts the truth
    assert scorer.oracle() == first  # the truth is still scored by its canonical text, not f's spaced one


def test_the_model_card_says_when_prompts_show_the_faced_cell():
    from dataclasses import asdict

    from swirl.hub import model_card
    from swirl.training.swirl_config import SwirlConfig

    data = {"domain": "minigrid", "env_ids": ["swirl/WAV-KeyDelivery-v0"], "labelled": 8, "state_only": 8, "test": 4}
    with_front = model_card(asdict(SwirlConfig(state_front_cell=True)), data, [], "cmd")
    assert "`state_front_cell: true`; `swirl.envs.minigrid_text.front_cell_line(state)`" in with_front
    assert "front_cell" not in model_card(asdict(SwirlConfig()), data, [], "cmd")
