"""The self-improvement study (swirl.study, run by benchmarks/quality_minigrid.py): every arm of its smoke preset,
the no-op test, the paired statistics and the power calculation, resuming after a kill, parallel seeds, and the
presets it documents."""

from __future__ import annotations

import doctest
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from swirl.data import load_dataset_dict
from swirl.study import reward_alignment
from swirl.study import statistics as study_statistics
from swirl.study.study_config import ARMS, DEFAULT_ARMS, QualityConfig

REPO = Path(__file__).resolve().parent.parent
STUDY = [sys.executable, str(REPO / "benchmarks" / "quality_minigrid.py"), "--config",
         str(REPO / "recipes" / "minigrid" / "quality-tiny.yaml")]
ARM_STAGES = [("sft", "warmstart"), ("sft_more", "sft_more"), ("pseudo", "pseudo"), ("oracle_pairs", "oracle_pairs"),
              ("swirl", "warmstart"), ("swirl", "iter_1/phase1"), ("swirl", "iter_1/phase2"),
              ("swirl_anchored", "warmstart"), ("swirl_anchored", "iter_1/phase1"), ("swirl_anchored", "iter_1/phase2"),
              ("wav_swirl", "warmstart"), ("wav_swirl", "iter_1/phase1"), ("wav_swirl", "iter_1/phase2"),
              ("upper", "warmstart")]


def tensors(adapter: Path) -> dict[str, torch.Tensor]:
    return load_file(str(adapter / "adapter_model.safetensors"))


def test_every_arm_of_the_scarce_regime_with_paired_differences(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--arms", *ARMS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "quality.json").read_text())
    assert report["regime"] == "scarce"
    assert [(row["arm"], row["stage"]) for row in report["table"]] == ARM_STAGES
    assert all(row["seeds"] == 1 and 0 <= row["fwm_changed_accuracy"] <= 1 for row in report["table"])

    # scarce: 1 of each env's 10 training episodes keeps its actions; every arm but upper (and WAV, which chooses
    # its own) trains on exactly those labels
    data, data_all = load_dataset_dict(out / "seed_0" / "data"), load_dataset_dict(out / "seed_0" / "data_all")
    assert len(set(zip(data["labelled"]["env_id"], data["labelled"]["episode"]))) == 2
    labels = report["labelled_rows"]
    assert {labels[f"seed_0/{arm}"] for arm in ARMS if arm != "upper"} == {data["labelled"].num_rows}
    assert labels["seed_0/upper"] == data_all["labelled"].num_rows == data["labelled"].num_rows + data["state_only"].num_rows
    seed = out / "seed_0"

    # WAV's own models train for acquisition_sft_steps (a quarter per round), not the warm start's sft_steps
    acquisition = json.loads((seed / "wav_swirl" / "acquisition" / "wav_config.json").read_text())
    assert (acquisition["warm_start_steps"], acquisition["subgoal_steps"], acquisition["round_steps"]) == (20, 20, 5)
    # a pool of 2 states per label to acquire, so that WAV's proposals (~1.5 a state) can outnumber its budget
    assert acquisition["pool_states"] == 2 * acquisition["budget"] > 4  # the preset runs one round

    # sft_more continued both warm-start adapters; pseudo and oracle_pairs the fwm only, on labelled + the pairs
    warm = {role: tensors(seed / "swirl" / "warmstart" / role) for role in ("fwm", "idm")}
    for role in ("fwm", "idm"):
        more = tensors(seed / "sft_more" / role)
        assert any(not torch.equal(more[k], warm[role][k]) for k in more)
    swirl_pairs = [json.loads(line) for line in (seed / "swirl" / "iter_1" / "phase1" / "latent_actions.jsonl").open()]
    for arm in ("pseudo", "oracle_pairs"):
        fwm, idm = tensors(seed / arm / "fwm"), tensors(seed / arm / "idm")
        assert any(not torch.equal(fwm[k], warm["fwm"][k]) for k in fwm)
        assert all(torch.equal(idm[k], warm["idm"][k]) for k in idm)
        training = json.loads((seed / arm / "metrics.json").read_text())["training"]
        assert training["extra_steps"] == 2 and training["learning_rate"] == 1e-3  # SWIRL's GRPO rate
        assert training["fwm"]["train_rows"] == data["labelled"].num_rows + training["state_only_pairs"]
    assert json.loads((seed / "oracle_pairs" / "metrics.json").read_text())["training"]["state_only_pairs"] == len(
        swirl_pairs) == 4  # the very pairs SWIRL's phase I annotated (all kept at the tiny preset's threshold)
    pseudo = json.loads((seed / "pseudo" / "metrics.json").read_text())["training"]
    labels = pseudo["pseudo_labels"]  # a recorded action always reproduces s': equivalent accuracy is at least as high
    assert 0 <= labels["pseudo_label_accuracy"] <= labels["pseudo_label_equivalent_accuracy"] <= 1
    assert sum(labels["latent_action_counts"].values()) == labels["kept_pairs"]

    # swirl_anchored starts from swirl's warm start (copied, not retrained) and its phase I adds the anchor reward
    for role in ("fwm", "idm"):
        assert tensors(seed / "swirl_anchored" / "warmstart" / role).keys() == warm[role].keys()
        assert all(torch.equal(tensors(seed / "swirl_anchored" / "warmstart" / role)[k], warm[role][k]) for k in warm[role])
    anchored = json.loads((seed / "swirl_anchored" / "iter_1" / "phase1" / "metrics.json").read_text())["training"]
    plain = json.loads((seed / "swirl" / "iter_1" / "phase1" / "metrics.json").read_text())["training"]
    assert all("rewards/observed_next_state/mean" in step for step in anchored["log"])
    assert not any("rewards/observed_next_state/mean" in step for step in plain["log"])
    assert plain["distinct_pairs_trained"] == plain["pairs_available"] == 4 and plain["max_steps"] == 2

    # what phase I's latent actions were, from the pairs each phase I kept (latent_actions.jsonl)
    latent = report["latent_actions"]
    assert [(row["run"], row["stage"]) for row in latent] == [
        (run, "iter_1/phase1") for run in ("swirl", "swirl_anchored", "wav_swirl")]
    assert all(row["kept"] >= 1 and 0 <= row["accuracy"] <= row["equivalent_accuracy"] <= 1 for row in latent)
    assert all(-100.0 <= line["logprob"] <= 0.0 for line in swirl_pairs) and len({line["logprob"] for line in swirl_pairs}) > 1

    # the no-op test rows: executed in the real env, nothing changes, at most 2 per action, never a turn
    rows = load_dataset_dict(seed / "noop_test")["test"]
    assert rows.num_rows > 2 and all(row["state"] == row["next_state"] for row in rows)
    assert max(Counter(rows["action"]).values()) == 2 and "turn left" not in rows["action"]
    # the headline: every arm's changed-cell accuracy, no-op exact match, NLL and state-only pairs trained
    headline = {row["arm"]: row for row in report["headline"]}
    assert list(headline) == list(ARMS)
    assert all(0 <= row["noop_exact_match"] <= 1 and row["fwm_nll"] > 0 for row in headline.values())
    assert {arm: headline[arm]["state_only_pairs_trained"] for arm in ARMS} == {
        "sft": 0, "sft_more": 0, "pseudo": pseudo["state_only_pairs"], "oracle_pairs": 4, "swirl": 4,
        "swirl_anchored": 4, "wav_swirl": 4, "upper": 0}
    # wall time beyond the shared warm start: a SWIRL run's stages record their seconds
    assert not any(row["wall_time_includes_warm_start"] for row in headline.values())
    swirl_stages = [json.loads((seed / "swirl" / "iter_1" / f"phase{k}" / "metrics.json").read_text())["seconds"]
                    for k in (1, 2)]
    assert headline["swirl"]["wall_time_s"] == pytest.approx(sum(swirl_stages)) and headline["sft"]["wall_time_s"] is None
    assert headline["swirl"]["vs_sft"]["mean_difference"] == pytest.approx(
        headline["swirl"]["fwm_changed_accuracy"] - headline["sft"]["fwm_changed_accuracy"])
    assert (seed / "upper" / "warmstart" / "noop_eval" / "eval.json").exists()

    # phase I's reward against the truth (swirl.study.reward_alignment), on the pairs phase I trained on
    alignment = subprocess.run([sys.executable, str(REPO / "benchmarks" / "reward_alignment.py"), "--study_config",
                                str(REPO / "recipes" / "minigrid" / "quality-tiny.yaml"), "--study_output_dir", str(out),
                                "--samples", "3", "--stages", "swirl/warmstart", "swirl_anchored/iter_1/phase1",
                                "--output", str(tmp_path / "alignment")],
                               capture_output=True, text=True, timeout=600, cwd=REPO)
    assert alignment.returncode == 0, alignment.stderr[-3000:]
    measured = json.loads((tmp_path / "alignment.json").read_text())["seeds"]["0"]
    assert set(measured) == {"swirl/warmstart", "swirl_anchored/iter_1/phase1"}
    found = measured["swirl/warmstart"]
    assert found["samples_per_pair"] == 3 and len(found["pairs"]) == len(swirl_pairs) == found["all"]["pairs"]
    assert found["z_recorded"]["pairs"] + found["z_not_recorded"]["pairs"] == len(swirl_pairs)
    assert all(len(line["rewards"]) == 3 and all(r >= -10.0 for r in line["rewards"]) for line in found["pairs"])
    assert 0 <= found["all"]["correct_share"] <= 1
    assert "| swirl_anchored/iter_1/phase1 | all | 1 |" in (tmp_path / "alignment.md").read_text()

    # each arm against sft and against pseudo; one seed has no interval
    differences = {(row["arm"], row["reference"]): row for row in report["differences"]}
    assert set(differences) == {(arm, ref) for ref in ("sft", "sft_more", "pseudo") for arm in ARMS if arm != ref}
    others = {(row["metric"], row["arm"], row["reference"]): row for row in report["other_differences"]}
    nll = others[("fwm_nll", "oracle_pairs", "sft_more")]
    assert nll["mean_difference"] == pytest.approx(headline["oracle_pairs"]["fwm_nll"] - headline["sft_more"]["fwm_nll"])
    assert ("noop_exact_match", "swirl", "sft") in others and "| fwm_nll | oracle_pairs | sft_more | 1 |" in (
        out / "quality.md").read_text()
    swirl = differences[("swirl", "sft")]
    assert swirl["mean_difference"] == pytest.approx(swirl["arm_mean"] - swirl["reference_mean"])
    assert swirl["ci95_low"] is None and swirl["seeds"] == 1 and swirl["seeds_for_effect"] is None
    assert set(report["per_action"]) == set(ARMS) and set(report["noop_per_action"]) == set(ARMS)
    markdown = (out / "quality.md").read_text()
    for text in ("| sft_more | sft_more | 1 |", "| swirl | sft | 1 |", "Pseudo labels:", "| swirl | iter_1/phase1 | 1 |",
                 "| `oracle_pairs` (oracle_pairs) | 1 |", "FWM exact match per action on the no-op rows"):
        assert text in markdown
    assert (out / "quality.png").stat().st_size > 0
    diagnostics = report["phase_diagnostics"]  # the GRPO evidence per run and phase, read from the stages' logs
    assert [(row["run"], row["stage"]) for row in diagnostics] == [
        (run, f"iter_1/phase{phase}") for run in ("swirl", "swirl_anchored", "wav_swirl") for phase in (1, 2)]
    assert all(0 <= row["keep_rate"] <= 1 and row["reward_std"] >= 0 for row in diagnostics[::2])
    assert all(row["distinct_pairs_trained"] == 4 for row in diagnostics)
    assert all(0 < row["scored_share"] <= 1 for row in diagnostics[1::2])  # phase II: each distinct action once
    assert "GRPO phases (means over seeds and steps):" in markdown
    assert set(json.loads((seed / "wall_time.json").read_text())) == set(ARMS) - {"sft"}
    noop_eval = seed / "upper" / "warmstart" / "noop_eval" / "eval.json"
    evaluated = noop_eval.stat().st_mtime_ns
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)  # resumes: nothing to redo
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((out / "quality.json").read_text())["table"] == report["table"]
    assert noop_eval.stat().st_mtime_ns == evaluated  # the no-op test was read, not rerun
    # --report_only reads the finished arms and runs nothing: an unfinished arm is left out, not started
    (seed / "pseudo" / "metrics.json").rename(seed / "pseudo" / "metrics.json.away")
    only = subprocess.run(command + ["--report_only", "true"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert only.returncode == 0, only.stderr[-3000:]
    partial = json.loads((out / "quality.json").read_text())["table"]
    assert partial == [row for row in report["table"] if row["arm"] != "pseudo"]
    assert not (seed / "pseudo" / "metrics.json").exists()
    (seed / "pseudo" / "metrics.json.away").rename(seed / "pseudo" / "metrics.json")

    # the runs it leaves are ordinary run folders: `swirl report` compares them, `swirl wav-report` reads WAV's
    swirl = [sys.executable, "-m", "swirl.cli"]
    compared = subprocess.run(swirl + ["report", "--run", f"sft={seed / 'swirl'}", "--run", f"upper={seed / 'upper'}",
                                       "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "| sft (iter_1/phase2) |" in (tmp_path / "report" / "report.md").read_text()
    wav = subprocess.run([sys.executable, "-m", "eval.acquisition", str(seed / "wav_swirl" / "acquisition")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)  # the old spelling of `swirl wav-report`
    assert wav.returncode == 0, wav.stderr[-2000:]
    assert (seed / "wav_swirl" / "acquisition" / "summary.md").exists()
    other = subprocess.run(STUDY + ["--output_dir", str(out), "--regime", "paper"], capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert other.returncode == 2 and "holds a study with other settings (regime differ)" in other.stderr


def test_a_killed_study_resumes_without_redoing_finished_stages(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--arms", "sft", "sft_more", "upper"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    warm = out / "seed_0" / "swirl" / "warmstart" / "metrics.json"
    deadline = time.time() + 600
    while time.time() < deadline and not warm.exists() and process.poll() is None:
        time.sleep(0.5)
    assert warm.exists(), "the warm start never finished"
    os.killpg(process.pid, signal.SIGKILL)  # like kill -9 of the whole study
    process.wait()
    finished = warm.stat().st_mtime_ns
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert warm.stat().st_mtime_ns == finished  # the finished warm start was not redone
    report = json.loads((out / "quality.json").read_text())
    assert [(row["arm"], row["stage"]) for row in report["table"]] == [
        ("sft", "warmstart"), ("sft_more", "sft_more"), ("upper", "warmstart")]


@pytest.mark.parametrize("pair_arms_steps", [None, 3])
def test_pair_arms_from_scratch_match_epochs_and_sft_more_matches_their_steps(tmp_path, pair_arms_steps):
    """The headroom study's arms: oracle_pairs trains a fresh fwm on labelled + pairs for as many epochs as sft (or
    for pair_arms_steps), and sft_more is its steps-matched control on the labelled rows alone."""
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--arms", "sft", "sft_more", "oracle_pairs", "--sft_steps", "4",
                       "--pair_arms_from_scratch", "true"]
    if pair_arms_steps is not None:
        command += ["--pair_arms_steps", str(pair_arms_steps)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    seed = out / "seed_0"
    labelled = load_dataset_dict(seed / "data")["labelled"].num_rows
    warm = json.loads((seed / "swirl" / "warmstart" / "metrics.json").read_text())["training"]
    oracle = json.loads((seed / "oracle_pairs" / "metrics.json").read_text())["training"]
    more = json.loads((seed / "sft_more" / "metrics.json").read_text())["training"]
    steps = round(4 * (labelled + 4) / labelled) if pair_arms_steps is None else pair_arms_steps
    assert steps > 4 or pair_arms_steps  # 4 state-only pairs: sft's epochs over more rows
    assert (oracle["from_scratch_steps"], oracle["learning_rate"], oracle["fwm"]["train_rows"]) == (
        steps, 5e-3, labelled + 4)  # the warm start's rate (quality-tiny.yaml), not SWIRL's 1e-3
    assert (more["from_scratch_steps"], more["learning_rate"], more["fwm"]["train_rows"]) == (steps, 5e-3, labelled)
    # fresh adapters: each starts from the base model's loss, as the warm start did, not from the warm fwm's
    assert oracle["fwm"]["eval_loss_before"] == pytest.approx(warm["fwm"]["eval_loss_before"])
    assert more["fwm"]["eval_loss_before"] == pytest.approx(warm["fwm"]["eval_loss_before"])
    assert "idm" not in more  # only the fwm is retrained; both arms keep the warm idm
    for arm in ("sft_more", "oracle_pairs"):
        idm, warm_idm = tensors(seed / arm / "idm"), tensors(seed / "swirl" / "warmstart" / "idm")
        assert all(torch.equal(idm[k], warm_idm[k]) for k in idm)


def test_bootstrap_interval_and_paired_differences():
    low, high = study_statistics.bootstrap_interval([0.10, 0.12, 0.08, 0.11, 0.09], samples=2000)
    assert 0.08 <= low < 0.10 < high <= 0.12
    assert study_statistics.bootstrap_interval([0.1, 0.1, 0.1], samples=100) == pytest.approx((0.1, 0.1))
    line = lambda value: {"stage": "final", "fwm_changed_accuracy": value}  # noqa: E731
    finals = {0: {"sft": line(0.2), "pseudo": line(0.3), "swirl": line(0.4), "oracle_pairs": line(0.6)},
              1: {"sft": line(0.4), "pseudo": line(0.3), "swirl": line(0.5), "oracle_pairs": line(0.6)}}
    found = study_statistics.paired_differences(finals, ARMS, samples=500)
    rows = {(row["arm"], row["reference"]): row for row in found}
    assert rows[("swirl", "sft")]["per_seed_difference"] == pytest.approx([0.2, 0.1])
    assert rows[("swirl", "sft")]["mean_difference"] == pytest.approx(0.15)
    assert rows[("swirl", "sft")]["relative_change"] == pytest.approx(0.45 / 0.3 - 1)
    assert rows[("swirl", "sft")]["ci95_low"] == pytest.approx(0.1) and rows[("swirl", "sft")]["ci95_high"] == pytest.approx(0.2)
    assert rows[("sft", "pseudo")]["mean_difference"] == pytest.approx(0.0)
    assert rows[("swirl", "sft")]["difference_std"] == pytest.approx(0.0707, abs=1e-4)
    # a share of the oracle's gain only where that gain's t interval is above zero: not on these two seeds
    assert study_statistics.headroom_shares(found)["swirl"] is None
    finals[2] = {"sft": line(0.3), "pseudo": line(0.3), "swirl": line(0.45), "oracle_pairs": line(0.6)}
    finals[3] = {"sft": line(0.5), "pseudo": line(0.3), "swirl": line(0.65), "oracle_pairs": line(0.8)}
    found = study_statistics.paired_differences(finals, ARMS, samples=500)  # oracle: +0.4, +0.2, +0.3, +0.3
    assert study_statistics.headroom_shares(found)["swirl"] == pytest.approx(0.15 / 0.3)
    assert study_statistics.headroom_shares([r for r in found if r["arm"] != "oracle_pairs"])["swirl"] is None


def test_a_groups_reward_alignment_doctest():
    failures, tried = doctest.testmod(reward_alignment)
    assert tried >= 3 and failures == 0
    summary = reward_alignment.summarise([reward_alignment.group_alignment([-0.1, -2.0], [True, False]),
                                          reward_alignment.group_alignment([-1.0, -1.0], [False, False])])
    assert summary == {"pairs": 2, "correct_share": 0.25, "mixed_groups": 0.5,
                       "correct_advantage": pytest.approx(1.0, abs=1e-3), "correct_wins": 1.0}


def test_seeds_needed_for_a_paired_difference():
    # (1.96 + 0.84)^2 x (SD / effect)^2: SD 6.6 points and +5 points need 14 seeds, +1 for the t distribution
    assert study_statistics.seeds_needed(0.066, 0.05) == 15
    assert study_statistics.seeds_needed(0.02, 0.05) == 3
    assert study_statistics.seeds_needed(0.066, 0.10) < study_statistics.seeds_needed(0.066, 0.05)
    assert study_statistics.seeds_needed(0.0, 0.05) is None


def test_seeds_in_parallel_processes(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--seeds", "0", "1", "--jobs", "2", "--arms", "upper",
                       "--sft_steps", "2", "--eval_rows", "2", "--upper_epochs_matched", "true"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 at a time, 1 thread(s) each" in result.stdout
    report = json.loads((out / "quality.json").read_text())
    assert [(row["arm"], row["stage"], row["seeds"]) for row in report["table"]] == [("upper", "warmstart", 2)]
    assert set(report["per_seed"]) == {"0", "1"} and {"seed_0_process", "seed_1_process"} <= set(report["wall_time_s"])
    for seed in (0, 1):  # each seed's own process wrote its own log and run
        assert "== seed %d: upper" % seed in (out / f"seed_{seed}.log").read_text()
        assert (out / f"seed_{seed}" / "upper" / "warmstart" / "metrics.json").exists()
        # upper sees its rows as many times as sft sees its own: sft_steps scaled by the rows
        data = load_dataset_dict(out / f"seed_{seed}" / "data")
        every = load_dataset_dict(out / f"seed_{seed}" / "data_all")["labelled"].num_rows
        upper_steps = json.loads((out / f"seed_{seed}" / "upper" / "swirl_config.json").read_text())["sft_steps"]
        assert upper_steps == round(2 * every / data["labelled"].num_rows) > 2


def test_a_failed_seed_is_named_with_its_log(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--seeds", "0", "1", "--jobs", "2", "--env_ids", "MiniGrid-NoSuchRoom-v0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert f"seed 0 (exit 2, see {out}/seed_0.log), seed 1 (exit 2, see {out}/seed_1.log); rerun" in result.stderr
    assert "MiniGrid-NoSuchRoom-v0" in (out / "seed_0.log").read_text()


def test_unknown_regime_or_arm_is_one_line(tmp_path):
    for flag, value, message in (("--regime", "plenty", "regime must be one of few, scarce, paper (got 'plenty')"),
                                 ("--arms", "magic", "arms must be among " + ", ".join(ARMS)),
                                 ("--anchor_weight", "0", "anchor_weight must be > 0 (got 0.0)"),
                                 ("--pair_arms_steps", "5",
                                  "pair_arms_steps must be >= 1 and needs pair_arms_from_scratch (got 5)")):
        result = subprocess.run(STUDY + ["--output_dir", str(tmp_path), flag, value], capture_output=True, text=True,
                                timeout=120, cwd=REPO)
        assert result.returncode == 2 and message in result.stderr


def test_the_gpu_preset_changes_only_the_training_budget():
    """benchmarks/README.md compares the CPU and GPU presets' tables: the data, model and evaluation must match."""
    from swirl.config_fields import parse_config

    cpu, gpu = (parse_config(QualityConfig, ["--config", str(REPO / "recipes" / "minigrid" / name)], "preset")
                for name in ("quality-smollm2.yaml", "quality-smollm2-gpu.yaml"))
    shared = ("regime", "seeds", "model", "state_text", "state_format", "env_ids", "env_episodes", "env_max_steps",
              "env_policy", "env_epsilon", "env_test_episodes", "env_test_split", "eval_rows", "eval_rollout_horizon",
              "max_state_only_pairs", "phase_steps", "prompts_per_step", "lora_r", "lora_alpha", "beta", "temperature", "top_p",
              "reward_clip", "annotation_min_logprob", "acquisition_seed_labels", "iterations", "test_rows_per_action")
    assert {name: getattr(gpu, name) for name in shared} == {name: getattr(cpu, name) for name in shared}
    assert (cpu.regime, len(cpu.seeds), cpu.eval_rows, cpu.test_rows_per_action) == ("scarce", 5, 400, 55)
    assert cpu.arms == gpu.arms == list(DEFAULT_ARMS) and "wav_swirl" not in cpu.arms
    assert (cpu.phase_steps, cpu.extra_steps) == (None, 16)  # one pass over 64 pairs, 4 prompts a step
    assert (cpu.num_generations, gpu.num_generations, gpu.learning_rate) == (8, 16, 5e-5)  # the paper's group and lr
    assert gpu.sft_steps > cpu.sft_steps and gpu.output_dir != cpu.output_dir


def test_every_config_prints_its_help(capsys):
    """`--help` lists every field of every config a script parses, even where a help text says "10%" (argparse
    %-formats help texts; the quality study's `--help` once crashed on its `regime` field)."""
    from dataclasses import fields

    from swirl.config_fields import parse_config
    from swirl.sft import SwirlSFTConfig
    from swirl.training.swirl_config import SwirlConfig, SwirlManiSkillConfig
    from swirl.wav.wav_config import WAVConfig

    helps = {}
    for config_class in (SwirlConfig, SwirlManiSkillConfig, WAVConfig, SwirlSFTConfig, QualityConfig):
        with pytest.raises(SystemExit) as exit_:
            parse_config(config_class, ["--help"], description="a description", prog="prog")
        help_text = helps[config_class] = " ".join(capsys.readouterr().out.split())
        assert exit_.value.code == 0, config_class.__name__
        assert help_text.startswith("usage: prog")
        missing = [f.name for f in fields(config_class) if f.init and f"--{f.name}" not in help_text]
        assert not missing, (config_class.__name__, missing)
    assert "few (5% of the training episodes labelled), scarce (10%)" in helps[QualityConfig]
    assert "~20% slower training" in helps[SwirlSFTConfig]  # transformers' help, written "~20%%" there
