"""SWIRL: the two rewards, latent-action annotation, one GRPO phase, and the whole loop under accelerate."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from swirl.data import load_dataset_dict
from swirl.models.adapters import save_adapter
from swirl.models.prompts import completion, fwm_prompt, idm_prompt
from swirl.models.scoring import log_likelihood
from swirl.sampling import HFSampler
from swirl.training.swirl_config import SwirlConfig
from swirl.training.phases import annotate_latent_actions, phase2_dataset, run_grpo_phase
from swirl.training.rewards import FWMStateReward, IDMActionReward

REPO = Path(__file__).resolve().parent.parent
RECIPE = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "recipes" / "swirl_minigrid.py"),
          "--config", str(REPO / "recipes" / "minigrid" / "cpu-tiny.yaml")]


@pytest.fixture
def pairs(small_dataset):
    return load_dataset_dict(small_dataset)["state_only"].select(range(6)).select_columns(["state", "next_state"])


def test_phase1_reward_is_the_clamped_idm_loglik_of_the_latent_action(world_model, tokenizer, pairs):
    state, sampled = pairs["state"][:3], pairs["next_state"][:3] + ["not a state"]
    state = state + [state[0]]
    actions = ["toggle", "move forward", "turn left", "drop"]
    logged = {}
    reward = IDMActionReward(world_model, tokenizer, clip=-10.0)
    rewards = reward(prompts=["p"] * 4, completions=[s + "<|im_end|>" for s in sampled], state=state,
                     latent_action=actions, log_metric=logged.__setitem__)
    expected = log_likelihood(world_model, tokenizer, [idm_prompt(tokenizer, s, n) for s, n in zip(state, sampled)],
                              [completion(tokenizer, a) for a in actions], adapter="idm").mean.clamp(min=-10.0)
    assert rewards == pytest.approx(expected.tolist(), abs=1e-6)
    assert logged == {"parse_rate": 0.75}  # the garbage "state" is scored all the same, and counted
    clipped = IDMActionReward(world_model, tokenizer, clip=-1.0)(prompts=["p"] * 4, completions=sampled, state=state,
                                                                 latent_action=actions)
    assert all(r >= -1.0 for r in clipped) and min(clipped) == -1.0


def test_phase2_reward_is_the_clamped_fwm_loglik_of_the_real_next_state(world_model, tokenizer, pairs):
    state, next_state = pairs["state"][:2], pairs["next_state"][:2]
    rewards = FWMStateReward(world_model, tokenizer)(prompts=["p", "p"], completions=["toggle", "drop<|im_end|>"],
                                                     state=state, next_state=next_state)
    expected = log_likelihood(world_model, tokenizer, [fwm_prompt(tokenizer, state[0], "toggle"),
                                                       fwm_prompt(tokenizer, state[1], "drop")],
                              [completion(tokenizer, n) for n in next_state], adapter="fwm").mean
    assert rewards == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-6)
    assert world_model.active_adapter == "fwm"  # the scorer restored the model


def test_annotation_keeps_only_confident_latent_actions(world_model, tokenizer, pairs):
    sampler = HFSampler(world_model, tokenizer)
    keep_all, stats = annotate_latent_actions(world_model, tokenizer, sampler, pairs,
                                              SwirlConfig(annotation_min_logprob=-1e9, max_action_tokens=4))
    assert stats["annotated_pairs"] == 6 and stats["kept_pairs"] == keep_all.num_rows
    assert set(keep_all.column_names) >= {"state", "next_state", "latent_action", "prompt"}
    assert all(fwm_prompt(tokenizer, s, z) == p for s, z, p in zip(keep_all["state"], keep_all["latent_action"],
                                                                    keep_all["prompt"]))
    none, stats = annotate_latent_actions(world_model, tokenizer, sampler, pairs,
                                          SwirlConfig(annotation_min_logprob=-0.01, max_action_tokens=4))
    assert none.num_rows == 0 and stats["keep_rate"] == 0.0  # a random IDM is never that sure


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_one_grpo_phase_trains_only_the_policy_adapter(world_model, tokenizer, pairs, tmp_path):
    for role in ("fwm", "idm"):
        save_adapter(world_model, role, tmp_path / "start" / role)
    config = SwirlConfig(model="tiny-qwen2", phase_steps=2, num_generations=2, prompts_per_step=2, learning_rate=1e-2,
                         max_action_tokens=4, save_steps=1)
    summary = run_grpo_phase(2, config, tokenizer, {"fwm": tmp_path / "start" / "fwm", "idm": tmp_path / "start" / "idm"},
                             phase2_dataset(tokenizer, pairs), tmp_path / "phase2")
    assert summary["steps"] == 2 and all(math.isfinite(step["reward"]) for step in summary["log"])
    assert all("kl" in step for step in summary["log"])
    before, after = tensors(tmp_path / "start" / "idm"), tensors(tmp_path / "phase2" / "idm")
    assert before.keys() == after.keys()
    assert sum(not torch.equal(before[k], after[k]) for k in before) == len(before)  # the policy moved
    frozen_before, frozen_after = tensors(tmp_path / "start" / "fwm"), tensors(tmp_path / "phase2" / "fwm")
    assert all(torch.equal(frozen_before[k], frozen_after[k]) for k in frozen_before)  # the scorer did not
    assert (tmp_path / "phase2" / "trainer" / "checkpoint-2" / "trainer_state.json").is_file()


def run_recipe(output_dir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.run([*RECIPE, "--output_dir", str(output_dir), *extra], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def test_cpu_tiny_recipe_under_accelerate_launch(tmp_path):
    out = tmp_path / "run"
    result = run_recipe(out)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    assert all(0.0 <= line[key] <= 1.0 for line in lines for key in ("fwm_exact_match", "idm_accuracy"))
    # a phase evaluates the adapter it trained; the other one's metrics come over from the stage before
    assert lines[1]["idm_confusion"] == lines[0]["idm_confusion"] and lines[2]["fwm_nll"] == lines[1]["fwm_nll"]
    assert "| iter_1/phase2 |" in result.stdout
    for role, phase in (("fwm", "phase1"), ("idm", "phase2")):
        start, end = tensors(out / "warmstart" / role), tensors(out / "iter_1" / phase / role)
        assert any(not torch.equal(start[k], end[k]) for k in start), f"{role} did not change in {phase}"
    for phase in ("phase1", "phase2"):
        training = json.loads((out / "iter_1" / phase / "metrics.json").read_text())["training"]
        assert training["steps"] == 2 and all(math.isfinite(step["reward"]) for step in training["log"])
    assert json.loads((out / "iter_1" / "phase1" / "metrics.json").read_text())["training"]["kept_pairs"] > 0
    for plot in ("metrics_by_stage.png", "idm_confusion_final.png"):
        assert (out / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    # the folder that --push_to_hub would upload: final adapters + a model card with the eval table and command
    assert sorted(os.listdir(out / "hub")) == ["README.md", "fwm", "idm", "swirl_config.json"]
    # the preset's objects text and diff completions, recorded for `swirl eval` and Hub users
    run_config = json.loads((out / "hub" / "swirl_config.json").read_text())
    assert (run_config["state_text"], run_config["state_format"]) == ("objects", "diff")
    assert all(0.0 <= line["fwm_parse_rate"] <= 1.0 for line in lines)
    assert tensors(out / "hub" / "idm").keys() == tensors(out / "iter_1" / "phase2" / "idm").keys()
    card = (out / "hub" / "README.md").read_text()
    assert "base_model: tiny-qwen2" in card and "| iter_1/phase2 |" in card
    assert "accelerate launch recipes/swirl_minigrid.py --config" in card and "swirl/WAV-KeyDelivery-v0" in card
    assert "`state_format: diff`" in card


def test_killed_run_resumes_without_repeating_completed_stages(tmp_path):
    out = tmp_path / "run"
    extra = ("--phase_steps", "6", "--state_text", "grid", "--state_format", "full")  # the full-state path end to end
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    process = subprocess.Popen([*RECIPE, "--output_dir", str(out), *extra], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env, cwd=REPO, start_new_session=True)
    # save_steps 1 with save_total_limit 1: checkpoint-k replaces checkpoint-(k-1), so wait for any of them
    trainer_dir = out / "iter_1" / "phase2" / "trainer"
    deadline = time.monotonic() + 600
    while (not list(trainer_dir.glob("checkpoint-*/trainer_state.json")) and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 mid-phase-II
    process.wait()
    saved = [int(path.parent.name.split("-")[1]) for path in trainer_dir.glob("checkpoint-*/trainer_state.json")]
    assert saved and min(saved) < 6, f"the run was not killed mid-phase-II (checkpoints {saved})"
    assert not (out / "iter_1" / "phase2" / "metrics.json").exists()
    finished = {stage: (out / stage / "metrics.json").stat().st_mtime_ns for stage in ("warmstart", "iter_1/phase1")}
    result = run_recipe(out, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {stage: (out / stage / "metrics.json").stat().st_mtime_ns for stage in finished} == finished
    training = json.loads((out / "iter_1" / "phase2" / "metrics.json").read_text())["training"]
    assert training["steps"] == 6  # the phase ran to its end (steps before the checkpoint come from it)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert (out / "iter_1" / "phase2" / "idm" / "adapter_model.safetensors").is_file()


def test_push_to_hub_offline_fails_at_start_up(tmp_path):
    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="0")
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO / "recipes" / "swirl_minigrid.py"), "--config",
                             str(REPO / "recipes" / "minigrid" / "cpu-tiny.yaml"), "--output_dir", str(tmp_path / "x"),
                             "--push_to_hub", "true", "--hub_model_id", "me/swirl-tiny"],
                            capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("swirl: error: cannot reach the Hugging Face Hub")
    assert not (tmp_path / "x").exists() and time.monotonic() - start < 120


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="hub_model_id is required with push_to_hub"):
        SwirlConfig(push_to_hub=True)
    with pytest.raises(ValueError, match=r"num_generations must be >= 2 .* \(got 1\)"):
        SwirlConfig(num_generations=1)
    with pytest.raises(ValueError, match=r"eval_rollout_horizon must be between 0 and env_max_steps .* \(got 12\)"):
        SwirlConfig(env_max_steps=10, eval_rollout_horizon=12)
    with pytest.raises(ValueError, match=r"eval_rollout_starts must be >= 1 \(got 0\)"):
        SwirlConfig(eval_rollout_horizon=2, eval_rollout_starts=0)
    with pytest.raises(ValueError, match=r"acquisition_sft_steps must be >= 1 \(None: sft_steps\) \(got 0\)"):
        SwirlConfig(acquisition_sft_steps=0)


def launch_with(config_file: str, num_processes: int, output_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "recipes" / "accelerate_configs" / config_file), "--num_processes", str(num_processes),
               "--mixed_precision", "no", str(REPO / "recipes" / "swirl_minigrid.py"), "--config",
               str(REPO / "recipes" / "minigrid" / "cpu-tiny.yaml"), "--output_dir", str(output_dir)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env, cwd=REPO)


def test_two_cpu_processes_with_the_ddp_config(tmp_path):
    out = tmp_path / "ddp"
    result = launch_with("ddp.yaml", 2, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    start, end = tensors(out / "warmstart" / "fwm"), tensors(out / "iter_1" / "phase1" / "fwm")
    assert any(not torch.equal(start[k], end[k]) for k in start)


def test_deepspeed_zero2_config_on_cpu(tmp_path):
    pytest.importorskip("deepspeed", reason="deepspeed is in the dev extra; install swirl-wm[dev]")
    out = tmp_path / "zero2"
    result = launch_with("zero2.yaml", 1, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    start, end = tensors(out / "warmstart" / "idm"), tensors(out / "iter_1" / "phase2" / "idm")
    assert any(not torch.equal(start[k], end[k]) for k in start)
