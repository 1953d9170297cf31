"""The self-improvement study (benchmarks/quality_minigrid.py): every arm of its smoke preset, the paired statistics,
resuming after a kill, parallel seeds, and the presets it documents."""

from __future__ import annotations

import importlib.util
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

REPO = Path(__file__).resolve().parent.parent
STUDY = [sys.executable, str(REPO / "benchmarks" / "quality_minigrid.py"), "--config",
         str(REPO / "recipes" / "minigrid" / "quality-tiny.yaml")]
ARM_STAGES = [("sft", "warmstart"), ("sft_more", "sft_more"), ("pseudo", "pseudo"), ("swirl", "warmstart"),
              ("swirl", "iter_1/phase1"), ("swirl", "iter_1/phase2"), ("wav_swirl", "warmstart"),
              ("wav_swirl", "iter_1/phase1"), ("wav_swirl", "iter_1/phase2"), ("upper", "warmstart")]


@pytest.fixture(scope="module")
def quality():
    """benchmarks/quality_minigrid.py as a module."""
    spec = importlib.util.spec_from_file_location("quality_minigrid", REPO / "benchmarks" / "quality_minigrid.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def tensors(adapter: Path) -> dict[str, torch.Tensor]:
    return load_file(str(adapter / "adapter_model.safetensors"))


def test_every_arm_of_the_scarce_regime_with_paired_differences(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out)]
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
    assert labels["seed_0/sft"] == labels["seed_0/sft_more"] == labels["seed_0/pseudo"] == labels["seed_0/swirl"] \
        == labels["seed_0/wav_swirl"] == data["labelled"].num_rows
    assert labels["seed_0/upper"] == data_all["labelled"].num_rows == data["labelled"].num_rows + data["state_only"].num_rows

    # WAV's own models train for acquisition_sft_steps (a quarter per round), not the warm start's sft_steps
    acquisition = json.loads((out / "seed_0" / "wav_swirl" / "acquisition" / "wav_config.json").read_text())
    assert (acquisition["warm_start_steps"], acquisition["subgoal_steps"], acquisition["round_steps"]) == (20, 20, 5)
    # a pool of 2 states per label to acquire, so that WAV's proposals (~1.5 a state) can outnumber its budget
    assert acquisition["pool_states"] == 2 * acquisition["budget"] > 4  # the preset runs one round

    # sft_more continued both warm-start adapters; pseudo continued the fwm only, on labelled + pseudo-labelled rows
    seed = out / "seed_0"
    warm = {role: tensors(seed / "swirl" / "warmstart" / role) for role in ("fwm", "idm")}
    for role in ("fwm", "idm"):
        more = tensors(seed / "sft_more" / role)
        assert any(not torch.equal(more[k], warm[role][k]) for k in more)
    pseudo_fwm, pseudo_idm = tensors(seed / "pseudo" / "fwm"), tensors(seed / "pseudo" / "idm")
    assert any(not torch.equal(pseudo_fwm[k], warm["fwm"][k]) for k in pseudo_fwm)
    assert all(torch.equal(pseudo_idm[k], warm["idm"][k]) for k in pseudo_idm)
    pseudo = json.loads((seed / "pseudo" / "metrics.json").read_text())["training"]
    assert pseudo["extra_steps"] == 1 and pseudo["fwm"]["train_rows"] == data["labelled"].num_rows + pseudo[
        "pseudo_labels"]["kept_pairs"]
    labels = pseudo["pseudo_labels"]  # a recorded action always reproduces s': equivalent accuracy is at least as high
    assert 0 <= labels["pseudo_label_accuracy"] <= labels["pseudo_label_equivalent_accuracy"] <= 1
    assert sum(labels["latent_action_counts"].values()) == labels["kept_pairs"]
    # what phase I's latent actions were, from the pairs each phase I kept (latent_actions.jsonl)
    latent = report["latent_actions"]
    assert [(row["run"], row["stage"]) for row in latent] == [("swirl", "iter_1/phase1"), ("wav_swirl", "iter_1/phase1")]
    assert all(row["kept"] >= 1 and 0 <= row["accuracy"] <= row["equivalent_accuracy"] <= 1 for row in latent)
    kept = [json.loads(line) for line in (seed / "swirl" / "iter_1" / "phase1" / "latent_actions.jsonl").open()]
    assert len(kept) == latent[0]["kept"]  # each with the IDM's confidence, the quantity the threshold cuts
    assert all(-100.0 <= line["logprob"] <= 0.0 for line in kept) and len({line["logprob"] for line in kept}) > 1

    # each arm against sft and against pseudo; one seed has no interval
    differences = {(row["arm"], row["reference"]): row for row in report["differences"]}
    assert set(differences) == {(arm, ref) for ref in ("sft", "pseudo") for arm in
                                ("sft", "sft_more", "pseudo", "swirl", "wav_swirl", "upper") if arm != ref}
    swirl = differences[("swirl", "sft")]
    assert swirl["mean_difference"] == pytest.approx(swirl["arm_mean"] - swirl["reference_mean"])
    assert swirl["ci95_low"] is None and swirl["seeds"] == 1
    # open-loop rollouts of horizons 1-2 and per-action accuracy for every arm's final stage
    assert [(row["arm"], row["horizon"]) for row in report["rollouts"]] == [
        (arm, h) for arm in ("sft", "sft_more", "pseudo", "swirl", "wav_swirl", "upper") for h in (1, 2)]
    assert set(report["per_action"]) == {"sft", "sft_more", "pseudo", "swirl", "wav_swirl", "upper"}
    markdown = (out / "quality.md").read_text()
    for text in ("| sft_more | sft_more | 1 |", "| swirl | sft | 1 |", "| arm | h=1 | h=2 |", "Pseudo labels:",
                 "| swirl | iter_1/phase1 | 1 |"):
        assert text in markdown
    assert (out / "quality.png").stat().st_size > 0
    diagnostics = report["phase_diagnostics"]  # the GRPO evidence per run and phase, read from the stages' logs
    assert [(row["run"], row["stage"]) for row in diagnostics] == [
        (run, f"iter_1/phase{phase}") for run in ("swirl", "wav_swirl") for phase in (1, 2)]
    assert all(0 <= row["keep_rate"] <= 1 and row["reward_std"] >= 0 for row in diagnostics[::2])
    assert "GRPO phases (means over seeds and steps):" in markdown
    assert set(json.loads((seed / "wall_time.json").read_text())) == {"swirl", "sft_more", "pseudo", "wav_swirl", "upper"}
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)  # resumes: nothing to redo
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((out / "quality.json").read_text())["table"] == report["table"]
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

    # quality_noops.py: every finished arm's final FWM on held-out no-op transitions, executed in the real env
    noops = [sys.executable, str(REPO / "benchmarks" / "quality_noops.py"), "--study", str(out), "--seeds", "0",
             "--rows_per_action", "2"]
    tested = subprocess.run(noops, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert tested.returncode == 0, tested.stderr[-3000:]
    rows = load_dataset_dict(seed / "noop_test")["test"]
    assert rows.num_rows > 2 and all(row["state"] == row["next_state"] for row in rows)  # nothing changes
    assert max(Counter(rows["action"]).values()) == 2 and "turn left" not in rows["action"]  # a turn always acts
    result = json.loads((out / "noops.json").read_text())
    assert [row["arm"] for row in result["table"]] == ["sft", "sft_more", "pseudo", "swirl", "wav_swirl", "upper"]
    assert all(row["rows"] == [rows.num_rows] and 0 <= row["noop_exact_match"] <= 1 for row in result["table"])
    assert result["per_seed"]["0"]["swirl"]["stage"] == "swirl/iter_1/phase2"
    assert "| `wav_swirl` | 0 |" in (out / "noops.md").read_text()
    evaluated = (seed / "upper" / "warmstart" / "noop_eval" / "eval.json").stat().st_mtime_ns
    again = subprocess.run(noops, capture_output=True, text=True, timeout=300, cwd=REPO)  # reads, evaluates nothing
    assert again.returncode == 0 and (seed / "upper" / "warmstart" / "noop_eval" / "eval.json").stat().st_mtime_ns == evaluated
    missing = subprocess.run(noops[:3] + [str(tmp_path), "--seeds", "0"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "must be a quality study's output_dir" in missing.stderr


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


def test_bootstrap_interval_and_paired_differences(quality):
    low, high = quality.bootstrap_interval([0.10, 0.12, 0.08, 0.11, 0.09], samples=2000)
    assert 0.08 <= low < 0.10 < high <= 0.12
    assert quality.bootstrap_interval([0.1, 0.1, 0.1], samples=100) == pytest.approx((0.1, 0.1))
    line = lambda value: [{"stage": "final", "fwm_changed_accuracy": value}]  # noqa: E731
    per_seed = {0: {"sft": line(0.2), "pseudo": line(0.3), "swirl": line(0.4)},
                1: {"sft": line(0.4), "pseudo": line(0.3), "swirl": line(0.5)}}
    rows = {(row["arm"], row["reference"]): row for row in quality.paired_differences(per_seed, samples=500)}
    assert rows[("swirl", "sft")]["per_seed_difference"] == pytest.approx([0.2, 0.1])
    assert rows[("swirl", "sft")]["mean_difference"] == pytest.approx(0.15)
    assert rows[("swirl", "sft")]["relative_change"] == pytest.approx(0.45 / 0.3 - 1)
    assert rows[("swirl", "sft")]["ci95_low"] == pytest.approx(0.1) and rows[("swirl", "sft")]["ci95_high"] == pytest.approx(0.2)
    assert rows[("sft", "pseudo")]["mean_difference"] == pytest.approx(0.0)


def test_seeds_in_parallel_processes(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--seeds", "0", "1", "--jobs", "2", "--arms", "upper",
                       "--sft_steps", "2", "--eval_rows", "2", "--eval_rollout_horizon", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 at a time, 1 thread(s) each" in result.stdout
    report = json.loads((out / "quality.json").read_text())
    assert [(row["arm"], row["stage"], row["seeds"]) for row in report["table"]] == [("upper", "warmstart", 2)]
    assert set(report["per_seed"]) == {"0", "1"} and {"seed_0_process", "seed_1_process"} <= set(report["wall_time_s"])
    for seed in (0, 1):  # each seed's own process wrote its own log and run
        assert "== seed %d: upper" % seed in (out / f"seed_{seed}.log").read_text()
        assert (out / f"seed_{seed}" / "upper" / "warmstart" / "metrics.json").exists()


def test_a_failed_seed_is_named_with_its_log(tmp_path):
    out = tmp_path / "quality"
    command = STUDY + ["--output_dir", str(out), "--seeds", "0", "1", "--jobs", "2", "--env_ids", "MiniGrid-NoSuchRoom-v0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert f"seed 0 (exit 2, see {out}/seed_0.log), seed 1 (exit 2, see {out}/seed_1.log); rerun" in result.stderr
    assert "MiniGrid-NoSuchRoom-v0" in (out / "seed_0.log").read_text()


def test_unknown_regime_or_arm_is_one_line(tmp_path):
    for flag, value, message in (("--regime", "plenty", "regime must be one of scarce, paper (got 'plenty')"),
                                 ("--arms", "magic", "arms must be among sft, sft_more, pseudo, swirl, wav_swirl, upper")):
        result = subprocess.run(STUDY + ["--output_dir", str(tmp_path), flag, value], capture_output=True, text=True,
                                timeout=120, cwd=REPO)
        assert result.returncode == 2 and message in result.stderr


def test_the_gpu_preset_changes_only_the_training_budget(quality):
    """benchmarks/README.md compares the CPU and GPU presets' tables: the data, model and evaluation must match."""
    from swirl.config_fields import parse_config

    cpu, gpu = (parse_config(quality.QualityConfig, ["--config", str(REPO / "recipes" / "minigrid" / name)], "preset")
                for name in ("quality-smollm2.yaml", "quality-smollm2-gpu.yaml"))
    shared = ("regime", "seeds", "model", "state_text", "state_format", "env_ids", "env_episodes", "env_max_steps",
              "env_policy", "env_epsilon", "env_test_episodes", "env_test_split", "eval_rows", "eval_rollout_horizon",
              "eval_rollout_starts", "max_state_only_pairs", "lora_r", "lora_alpha", "beta", "temperature", "top_p",
              "reward_clip", "annotation_min_logprob", "acquisition_seed_labels", "iterations", "test_rows_per_action")
    assert {name: getattr(gpu, name) for name in shared} == {name: getattr(cpu, name) for name in shared}
    assert (cpu.regime, len(cpu.seeds), cpu.eval_rows, cpu.test_rows_per_action) == ("scarce", 5, 400, 55)
    assert (cpu.num_generations, gpu.num_generations, gpu.learning_rate) == (8, 16, 5e-5)  # the paper's group and lr
    assert gpu.sft_steps > cpu.sft_steps and gpu.output_dir != cpu.output_dir


def test_every_config_prints_its_help(quality, capsys):
    """`--help` lists every field of every config a script parses, even where a help text says "10%" (argparse
    %-formats help texts; the quality study's `--help` once crashed on its `regime` field)."""
    from dataclasses import fields

    from swirl.config_fields import parse_config
    from swirl.sft import SwirlSFTConfig
    from swirl.training.config import SwirlConfig, SwirlManiSkillConfig
    from swirl.wav.config import WAVConfig

    helps = {}
    for config_class in (SwirlConfig, SwirlManiSkillConfig, WAVConfig, SwirlSFTConfig, quality.QualityConfig):
        with pytest.raises(SystemExit) as exit_:
            parse_config(config_class, ["--help"], description="a description", prog="prog")
        help_text = helps[config_class] = " ".join(capsys.readouterr().out.split())
        assert exit_.value.code == 0, config_class.__name__
        assert help_text.startswith("usage: prog")
        missing = [f.name for f in fields(config_class) if f.init and f"--{f.name}" not in help_text]
        assert not missing, (config_class.__name__, missing)
    assert "scarce (10% of the training episodes labelled)" in helps[quality.QualityConfig]
    assert "~20% slower training" in helps[SwirlSFTConfig]  # transformers' help, written "~20%%" there
