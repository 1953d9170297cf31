"""WAV's two world-model backends behind one interface (swirl.wav.world_models): the structured backend's models
answer every question acquisition asks, the scores read them through the interface, and the WAV recipe runs every
method with the structured backend from its preset, end to end, and resumes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.envs.minigrid import WAV_ACTION_TEXTS, text_to_state
from swirl.wav.candidates import Simulator, pool_candidates
from swirl.wav.wav_config import WAVConfig
from swirl.wav.journal import JOURNAL, acquired_labels, read_journal
from swirl.wav.scores import PoolScorer, rank_correlations
from swirl.wav.sparse_idm import train_sparse_idm
from swirl.wav.structured import StructuredModel, train_structured_model
from swirl.wav.world_models import StructuredWorldModels

ROOT = Path(__file__).resolve().parents[1]
ENV = "swirl/WAV-KeyDelivery-6x6-v0"


@pytest.fixture(scope="module")
def data():
    return build_minigrid_dataset([ENV], episodes=40, max_steps=20, policy="expert", epsilon=0.3, test_episodes=40,
                                  test_split="identifiable", state_text="objects", seed=3, progress=False)


@pytest.fixture(scope="module")
def models(data):
    rows, state_only = data["labelled"], data["state_only"]
    fwm = train_structured_model(rows["state"], rows["next_state"], rows["action"], code_names=WAV_ACTION_TEXTS,
                                 steps=300, batch_size=128)
    untrained = train_structured_model(rows["state"], rows["next_state"], rows["action"], code_names=WAV_ACTION_TEXTS,
                                       steps=0)
    subgoal = train_structured_model(state_only["state"], state_only["next_state"], latent_codes=8, steps=200,
                                     batch_size=128)
    inverse = train_sparse_idm(rows["state"], rows["action"], rows["next_state"], WAV_ACTION_TEXTS, steps=300)
    return StructuredWorldModels(fwm, subgoal, inverse, untrained, seed=0)


def test_the_structured_backend_answers_the_interface(models, data):
    test = data["test"].select(range(12))
    states, actions, next_states = list(test["state"]), list(test["action"]), list(test["next_state"])
    predictions = models.predict(states, actions)
    assert all(text_to_state(p).width == 6 for p in predictions)
    samples = models.sample(states, actions, 3)
    assert [len(drawn) for drawn in samples] == [3] * 12
    proposals = models.propose(states, 4)
    assert all(1 <= len(found) <= 4 for found in proposals)
    inferred = models.infer(states + ["not a state"], next_states + [next_states[0]])
    assert set(inferred[:-1]) <= set(WAV_ACTION_TEXTS) and inferred[-1] is None
    true_nll, trained_on_nothing = models.nll(states, actions, next_states), models.nll(states, actions, next_states,
                                                                                       before=True)
    assert true_nll.shape == (12,) and true_nll.mean() < trained_on_nothing.mean()  # training lowered the true NLL
    with pytest.raises(ValueError, match="no forward model from before"):
        StructuredWorldModels(models.fwm, models.subgoal, models.inverse).nll(states, actions, next_states, before=True)


def test_the_scores_read_the_structured_models_through_the_interface(models, data):
    candidates = pool_candidates(data["state_only"].select(range(10)))
    simulate = Simulator()
    scorer = PoolScorer(candidates, models, score_loss="nll", subgoals=4, seed=0, simulate=simulate)
    oracle = scorer.oracle()
    truths = [simulate(c)["next_state"] for c in candidates]
    assert oracle == pytest.approx(models.nll([c.state for c in candidates], [c.action for c in candidates],
                                              truths).tolist())
    # the oracle method's scores and the picks' true error are one pass over the pool, not two
    assert scorer.score("oracle") is scorer.true_losses is oracle
    wav = scorer.wav()
    proposed = [i for i, score in enumerate(wav) if score > -math.inf]
    assert 0 < len(proposed) <= 4 * 10 and scorer.details["candidates_proposed"] == len(proposed)
    # a proposed candidate's score is the forward model's loss on a subgoal the inverse model maps to its action
    assert all(math.isfinite(wav[i]) and wav[i] >= 0 for i in proposed)
    assert rank_correlations(wav, oracle, scored_only=True)["spearman"] > 0.5, rank_correlations(wav, oracle, scored_only=True)  # ranks like the true error
    # subgoals drawn by the caller: the same draws score the same; their prefixes are WAV with fewer subgoals
    drawn = models.propose(scorer.pool_states, 4)
    assert scorer.pool_states == list(dict.fromkeys(c.state for c in candidates)) and scorer.wav(drawn) == wav
    first_only = scorer.wav([found[:1] for found in drawn])
    states = len(scorer.pool_states)  # 10 pool rows, fewer distinct states: a state reached twice is asked once
    assert scorer.details["subgoals"] == len(drawn) == states < 10
    reached = {i for i, score in enumerate(first_only) if score > -math.inf}
    assert 0 < len(reached) <= states and reached <= set(proposed)  # one subgoal a state: one candidate a state at most
    assert all(score <= wav[i] for i, score in enumerate(first_only))  # a max over fewer subgoals
    assert scorer.wav([[] for _ in drawn]) == [-math.inf] * len(candidates)  # no subgoal: nothing proposed
    with pytest.raises(ValueError, match=f"one list of subgoals per pool state: got {states - 1} for {states}"):
        scorer.wav(drawn[:-1])
    progress = scorer.progress()
    assert np.mean(progress) > 0  # the trained model is more sure of its own predictions than the untrained one
    uncertainty = scorer.uncertainty()
    assert all(0.0 <= u <= 1.0 for u in uncertainty) and len(set(uncertainty)) > 1
    fields = PoolScorer(candidates, models, score_loss="fields", simulate=simulate)
    assert all(0.0 <= error <= 1.0 for error in fields.oracle())
    # masked: the same greedy predictions, compared on the sparse IDM's kept features only
    masked = PoolScorer(candidates, models, score_loss="masked", subgoals=4, seed=0, simulate=simulate)
    assert masked.oracle() == models.inverse.masked_mismatch([c.state for c in candidates], truths, fields.predictions)
    assert [i for i, score in enumerate(masked.wav()) if score > -math.inf] == proposed  # same subgoals, same proposals


def test_the_structured_backend_needs_a_structured_inverse_model():
    with pytest.raises(ValueError, match="^inverse_model must be sparse or dense with the structured backend"):
        WAVConfig(backend="structured", inverse_model="llm")
    with pytest.raises(ValueError, match="^backend must be one of llm, structured"):
        WAVConfig(backend="cnn")
    assert WAVConfig(backend="structured", inverse_model="dense").inverse_model == "dense"


def test_every_method_runs_with_the_structured_backend_and_resumes(tmp_path):
    out = tmp_path / "wav"
    command = [sys.executable, str(ROOT / "recipes/wav_minigrid.py"), "--config",
               str(ROOT / "recipes/minigrid/wav-structured-tiny.yaml"), "--output_dir", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    methods = ["wav", "random", "uncertainty", "progress", "oracle"]
    assert [(l["method"], l["round"], l["labels"]) for l in lines] == [(m, r, 40 + 8 * r) for m in methods for r in range(3)]
    for method in methods:
        keys = [row["key"] for row in read_journal(out / "seed_0" / method / JOURNAL)]
        assert len(keys) == len(set(keys)) == 16
    assert all(l["oracle_spearman"] == pytest.approx(1.0) for l in lines if l["method"] == "oracle" and l["round"])
    warm = next(l for l in lines if l["round"] == 0)
    assert warm["fwm_changed_accuracy"] > 0.2 and warm["fwm_parse_rate"] == 1.0  # learnt, every prediction decodes
    first = StructuredModel.load(out / "seed_0" / "warmstart" / "fwm").state_dict()
    last = StructuredModel.load(out / "seed_0" / "wav" / "round_2" / "fwm").state_dict()
    assert any(not first[key].equal(last[key]) for key in first)  # the forward model kept training
    summary = (out / "summary.md").read_text()
    assert summary.startswith("| method | round |")
    # what each method labelled, from its journal: 8 labels a round, each counted once per action and per env
    labels = acquired_labels(out)
    assert [(row["method"], row["round"]) for row in labels] == sorted((m, r) for m in methods for r in (1, 2))
    assert all(row["labels"] == sum(row["actions"].values()) == sum(row["envs"].values()) == 8 for row in labels)
    journal = read_journal(out / "seed_0" / "oracle" / JOURNAL)
    changed = sum(label["next_state"] != label["state"] for label in journal if label["round"] == 1)
    assert next(row["changed"] for row in labels if row["method"] == "oracle" and row["round"] == 1) == changed > 0
    assert "What each method labelled (mean over seeds):" in summary and "| oracle | 1 | 1 | 8.0 |" in summary
    journals = {m: (out / "seed_0" / m / JOURNAL).read_text() for m in methods}
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done in" not in again.stdout  # every round was finished: nothing retrained, nothing executed
    assert {m: (out / "seed_0" / m / JOURNAL).read_text() for m in methods} == journals
    # labels to match random's final value, on the mean and on the seed's own curves (one seed: the same numbers)
    per_seed = summary.split("The same on each seed's own curves (its random's final value):")[1]
    assert all(f"| {m} | 0 | " in per_seed for m in methods if m != "random")
    # a later command with one method summarises every run in the folder, labels included, and prints summary.md
    alone = subprocess.run(command + ["--method", "random"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert (out / "summary.md").read_text() == summary and summary in alone.stdout
