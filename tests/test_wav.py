"""WAV acquisition: the sparse IDM's mask, the scores, the journal of executed labels, the recipe end to end."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.evaluation.metrics import field_mismatch
from swirl.envs.minigrid_env import WAV_ACTION_TEXTS
from swirl.envs.minigrid_text import state_to_text, text_to_state
from swirl.errors import SwirlError
from swirl.wav.journal import JOURNAL, execute_selected, read_journal
from swirl.training.swirl_config import SwirlConfig
from swirl.wav.wav_config import ACQUISITION_PREFIX, AcquisitionFields, WAVConfig
from swirl.wav.scores import PoolScorer, rank_correlations, top_b
from swirl.wav.world_models import LLMWorldModels
from swirl.wav.candidates import Simulator, pool_candidates
from swirl.wav.sparse_idm import SparseIDM, train_sparse_idm, try_predict

ROOT = Path(__file__).resolve().parents[1]
FWM_PROMPT = re.compile(r"State:\n(.*?\nend)\nAction: (.*?)\n", re.S)
SUBGOAL_PROMPT = re.compile(r"State:\n(.*?\nend)\nNext state\?", re.S)


@pytest.fixture(scope="module")
def noisy_data():
    return build_minigrid_dataset(["swirl/WAV-KeyDelivery-Noisy-v0"], episodes=40, max_steps=30, policy="expert",
                                  epsilon=0.3, test_episodes=8, seed=11, progress=False)


@pytest.fixture(scope="module")
def noisy_sparse_idm(noisy_data):
    train = noisy_data["labelled"].shuffle(seed=0).select(range(240))
    return train_sparse_idm(train["state"], train["action"], train["next_state"], WAV_ACTION_TEXTS, l1_weight=0.1)


# ------------------------------------------------------------------------------------------ sparse IDM
def test_the_mask_keeps_the_agents_neighbourhood_and_the_carried_object(noisy_data, noisy_sparse_idm):
    """The paper's claim on its own MiniGrid tasks: with noisy floor tiles, the L1 mask (weight 0.1) keeps a
    few features around the agent and drops most of the grid, and the sparse IDM beats the dense one."""
    train, test = noisy_data["labelled"].shuffle(seed=0).select(range(240)), noisy_data["test"]
    sparse = noisy_sparse_idm
    dense = train_sparse_idm(train["state"], train["action"], train["next_state"], WAV_ACTION_TEXTS, dense=True)
    assert len(dense.kept_features()) == len(dense.config.features)  # no mask: every feature is read
    kept = sparse.kept_features()
    assert {"ego(1,0)", "carrying", "turn"} <= set(kept), kept  # the turn replaces agent_dir (motion features)
    assert len(kept) <= len(sparse.config.features) // 3, kept
    assert sum(name.startswith("cell(") for name in kept) < 10, kept  # the absolute grid is mostly dropped

    def accuracy(model):
        return sum(p == a for p, a in zip(model.predict(test["state"], test["next_state"]), test["action"])) / test.num_rows

    assert accuracy(sparse) > max(accuracy(dense) + 0.05, 0.45), (accuracy(sparse), accuracy(dense))


def tiles_as_before(state: str, next_state: str) -> str:
    """``next_state`` with every floor tile (the rooms' only floors are the noisy tiles) as it was in ``state``: the
    prediction of a forward model that gets the step right and the tiles' random new colours wrong."""
    before, after = text_to_state(state), text_to_state(next_state)
    cells = tuple(old if new is not None and new.type == "floor" else new for old, new in zip(before.cells, after.cells))
    return state_to_text(replace(after, cells=cells), "objects" if next_state.startswith("objects") else "grid")


def test_the_masked_loss_reads_only_the_features_the_inverse_model_keeps(noisy_data, noisy_sparse_idm):
    """``score_loss: masked`` compares the steps s -> s~ and s -> s^ on the sparse IDM's kept features: an error
    in the noisy tiles' colours alone, which every whole-state loss counts, is mostly invisible to it, while a
    missed turn always shows (the turn is a kept feature)."""
    test = noisy_data["test"]
    states, next_states = list(test["state"]), list(test["next_state"])
    rows = [i for i in range(len(states)) if tiles_as_before(states[i], next_states[i]) != next_states[i]]
    assert len(rows) > 30  # the tiles change colour on most steps
    states, targets = [states[i] for i in rows], [next_states[i] for i in rows]
    tile_errors = [tiles_as_before(s, n) for s, n in zip(states, targets)]
    masked = noisy_sparse_idm.masked_mismatch(states, targets, tile_errors)
    assert all(field_mismatch(n, p) > 0 for n, p in zip(targets, tile_errors))
    # seen only where a tile is in a kept feature (the cell the agent faces, say)
    assert sum(loss == 0.0 for loss in masked) > len(rows) / 2, masked
    assert noisy_sparse_idm.masked_mismatch(states, targets, targets) == [0.0] * len(rows)
    assert noisy_sparse_idm.masked_mismatch(states[:1], targets[:1], ["grid 8x8\ngarbage"]) == [1.0]
    turns = [i for i, action in enumerate(test["action"]) if action in ("turn left", "turn right")]
    kept = len(noisy_sparse_idm.kept_features())
    missed_turns = noisy_sparse_idm.masked_mismatch([test["state"][i] for i in turns],
                                                    [test["next_state"][i] for i in turns],
                                                    [test["state"][i] for i in turns])  # s^ = s: the turn is missed
    assert turns and min(missed_turns) >= 1 / kept, missed_turns
    plain = type("PlainTokenizer", (), {"chat_template": None, "eos_token": "<eos>"})()
    with pytest.raises(ValueError, match="^score_loss masked needs a sparse or dense inverse model"):
        LLMWorldModels(None, plain, None, lambda s, n: [None] * len(s)).masked_mismatch(states, targets, targets)
    with pytest.raises(ValueError, match="^score_loss masked reads the sparse inverse model's mask"):
        WAVConfig(score_loss="masked", inverse_model="llm")


def test_sparse_idm_saves_loads_and_rejects_bad_folders(small_dataset, tmp_path):
    from datasets import load_from_disk

    rows = load_from_disk(str(small_dataset))["labelled"]
    model = train_sparse_idm(rows["state"], rows["action"], rows["next_state"], WAV_ACTION_TEXTS, steps=20)
    loaded = SparseIDM.load(model.save(tmp_path / "idm"))
    assert loaded.predict(rows["state"], rows["next_state"]) == model.predict(rows["state"], rows["next_state"])
    assert loaded.kept_features() == model.kept_features()
    (tmp_path / "idm" / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(SwirlError, match="not a readable sparse IDM"):
        SparseIDM.load(tmp_path / "idm")
    # a malformed generated state gets None, the others are still predicted
    answers = try_predict(model, [rows["state"][0]] * 2, ["grid 8x8\ngarbage", rows["next_state"][0]])
    assert answers[0] is None and answers[1] in WAV_ACTION_TEXTS
    with pytest.raises(ValueError, match="not among the action labels"):
        train_sparse_idm(rows["state"][:2], ["fly", "turn left"], rows["next_state"][:2], WAV_ACTION_TEXTS)


# ------------------------------------------------------------------------------------------ scores
def test_field_mismatch_and_rank_correlation_known_answers(small_dataset):
    from datasets import load_from_disk

    row = load_from_disk(str(small_dataset))["labelled"][0]
    assert field_mismatch(row["state"], row["state"]) == 0.0
    assert field_mismatch(row["state"], "not a state") == 1.0
    changed = sum(a != b for a, b in zip(row["state"].split(), row["next_state"].split()))
    assert 0.0 < field_mismatch(row["state"], row["next_state"]) <= 3 * max(changed, 1) / 67
    assert rank_correlations([1, 2, 3], [10, 20, 30]) == {"spearman": 1.0, "kendall": 1.0}
    assert rank_correlations([3, 2, 1], [10, 20, 30])["spearman"] == -1.0
    assert rank_correlations([-math.inf, 2, 3], [0, 20, 30])["spearman"] == 1.0  # never proposed ranks last
    assert rank_correlations([-math.inf, 2, 3], [90, 20, 30])["spearman"] == pytest.approx(-0.5)
    assert rank_correlations([-math.inf, 2, 3], [90, 20, 30], scored_only=True)["spearman"] == pytest.approx(1.0)
    assert math.isnan(rank_correlations([-math.inf, -math.inf, 3], [1, 2, 3], scored_only=True)["spearman"])
    assert math.isnan(rank_correlations([1, 1, 1], [1, 2, 3])["spearman"])
    assert set(top_b([0.1, 0.9, 0.5, 0.9], 2)) == {1, 3} and top_b([0.1, 0.9, 0.5, 0.9], 3)[2] == 2
    ties = [top_b([-math.inf] * 50, 5, seed) for seed in (0, 1)]
    assert ties[0] != ties[1] and ties[0] != [0, 1, 2, 3, 4] and ties[0] == top_b([-math.inf] * 50, 5, 0)


class EnvSampler:
    """Samplers for the scorer whose 'models' are the real env: subgoals are true next states of random
    actions; the FWM copies its input (``copy=True``) or looks the truth up."""

    def __init__(self, simulate, candidates, copy: bool):
        self.copy = copy
        self.truth = {(c.state, c.action): simulate(c)["next_state"] for c in candidates}

    def generate(self, prompts, adapter=None, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, stop=None):
        if adapter == "subgoal":
            states = [SUBGOAL_PROMPT.search(p).group(1) for p in prompts]
            return [[self.truth[(s, WAV_ACTION_TEXTS[(i + k) % 7])] for k in range(n)] for i, s in enumerate(states)]
        pairs = [FWM_PROMPT.search(p).groups() for p in prompts]
        return [[state if self.copy else self.truth[(state, action)]] * n for state, action in pairs]


def test_wav_scores_rank_like_the_oracle_when_the_cycle_is_right(noisy_data):
    """With real subgoals and a correct inverse model, WAV's verification score of the copy FWM is its true
    error: rank correlation with the oracle is high, and the top-B are the actions that change the state."""
    rows = noisy_data["state_only"].select(range(12))
    candidates = pool_candidates(rows)
    assert len(candidates) == 12 * 7 and {c.action for c in candidates} == set(WAV_ACTION_TEXTS)
    simulate = Simulator()
    sampler = EnvSampler(simulate, candidates, copy=True)
    truth_to_action = {(s, n): a for (s, a), n in sampler.truth.items()}
    perfect_inverse = lambda states, subgoals: [truth_to_action.get((s, g)) for s, g in zip(states, subgoals)]  # noqa: E731
    plain = type("PlainTokenizer", (), {"chat_template": None, "eos_token": "<eos>"})()
    scorer = PoolScorer(candidates, LLMWorldModels(None, plain, sampler, perfect_inverse), subgoals=7, seed=0,
                        simulate=simulate)
    wav, oracle = scorer.score("wav"), scorer.oracle()
    # actions with the same next state (no-ops) collide: one candidate per distinct next state is proposed
    assert scorer.details["candidates_proposed"] == len(truth_to_action) > 40
    proposed = [i for i, score in enumerate(wav) if score > -math.inf]
    assert [wav[i] for i in proposed] == [oracle[i] for i in proposed]  # the score IS the copy FWM's true error
    assert rank_correlations(wav, oracle)["spearman"] > 0.5  # the unproposed no-ops rank last
    assert all(oracle[i] > 0 for i in top_b(wav, 10))
    assert scorer.uncertainty() == [0.0] * len(candidates)  # a deterministic copy never disagrees with itself
    random_scores = scorer.random()
    assert len(set(random_scores)) == len(candidates) and random_scores == scorer.random()  # seeded
    perfect = PoolScorer(candidates, LLMWorldModels(None, plain, EnvSampler(simulate, candidates, copy=False),
                                                    perfect_inverse), simulate=simulate)
    assert perfect.oracle() == [0.0] * len(candidates)


def test_execution_reproduces_the_recorded_transition(noisy_data):
    simulate = Simulator()
    for row in noisy_data["labelled"].select(range(0, 60, 7)):
        candidate = next(c for c in pool_candidates([row]) if c.action_id == row["action_id"])
        assert simulate(candidate)["next_state"] == row["next_state"]  # noisy tiles included
    broken = pool_candidates([noisy_data["labelled"][3] | {"state": noisy_data["labelled"][5]["state"]}])[0]
    with pytest.raises(SwirlError, match="does not reproduce the pool state"):
        simulate(broken)


# ------------------------------------------------------------------------------------------ journal
def test_a_killed_execution_loses_no_label_and_repeats_none(noisy_data, tmp_path):
    candidates = pool_candidates(noisy_data["state_only"].select(range(2)))[:6]
    simulate, calls = Simulator(), []

    def crashing(candidate):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies here
        calls.append(candidate.key)
        return simulate(candidate)

    journal = tmp_path / JOURNAL
    with pytest.raises(KeyboardInterrupt):
        execute_selected(candidates, 1, journal, crashing)
    assert [row["key"] for row in read_journal(journal)] == calls
    with open(journal, "a") as file:  # a torn line: killed in the middle of a write
        file.write('{"key": "half')
    calls.clear()
    rows = execute_selected(candidates, 1, journal, lambda c: calls.append(c.key) or simulate(c))
    assert calls == [c.key for c in candidates[3:]]  # only the three not yet executed
    assert [row["key"] for row in rows] == [c.key for c in candidates]
    assert all(row["round"] == 1 and row["next_state"].endswith("end") for row in rows)
    assert execute_selected(candidates, 1, journal, lambda c: pytest.fail("executed twice")) == rows
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "{torn", *lines[1:]]) + "\n")  # damage before later labels
    with pytest.raises(SwirlError, match="line 2 is corrupt but later labels exist"):
        read_journal(journal)


def test_config_rejects_bad_values_by_name():
    assert WAVConfig(method="all").methods == ["wav", "random", "uncertainty", "progress", "oracle"]
    assert WAVConfig(method="wav, random").methods == ["wav", "random"]
    for kwargs, name in [({"method": "greedy"}, "method"), ({"budget": 0}, "budget"),
                         ({"score_loss": "l2"}, "score_loss"), ({"inverse_model": "cnn"}, "inverse_model"),
                         ({"uncertainty_samples": 1}, "uncertainty_samples"), ({"sft_eval_rows": -1}, "sft_eval_rows")]:
        with pytest.raises(ValueError, match=f"^{name} "):
            WAVConfig(**kwargs)


# ------------------------------------------------------------------------------------------ recipe
def recipe_command(out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(ROOT / "recipes/accelerate_configs/cpu.yaml"), str(ROOT / "recipes/wav_minigrid.py"),
            "--config", str(ROOT / "recipes/minigrid/wav-tiny.yaml"), "--output_dir", str(out), *flags]


def test_every_method_runs_end_to_end_under_accelerate(tmp_path):
    out = tmp_path / "wav"
    result = subprocess.run(recipe_command(out, "--report_to", "tensorboard"), capture_output=True, text=True,
                            cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    # each round ends with one line and goes to the tracker at its number of labels, with the score's correlation
    assert "swirl: seed_0/oracle/round_1 done in " in result.stdout
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard" / "seed_0" / "oracle" / "round_1"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("wav/oracle_spearman")] == [(20, pytest.approx(1.0))]
    assert [e.step for e in events.Scalars("eval/fwm_exact_match")] == [20]
    methods = ["wav", "random", "uncertainty", "progress", "oracle"]
    assert [(l["method"], l["round"], l["labels"]) for l in lines] == [(m, r, 16 + 4 * r) for m in methods for r in range(3)]
    selections = {}
    for method in methods:
        run = out / "seed_0" / method
        keys = [row["key"] for row in read_journal(run / JOURNAL)]
        assert len(keys) == len(set(keys)) == 8  # 2 rounds x budget 4, none twice
        selections[method] = keys[:4]
        from datasets import load_from_disk

        assert load_from_disk(str(run / "round_2" / "labelled"))["labelled"].num_rows == 24
        metrics = json.loads((run / "round_2" / "metrics.json").read_text())
        # picks with no score (WAV beyond what its subgoals propose: -inf, null in JSON) are counted and announced
        picked = json.loads((run / "round_2" / "selected.json").read_text())["selected"]
        assert metrics["unscored_picks"] == sum(c["score"] is None for c in picked)
        if method != "wav":
            assert metrics["unscored_picks"] == 0
        elif metrics["unscored_picks"]:
            assert (f"swirl: note: wav scored {4 - metrics['unscored_picks']} candidates for a budget of 4; the other "
                    f"{metrics['unscored_picks']} are unscored candidates in random order") in result.stderr
        spearman = metrics["correlation_with_oracle"]["spearman"]
        # null (NaN in strict JSON) only for a constant score: tiny-model subgoals do not parse (wav proposes
        # nothing) and its samples all disagree completely (uncertainty 1.0 everywhere)
        if method in ("random", "progress", "oracle") or spearman is not None:
            assert -1.0 <= spearman <= 1.0
    assert selections["oracle"] != selections["random"]
    oracle_line = next(l for l in lines if l["method"] == "oracle" and l["round"] == 1)
    assert oracle_line["oracle_spearman"] == pytest.approx(1.0)
    # the fwm adapter kept training round after round
    from safetensors.torch import load_file

    def lora(stage):
        return load_file(str(stage / "fwm" / "adapter_model.safetensors"))

    first, last = lora(out / "seed_0" / "warmstart"), lora(out / "seed_0" / "wav" / "round_2")
    assert any((first[k] != last[k]).any() for k in first)
    warm_training = json.loads((out / "seed_0" / "warmstart" / "metrics.json").read_text())["training"]
    kept = warm_training["inverse"]
    assert 0 < len(kept["kept_features"]) <= kept["num_features"]
    # sft_eval_rows 0 (the default): no SFT eval loss; every round's evaluation measures the FWM's NLL instead
    assert warm_training["fwm"]["eval_rows"] == 0 and warm_training["fwm"]["eval_loss_after"] is None  # NaN -> null
    assert (out / "summary.md").read_text().startswith("| method | round |")
    assert (out / "error_vs_labels.png").stat().st_size > 1000


def test_a_killed_run_resumes_without_executing_anything_twice(tmp_path):
    out = tmp_path / "wav"
    flags = ("--method", "random", "--rounds", "3")
    process = subprocess.Popen(recipe_command(out, *flags), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / "seed_0" / "random" / JOURNAL
    deadline = time.time() + 600
    while time.time() < deadline and len(read_journal(journal)) < 4 and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # mid-run: after round 1's labels, before the run ends
    process.wait()
    before = read_journal(journal)
    assert len(before) >= 4
    result = subprocess.run(recipe_command(out, *flags), capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    after = read_journal(journal)
    assert after[: len(before)] == before  # nothing lost or rewritten
    assert len(after) == len({row["key"] for row in after}) == 12
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["labels"] for line in lines] == [16, 20, 24, 28]


def test_an_adapter_the_stage_already_holds_is_kept_not_trained_again(small_dataset, tokenizer, tmp_path):
    """A warm start killed after its forward model's SFT resumes at the next model: the saved adapter is kept,
    byte for byte, and its SFT metrics come back marked as reused."""
    from datasets import load_from_disk

    from swirl.wav.round_models import train_adapter

    data = load_from_disk(str(small_dataset))
    config = WAVConfig(model="tiny-qwen2", output_dir=str(tmp_path), lora_r=8, lora_alpha=16)
    first = train_adapter(config, tokenizer, "fwm", data["labelled"], data["test"], tmp_path, None, 2, 0)
    weights = tmp_path / "fwm" / "adapter_model.safetensors"
    saved = weights.read_bytes(), weights.stat().st_mtime_ns
    again = train_adapter(config, tokenizer, "fwm", data["labelled"], data["test"], tmp_path, None, 2, 0)
    assert "reused" not in first and again["reused"] is True
    assert (again["role"], again["train_rows"], again["wall_time_s"]) == (first["role"], first["train_rows"],
                                                                           first["wall_time_s"])
    assert (weights.read_bytes(), weights.stat().st_mtime_ns) == saved
    (tmp_path / "trainer" / "fwm" / "sft_metrics.json").unlink()  # an adapter placed by hand: kept, metrics unknown
    assert train_adapter(config, tokenizer, "fwm", data["labelled"], data["test"], tmp_path, None, 2, 0) == {
        "reused": True}


@pytest.mark.parametrize("backend", ["llm", "structured"])
def test_swirl_warm_starts_on_the_labels_wav_acquired(tmp_path, backend):
    """`acquisition: wav` in the SWIRL recipe, with either backend choosing: the warm start trains on the seed
    labels + acquired labels."""
    out = tmp_path / "swirl"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "recipes/accelerate_configs/cpu.yaml"), str(ROOT / "recipes/swirl_minigrid.py"),
               "--config", str(ROOT / "recipes/minigrid/cpu-tiny.yaml"), "--output_dir", str(out), "--iterations", "0",
               "--sft_steps", "8", "--acquisition", "wav", "--acquisition_rounds", "1", "--acquisition_budget", "5",
               "--acquisition_seed_labels", "10", "--acquisition_pool_states", "4", "--acquisition_subgoals", "2",
               "--acquisition_score_loss", "nll", "--acquisition_backend", backend]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from datasets import load_from_disk

    data = load_from_disk(str(out / "data_acquired"))
    assert data["labelled"].num_rows == 15 and data["state_only"].num_rows == load_from_disk(str(out / "data"))["state_only"].num_rows
    acquired = read_journal(out / "acquisition" / "seed_0" / "wav" / JOURNAL)
    assert {row["key"] for row in acquired} <= {f"{e}|{s}|{t}|{a}" for e, s, t, a in zip(
        data["labelled"]["env_id"], data["labelled"]["seed"], data["labelled"]["step"], data["labelled"]["action_id"])}
    training = json.loads((out / "warmstart" / "metrics.json").read_text())["training"]
    assert training["fwm"]["train_rows"] == training["idm"]["train_rows"] == 15
    chooser = out / "acquisition" / "seed_0" / "warmstart" / "fwm"
    assert (chooser / ("adapter_config.json" if backend == "llm" else "config.json")).exists()


def test_swirl_and_wav_share_one_acquisition_definition():
    """SwirlConfig's acquisition_<name> fields are AcquisitionFields' (help, type, checks), read back as one object."""
    twins = {f.name: f for f in fields(SwirlConfig)}
    for source in fields(AcquisitionFields):
        twin = twins[ACQUISITION_PREFIX + source.name]
        assert (twin.type, twin.metadata["help"]) == (source.type, source.metadata["help"])
    assert {f.name for f in fields(AcquisitionFields)} <= {f.name for f in fields(WAVConfig)}
    config = SwirlConfig(acquisition_budget=5, acquisition_backend="structured")
    assert config.acquisition_fields() == AcquisitionFields(rounds=2, budget=5, backend="structured")  # rounds: 2
    with pytest.raises(ValueError, match=r"^acquisition_pool_states must be >= 1 \(got 0\)$"):
        SwirlConfig(acquisition_pool_states=0)
    with pytest.raises(ValueError, match=r"^pool_states must be >= 1 \(got 0\)$"):
        WAVConfig(pool_states=0)


def test_unknown_acquisition_method_is_one_line():
    result = subprocess.run([sys.executable, str(ROOT / "recipes/swirl_minigrid.py"), "--acquisition", "greedy"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("swirl: error: acquisition must be none or one of wav")


def test_wav_with_the_llm_inverse_model_and_the_fields_loss(tmp_path):
    """The other switches: the `idm` adapter as WAV's inverse model, the generated-state `fields` loss."""
    out = tmp_path / "wav"
    result = subprocess.run(recipe_command(out, "--method", "wav", "--rounds", "1", "--inverse_model", "llm",
                                           "--score_loss", "fields", "--sft_eval_rows", "2"),
                            capture_output=True, text=True, cwd=tmp_path,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    warm, round_1 = out / "seed_0" / "warmstart", out / "seed_0" / "wav" / "round_1"
    assert (warm / "idm" / "adapter_config.json").exists() and not (warm / "sparse_idm").exists()
    assert (round_1 / "idm" / "adapter_config.json").exists()
    training = json.loads((round_1 / "metrics.json").read_text())["training"]
    assert training["inverse"]["eval_rows"] == training["fwm"]["eval_rows"] == 2  # --sft_eval_rows 2
    assert math.isfinite(training["fwm"]["eval_loss_before"]) and math.isfinite(training["fwm"]["eval_loss_after"])
    selection = json.loads((round_1 / "selected.json").read_text())
    assert len(selection["selected"]) == 4 and selection["details"]["subgoals"] > 0
    assert all(0.0 <= c["oracle_error"] <= 1.0 for c in selection["selected"])  # fields: a mismatch fraction
    line = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert line["labels"] == 20 and 0.0 <= line["idm_accuracy"] <= 1.0


def test_wav_nll_score_and_progress_with_a_real_model(noisy_data, tokenizer, tmp_path):
    """The `nll` verification loss is the FWM's NLL of the subgoal given the inferred action (with real
    subgoals and a correct inverse model: the oracle NLL itself); `progress` is positive where training raised
    the FWM's likelihood of its own prediction, zero where nothing changed, and flips with the adapters."""
    from swirl.models.adapters import lora_config, save_adapter, with_adapters
    from swirl.models.loading import load_base_model
    from swirl.sft import sft_adapter

    rows = noisy_data["state_only"].select(range(3))
    candidates = pool_candidates(rows)
    simulate = Simulator()
    sampler = EnvSampler(simulate, candidates, copy=True)  # predictions: s^ = s
    truth_to_action = {(s, n): a for (s, a), n in sampler.truth.items()}
    inverse = lambda states, subgoals: [truth_to_action.get((s, g)) for s, g in zip(states, subgoals)]  # noqa: E731
    copy_rows = noisy_data["labelled"].select(range(16)).map(lambda row: {"next_state": row["state"]})
    sft_adapter("tiny-qwen2", tokenizer, "fwm", copy_rows, copy_rows.select(range(2)), tmp_path / "trained",
                lora=(8, 16, 0.0), steps=15, learning_rate=5e-3)
    save_adapter(with_adapters(load_base_model("tiny-qwen2"), {"default": lora_config(8, 16, 0.0)}), "default",
                 tmp_path / "initial")

    def scorer(now, before):
        model = with_adapters(load_base_model("tiny-qwen2"), {"fwm": tmp_path / now, "fwm_before": tmp_path / before})
        return PoolScorer(candidates, LLMWorldModels(model, tokenizer, sampler, inverse), score_loss="nll",
                          subgoals=7, simulate=simulate)

    trained = scorer("trained", "initial")
    wav, oracle = trained.score("wav"), trained.oracle()
    proposed = [i for i, score in enumerate(wav) if score > -math.inf]
    assert len(proposed) > 5
    assert [wav[i] for i in proposed] == pytest.approx([oracle[i] for i in proposed], abs=1e-5)
    progress = trained.progress()
    assert sum(progress) / len(progress) > 0  # training on copies raised the likelihood of the copy prediction
    assert scorer("initial", "trained").progress() == pytest.approx([-p for p in progress], abs=1e-5)
    assert scorer("trained", "trained").progress() == pytest.approx([0.0] * len(progress), abs=1e-6)


def test_the_pool_and_the_subgoal_data_never_share_an_episode(noisy_data):
    from swirl.wav.seed_data import split_data

    parts = split_data(WAVConfig(pool_states=40, seed_labels=8, eval_rows=4), noisy_data, seed=0)
    episodes = lambda rows: set(zip(rows["env_id"], rows["episode"]))  # noqa: E731
    assert episodes(parts["pool"]).isdisjoint(episodes(parts["subgoal"])) and parts["subgoal"].num_rows > 0
    states = list(zip(parts["pool"]["env_id"], parts["pool"]["state"]))
    assert len(states) == len(set(states)) == 40  # distinct pool states
    one_episode = noisy_data["state_only"].filter(lambda row: row["episode"] == noisy_data["state_only"][0]["episode"])
    with pytest.raises(SwirlError, match="at least two state-only episodes"):
        split_data(WAVConfig(), {**noisy_data, "state_only": one_episode}, seed=0)


def test_a_folder_is_not_resumed_with_other_settings(tmp_path):
    from swirl.wav.acquisition import check_fingerprint

    check_fingerprint(WAVConfig(budget=4), tmp_path / "wav_config.json")
    check_fingerprint(WAVConfig(budget=4, method="random", rounds=9), tmp_path / "wav_config.json")  # may change
    with pytest.raises(SwirlError, match="budget differ"):
        check_fingerprint(WAVConfig(budget=8), tmp_path / "wav_config.json")


def test_a_folder_made_before_a_new_setting_still_resumes(tmp_path):
    """A setting added since a folder was made counts as recorded at its default: old runs resume, a non-default
    value of the new setting is refused like any other change."""
    from swirl.config_fields import field_defaults
    from swirl.paths import refuse_other_settings

    path = tmp_path / "run" / "settings.json"
    refuse_other_settings(path, {"budget": 16})  # made before `backend` existed
    defaults = field_defaults(WAVConfig)
    assert defaults["backend"] == "llm" and defaults["seeds"] == [0]
    refuse_other_settings(path, {"budget": 16, "backend": "llm"}, defaults=defaults)
    with pytest.raises(SwirlError, match=r"other settings \(backend differ\)"):
        refuse_other_settings(path, {"budget": 16, "backend": "structured"}, defaults=defaults)
    with pytest.raises(SwirlError, match=r"other settings \(budget differ\)"):
        refuse_other_settings(path, {"budget": 8, "backend": "llm"}, defaults=defaults)


def test_rounds_continue_the_adapters_at_their_own_learning_rate(noisy_data, tokenizer, tmp_path):
    """round_learning_rate drives only the rounds' SFT (an adapter continued from ``previous``): a tiny round rate
    leaves the warm start's weights all but unchanged, while the default (sft_learning_rate) moves them."""
    from safetensors.torch import load_file

    from swirl.wav.round_models import train_forward_model

    rows, test = noisy_data["labelled"].select(range(16)), noisy_data["test"]

    def lora(stage):
        return load_file(str(stage / "fwm" / "adapter_model.safetensors"))

    def change(round_learning_rate, name):
        config = WAVConfig(model="tiny-qwen2", output_dir=str(tmp_path), lora_r=8, lora_alpha=16,
                           sft_learning_rate=5e-3, round_learning_rate=round_learning_rate, max_state_tokens=48)
        if not (tmp_path / "warm" / "fwm").exists():
            train_forward_model(config, tokenizer, rows, test, tmp_path / "warm", None, seed=0)
        train_forward_model(config, tokenizer, rows, test, tmp_path / name, tmp_path / "warm", seed=0)
        warm, after = lora(tmp_path / "warm"), lora(tmp_path / name)
        return max((after[key] - warm[key]).abs().max().item() for key in warm)

    assert change(1e-9, "round_slow") < 1e-6
    assert change(None, "round_default") > 1e-4
    with pytest.raises(ValueError, match="^round_learning_rate "):
        WAVConfig(round_learning_rate=0.0)
