"""The distribution: the wheel holds the ``swirl`` package only, and it works without the repository around it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", ".vulkan", "runs", "outputs", "build", "*.egg-info", "__pycache__",
                              ".pytest_cache")

# The Python quick start, as a user runs it after `pip install swirl-wm`: the offline tiny model, a few steps.
QUICK_START = """
import swirl
from swirl import SwirlConfig, run_swirl

config = SwirlConfig(output_dir="runs/quick", model="tiny-qwen2", env_ids=["swirl/WAV-KeyDelivery-v0"],
                     env_episodes=4, env_max_steps=6, env_test_episodes=2, state_text="objects", state_format="diff",
                     sft_steps=40, sft_learning_rate=5e-3, lora_r=8, lora_alpha=16, iterations=1, phase_steps=1, save_steps=1, num_generations=2, prompts_per_step=2,
                     max_state_only_pairs=4, eval_rows=4, max_state_tokens=32, max_action_tokens=6,
                     annotation_min_logprob=-100.0, sampler="hf")
lines = run_swirl(config)
print("SWIRL_FILE", swirl.__file__)
print("STAGES", " ".join(line["stage"] for line in lines))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source tree (so no build files land in the checkout)."""
    source = tmp_path_factory.mktemp("source") / "swirl-wm"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", str(source), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("swirl_wm-*.whl")
    return built


def test_the_wheel_holds_only_swirl(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"swirl", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for module in ("swirl/evaluation/world_model.py", "swirl/builders/minigrid_dataset.py", "swirl/cli.py", "swirl/sft.py"):
        assert module in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "swirl = swirl.cli:main" in entry_points


def test_quick_start_from_the_wheel_in_a_fresh_venv(wheel, tmp_path):
    """A fresh venv gets the wheel (its dependencies come from this environment's site-packages, as pip would have
    installed them), then runs the quick start and the CLI from a folder far from the repository."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # a plain path line: this environment's packages become importable, but its .pth files (the editable install of
    # the checkout) are not run, so `swirl` can only come from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "SWIRL_HOME": str(tmp_path / "swirl-home"),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
    help_text = subprocess.run([str(venv / "bin" / "swirl"), "--help"], capture_output=True, text=True, cwd=work,
                               env=env, timeout=120)
    assert help_text.returncode == 0, help_text.stderr
    assert "eval" in help_text.stdout and "data" in help_text.stdout
    run = subprocess.run([str(python), "-c", QUICK_START], capture_output=True, text=True, cwd=work, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    output = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.startswith(("SWIRL_FILE", "STAGES")))
    assert output["SWIRL_FILE"].startswith(str(site)), output["SWIRL_FILE"]
    assert output["STAGES"].split() == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    assert (work / "runs" / "quick" / "hub" / "fwm" / "adapter_config.json").is_file()
