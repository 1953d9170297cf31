"""Failures stop a run everywhere, at once, and leave it resumable: an error on one process of a two-process run
ends every process within seconds with the error printed once; Ctrl-C leaves a run that the same command resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "recipes" / "minigrid" / "cpu-tiny.yaml")


def launch(script: Path, output_dir: Path, processes: int, env: dict, *extra: str,
           **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--num_processes", str(processes)]
    if processes > 1:
        command[3:3] = ["--config_file", str(REPO / "recipes" / "accelerate_configs" / "ddp.yaml")]
    return subprocess.Popen([*command, str(script), "--config", TINY, "--output_dir", str(output_dir), *extra],
                            env=dict(os.environ, OMP_NUM_THREADS="1", **env), cwd=REPO, **popen)


@pytest.mark.parametrize("rank, place", [(0, "eval"), (1, "phase")])
def test_an_error_on_one_process_ends_every_process_and_the_run_resumes(tmp_path, rank, place):
    out = tmp_path / "run"
    process = launch(REPO / "tests" / "helpers" / "failing_recipe.py", out, 2,
                     {"SWIRL_TEST_FAIL_RANK": str(rank), "SWIRL_TEST_FAIL_AT": place},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    warm = out / "warmstart" / "metrics.json"
    deadline = time.monotonic() + 900
    while not warm.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    failed_from = time.monotonic()  # the failure comes right after the warm start (phase I, or its evaluation)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    ended_after = time.monotonic() - failed_from
    print(f"rank {rank} failed in {place}: every process ended {ended_after:.1f} s after the warm start")
    assert process.returncode != 0
    assert ended_after < 60, f"the run took {ended_after:.0f} s to end after the failure"
    message = "injected failure in the evaluation" if place == "eval" else "injected failure in phase I's reward"
    assert stderr.count(f"swirl: error: {message}") == 1, stderr[-3000:]
    assert f"[rank{1 - rank}]: Traceback" not in stderr  # the other process stopped quietly
    assert not (out / "iter_1" / "phase1" / "metrics.json").exists()
    finished = warm.stat().st_mtime_ns
    rerun = launch(REPO / "recipes" / "swirl_minigrid.py", out, 1, {}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, text=True)
    _, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr[-3000:]
    assert warm.stat().st_mtime_ns == finished  # the warm start was not redone
    assert [json.loads(line)["stage"] for line in (out / "metrics.jsonl").open()] == [
        "warmstart", "iter_1/phase1", "iter_1/phase2"]


def test_ctrl_c_leaves_a_run_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    steps = ("--phase_steps", "40")  # long enough a phase to be inside it when Ctrl-C comes
    # as from a terminal: a job started in the background (nohup, `&` in a script) inherits SIGINT ignored
    process = launch(REPO / "recipes" / "swirl_minigrid.py", out, 1, {}, *steps, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoints = out / "iter_1" / "phase1" / "trainer"
    deadline = time.monotonic() + 600
    while (not list(checkpoints.glob("checkpoint-*/trainer_state.json")) and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "swirl: interrupted" in stderr, stderr[-3000:]
    assert not (out / "iter_1" / "phase1" / "metrics.json").exists()
    finished = (out / "warmstart" / "metrics.json").stat().st_mtime_ns
    rerun = launch(REPO / "recipes" / "swirl_minigrid.py", out, 1, {}, *steps, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, text=True)
    _, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr[-3000:]
    assert (out / "warmstart" / "metrics.json").stat().st_mtime_ns == finished
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


STOPPABLE = """
import sys, time
from pathlib import Path
from swirl.errors import run_or_exit
def work():
    Path(sys.argv[1]).write_text("started")
    time.sleep(60)
sys.exit(run_or_exit(work))
"""


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)])
def test_sigterm_or_ctrl_c_then_the_launchers_sigterm_stop_with_one_line(tmp_path, signals):
    """``accelerate launch`` forwards Ctrl-C and then terminates its child at once: the child must still say
    what happened (status 130, one line), whichever signal wins the race."""
    started = tmp_path / "started"
    process = subprocess.Popen([sys.executable, "-c", STOPPABLE, str(started)], stderr=subprocess.PIPE, text=True,
                               cwd=REPO, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    for number in signals:
        process.send_signal(number)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "swirl: interrupted"
