"""What the scripts in ``recipes/`` run: parse a config (YAML preset + flags), run or resume the job, print its table.

Like :mod:`swirl.cli`, this is the top of the import graph: nothing in the package imports it.
"""

from __future__ import annotations

import shlex
from typing import Sequence

import datasets

from swirl.config_fields import parse_config
from swirl.distributed import is_main_process
from swirl.envs.domain import get_domain
from swirl.evaluation.acquisition_summary import summarise
from swirl.evaluation.tables import baseline_line, markdown_table
from swirl.training.loop import run_swirl
from swirl.wav.acquisition import run_acquisition
from swirl.wav.journal import acquired_labels
from swirl.wav.wav_config import WAVConfig


def swirl_recipe(config_class: type, argv: Sequence[str], script: str, description: str) -> None:
    """``recipes/swirl_<env>.py``: the SWIRL loop, then the per-stage table (after a baseline row on MiniGrid)."""
    config = parse_config(config_class, argv, description=description)
    command = f"accelerate launch {script} " + " ".join(shlex.quote(arg) for arg in argv)
    datasets.disable_progress_bars()  # dozens of tiny .map calls; the trainers log their own progress
    lines = run_swirl(config, command)
    if is_main_process():
        domain = get_domain(config.domain)
        baselines = [] if domain.continuous else [baseline_line(lines[0])]  # copy s, constant action: discrete metrics
        print(markdown_table(baselines + lines, domain.headline_metrics))
        print(f"metrics: {config.output_dir}/metrics.jsonl")


def wav_recipe(argv: Sequence[str], description: str) -> None:
    """``recipes/wav_minigrid.py``: WAV acquisition with every method and seed asked for, then its summary."""
    config = parse_config(WAVConfig, argv, description=description)
    datasets.disable_progress_bars()  # many tiny .map calls; the run shows its own progress
    lines = run_acquisition(config)
    if is_main_process():
        # every run in the folder, as `lines` (also earlier commands', e.g. --method wav then --method random)
        _, table = summarise(lines, config.output_dir, acquired_labels(config.output_dir))
        print(table)
        print(f"per-round lines: {config.output_dir}/results.jsonl; plot: {config.output_dir}/error_vs_labels.png")
