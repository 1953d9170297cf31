"""The forward-inverse asymmetry sweep (issue #31): a smoke size end to end, through the package and through its
command line, on the real rooms; resuming skips done cells; other settings are refused, never mixed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swirl.errors import SwirlError
from swirl.wav.asymmetry import (FACTORS, METRICS, AsymmetrySettings, error_ratio, load_results, plot_factors,
                                 run_sweep)

REPO = Path(__file__).resolve().parents[1]
# a smoke size: the base room and its first noise level, two training sizes, one seed, a few optimiser steps
SMOKE = dict(objects=[6], noise_levels=[0, 1], sizes=[20, 40], seeds=[0], forward_steps=30, inverse_steps=30,
             train_episodes=2, test_episodes=8, test_rows_per_action=6)
RATES = ("fwm_exact_match", "fwm_changed_accuracy", "idm_accuracy", "idm_equivalent_accuracy", "forward_error",
         "inverse_error")


def test_the_error_ratio_stays_finite_when_the_inverse_model_is_perfect():
    assert error_ratio(0.5, 0.25, 4) == pytest.approx(1.5)
    assert error_ratio(0.3, 0.0, 10) == pytest.approx(4.0)  # (0.3 + 0.1) / (0 + 0.1)
    assert error_ratio(0.2, 0.2, 50) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one test row"):
        error_ratio(0.1, 0.1, 0)


def test_the_plots_leave_out_cells_an_interrupted_sweep_has_not_reached(tmp_path):
    done = {"factor": "noise", "env_id": "swirl/WAV-RandomPlay-6obj-8x8-v0", "labels": 200, "level": 0, "seeds": 1,
            "error_ratio_mean": 3.5, "error_ratio_std": 0.0}
    pending = {**done, "level": 4, "labels": 400, "seeds": 0, "error_ratio_mean": None, "error_ratio_std": None}
    paths = plot_factors({"noise": [done, pending]}, tmp_path, "partial", "llm")
    assert paths == [tmp_path / "partial_noise.png"]
    assert paths[0].stat().st_size > 1000


@pytest.mark.parametrize(("change", "message"), [
    ({"objects": [7]}, "objects must be some of the registered rooms' 6, 8, 10, 12, 14"),
    ({"noise_levels": [5]}, "noise_levels must be some of 0, 1, 2, 3, 4"),
    ({"sizes": [3000]}, "sizes must fit the training pool of train_episodes x max_steps = 2400"),
    ({"seeds": []}, "seeds must list at least one seed"),
])
def test_settings_outside_the_registered_rooms_or_the_pool_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        AsymmetrySettings(**change)


def test_a_smoke_sweep_runs_end_to_end_and_resumes(tmp_path):
    results = run_sweep(AsymmetrySettings(**SMOKE), tmp_path, progress=False)
    cells = results["cells"]
    assert sorted((c["env_id"], c["labels"]) for c in cells) == [
        ("swirl/WAV-RandomPlay-6obj-8x8-Noise1-v0", 20), ("swirl/WAV-RandomPlay-6obj-8x8-Noise1-v0", 40),
        ("swirl/WAV-RandomPlay-6obj-8x8-v0", 20), ("swirl/WAV-RandomPlay-6obj-8x8-v0", 40)]
    for cell in cells:
        assert all(0.0 <= cell[key] <= 1.0 for key in RATES), cell
        assert cell["forward_error"] == pytest.approx(1 - cell["fwm_changed_accuracy"])
        assert cell["inverse_error"] == pytest.approx(1 - cell["idm_equivalent_accuracy"])
        assert cell["error_ratio"] == pytest.approx(error_ratio(cell["forward_error"], cell["inverse_error"],
                                                                cell["test_rows"]))
        # identifiable test rows: one action explains each, so equivalent and exact accuracy agree
        assert cell["idm_equivalent_accuracy"] == pytest.approx(cell["idm_accuracy"])
        assert 0 < cell["test_rows"] <= 6 * 7
    rooms = results["rooms"]
    assert [rooms[env]["noisy_tiles"] for env in sorted(rooms)] == [2, 0]  # Noise1 sorts first
    assert all(room["train_rows"] == 2 * 30 and max(room["test_rows_per_action"].values()) <= 6
               for room in rooms.values())
    summary = results["summary"]
    assert list(summary) == list(FACTORS)
    assert [(row["level"], row["labels"]) for row in summary["noise"]] == [(0, 20), (0, 40), (1, 20), (1, 40)]
    assert [row["level"] for row in summary["samples"]] == [20, 40]
    assert all(row["seeds"] == 1 and row["error_ratio_std"] == 0.0 for rows in summary.values() for row in rows)
    assert set(METRICS) <= {key.removesuffix("_mean") for key in summary["objects"][0]}
    on_disk = json.loads((tmp_path / "asymmetry.json").read_text())
    assert on_disk["cells"] == cells
    assert "| noise | 1 | WAV-RandomPlay-6obj-8x8-Noise1-v0 | 40 | 1 |" in (tmp_path / "asymmetry.md").read_text()
    for factor in FACTORS:
        assert (tmp_path / f"asymmetry_{factor}.png").stat().st_size > 1000

    # a wider grid runs only the new cells: the old records come back as they were (their timings included)
    wider = run_sweep(AsymmetrySettings(**SMOKE | {"sizes": [20, 40, 60]}), tmp_path, progress=False)
    assert wider["cells"][:4] == cells and [c["labels"] for c in wider["cells"][4:]] == [60, 60]

    # a command for a few cells (here: done ones) still tabulates every cell of the file, not only those it names
    narrow = run_sweep(AsymmetrySettings(**SMOKE | {"noise_levels": [1], "sizes": [60]}), tmp_path, progress=False)
    assert [(row["level"], row["labels"]) for row in narrow["summary"]["noise"]] == [
        (0, 20), (0, 40), (0, 60), (1, 20), (1, 40), (1, 60)]
    assert "| noise | 0 | WAV-RandomPlay-6obj-8x8-v0 | 20 | 1 |" in (tmp_path / "asymmetry.md").read_text()

    with pytest.raises(SwirlError, match=r"other settings \(forward_steps differ\)"):
        run_sweep(AsymmetrySettings(**SMOKE | {"forward_steps": 31}), tmp_path, progress=False)


def test_the_llm_backend_trains_adapters_scores_them_and_keeps_its_own_results(tmp_path):
    """The llm backend on the tiny model: its cells, table and plots go to asymmetry_llm.*, beside (never into) the
    structured results; its adapters live in a scratch folder under the output folder, gone after each cell."""
    structured = run_sweep(AsymmetrySettings(**SMOKE | {"noise_levels": [0], "sizes": [20]}), tmp_path, progress=False)
    llm = AsymmetrySettings(**SMOKE | {"noise_levels": [0], "sizes": [20]}, backend="llm", model="tiny-qwen2",
                            lora_layers=2, llm_steps=2, llm_inverse_steps=1, max_state_tokens=16)
    results = run_sweep(llm, tmp_path, progress=False)
    assert not list(tmp_path.glob("asymmetry-llm-*"))  # the cell's scratch folder, adapters and all
    [cell] = results["cells"]
    assert all(0.0 <= cell[key] <= 1.0 for key in RATES + ("fwm_unapplied",)), cell
    assert cell["fwm_sft_seconds"] > 0 and cell["idm_sft_seconds"] > 0 and "idm_kept_features" not in cell
    assert results["settings"]["backend"] == "llm" and results["settings"]["llm_steps"] == 2
    assert json.loads((tmp_path / "asymmetry.json").read_text())["cells"] == structured["cells"]  # untouched
    assert "| samples | 20 | WAV-RandomPlay-6obj-8x8-v0 | 20 | 1 |" in (tmp_path / "asymmetry_llm.md").read_text()
    assert all((tmp_path / f"asymmetry_llm_{factor}.png").stat().st_size > 1000 for factor in FACTORS)
    assert run_sweep(llm, tmp_path, progress=False)["cells"] == [cell]  # resumed: nothing to rerun
    with pytest.raises(SwirlError, match=r"other settings \(llm_steps differ\)"):
        run_sweep(AsymmetrySettings(**vars(llm) | {"llm_steps": 3}), tmp_path, progress=False)


def test_a_results_file_from_before_the_llm_backend_reads_as_structured(tmp_path):
    settings = AsymmetrySettings(**SMOKE)
    old = {"settings": {name: value for name, value in settings.cell_settings().items() if name != "backend"},
           "rooms": {}, "cells": []}
    (tmp_path / "asymmetry.json").write_text(json.dumps(old))
    assert load_results(tmp_path / "asymmetry.json", settings)["cells"] == []
    with pytest.raises(SwirlError, match=r"other settings \(backend"):
        load_results(tmp_path / "asymmetry.json", AsymmetrySettings(**SMOKE, backend="llm"))


def run_command(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/asymmetry.py", *flags], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_the_command_line_writes_the_results_prints_the_table_and_resumes(tmp_path):
    flags = ["--objects", "6", "--noise_levels", "0", "--sizes", "20", "--seeds", "0", "--forward_steps", "20",
             "--inverse_steps", "20", "--train_episodes", "1", "--test_episodes", "6", "--test_rows_per_action", "4",
             "--output_dir", str(tmp_path), "--no_progress"]
    first = run_command(*flags)
    assert first.returncode == 0, first.stderr
    assert "| samples | 20 | WAV-RandomPlay-6obj-8x8-v0 | 20 | 1 |" in first.stdout
    recorded = json.loads((tmp_path / "asymmetry.json").read_text())["cells"]
    assert len(recorded) == 1 and {"error_ratio", "idm_equivalent_accuracy", "fwm_changed_accuracy"} <= set(recorded[0])

    again = run_command(*flags)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "asymmetry.json").read_text())["cells"] == recorded  # skipped, not rerun


def test_the_command_line_help_explains_every_flag():
    result = run_command("--help")
    assert result.returncode == 0, result.stderr
    flags = ("--objects", "--noise_levels", "--sizes", "--seeds", "--forward_steps", "--inverse_steps",
             "--batch_size", "--learning_rate", "--train_episodes", "--test_episodes", "--test_rows_per_action",
             "--max_steps", "--epsilon", "--data_seed", "--output_dir", "--threads", "--no_progress", "--backend",
             "--model", "--lora_layers", "--llm_steps", "--llm_inverse_steps", "--llm_learning_rate", "--llm_batch_size",
             "--max_state_tokens", "--max_action_tokens")
    text = " ".join(result.stdout.split())
    assert all(flag in text for flag in flags)
    assert "level k = 2k noisy floor tiles" in text and "(default: 400)" in text
