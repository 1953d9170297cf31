"""Watching a run: the trackers get every stage's trainer logs and evaluation, the console shows bars and one line
per stage (no raw log dicts, no deprecation warnings), and ``disable_tqdm`` turns the bars off."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from swirl import progress
from swirl.tracking import stage_scalars, trackers

REPO = Path(__file__).resolve().parents[1]
RECIPE = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "recipes" / "swirl_minigrid.py"),
          "--config", str(REPO / "recipes" / "minigrid" / "cpu-tiny.yaml")]
STAGES = ("warmstart", "iter_1/phase1", "iter_1/phase2")


def scalars_of(event_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard holds in ``event_dir``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_reports_its_stages_to_tensorboard_and_trackio(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("trackio")
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", TRACKIO_DIR=str(tmp_path / "trackio"), HF_HUB_OFFLINE="1")
    result = subprocess.run([*RECIPE, "--output_dir", str(out), "--report_to", "tensorboard,trackio",
                             "--run_name", "tiny", "--project", "swirl-test"],
                            capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluations = {json.loads(line)["stage"]: json.loads(line) for line in (out / "metrics.jsonl").open()}

    # TensorBoard: one folder per stage (and per warm-start adapter), the trainer's curves and the stage's numbers
    phase1 = scalars_of(out / "tensorboard" / "iter_1" / "phase1")
    assert [step for step, _ in phase1["train/reward"]] == [1, 2]  # TRL's per-step reward, at the phase's steps
    assert phase1["eval/fwm_changed_accuracy"] == [(2, pytest.approx(evaluations["iter_1/phase1"]["fwm_changed_accuracy"]))]
    for signal in ("phase/reward", "phase/reward_std", "phase/kl", "phase/parse_rate", "phase/keep_rate"):
        assert len(phase1[signal]) == 1 and phase1[signal][0][0] == 2, signal
    warm = scalars_of(out / "tensorboard" / "warmstart")
    assert warm["eval/idm_accuracy"] == [(40, pytest.approx(evaluations["warmstart"]["idm_accuracy"]))]  # sft_steps
    assert "train/loss" in scalars_of(out / "tensorboard" / "warmstart" / "fwm")
    assert "eval/fwm_nll" in scalars_of(out / "tensorboard" / "iter_1" / "phase2")

    # trackio (local, offline): one run per stage in the project, the trainer's logs and the stage's evaluation
    (database,) = (tmp_path / "trackio").glob("*.db")
    logged: dict[str, dict[str, float]] = {}
    for run, metrics in sqlite3.connect(database).execute("SELECT run_name, metrics FROM metrics"):
        logged.setdefault(run, {}).update(json.loads(metrics))
    assert {"tiny/warmstart", "tiny/warmstart/fwm", "tiny/warmstart/idm", "tiny/iter_1/phase1",
            "tiny/iter_1/phase2"} <= set(logged)
    assert "train/reward" in logged["tiny/iter_1/phase1"]
    assert logged["tiny/iter_1/phase1"]["eval/fwm_changed_accuracy"] == pytest.approx(
        evaluations["iter_1/phase1"]["fwm_changed_accuracy"])

    # the console: one readable line per stage, bars, no per-step dicts, no warnings a user cannot act on
    for stage in STAGES:
        assert f"swirl: {stage} done in " in result.stdout
    assert "SWIRL stages" in result.stderr and "iter_1/phase1 GRPO (fwm)" in result.stderr
    assert "{'loss'" not in result.stdout + result.stderr and "'reward':" not in result.stdout
    assert "FutureWarning" not in result.stderr, result.stderr[-2000:]


def test_stage_scalars_name_the_evaluation_and_the_phase_signals():
    evaluation = {"fwm_changed_accuracy": 0.5, "rows": 8, "per_env": {"x": 1.0},
                  "rollouts": [{"horizon": 1, "exact_match": 0.25, "field_accuracy": 0.9, "parse_rate": 1.0}]}
    training = {"log": [{"reward": -1.0, "kl": 0.0}, {"reward": -3.0, "kl": 0.5}], "keep_rate": 0.75}
    assert stage_scalars(evaluation, training) == {"eval/fwm_changed_accuracy": 0.5, "eval/rows": 8.0,
                                                   "eval/rollout_h1_exact_match": 0.25, "phase/reward": -2.0,
                                                   "phase/kl": 0.25, "phase/keep_rate": 0.75}
    assert trackers("none") == [] and trackers("tensorboard, trackio") == ["tensorboard", "trackio"]
    assert trackers(["wandb"]) == ["wandb"]


def test_a_tracker_that_is_not_installed_fails_at_start_up():
    from swirl.training.swirl_config import SwirlConfig

    assert importlib.util.find_spec("wandb") is None  # this machine has none: the check must name it
    with pytest.raises(ValueError, match=r"report_to wandb needs the wandb package: pip install wandb"):
        SwirlConfig(report_to="tensorboard,wandb")


def test_disable_progress_bars_silences_every_bar(capsys):
    try:
        progress.disable_progress_bars()
        for _ in progress.bar(range(3), desc="hidden"):
            pass
        assert "hidden" not in capsys.readouterr().err
    finally:
        progress.enable_progress_bars()
    for _ in progress.bar(range(3), desc="shown"):
        pass
    assert "shown" in capsys.readouterr().err
    line = progress.stage_line("iter_1/phase1", 161, {"fwm_changed_accuracy": 0.578, "reward": -0.28, "kl": None})
    assert line == "swirl: iter_1/phase1 done in 2m41s | fwm_changed_accuracy 57.8% | reward -0.28"
