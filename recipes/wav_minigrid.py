"""WAV on MiniGrid: warm-start FWM, inverse model and subgoal generator, then acquire action labels round by
round with WAV or a baseline, retraining after each round.

    accelerate launch recipes/wav_minigrid.py --config recipes/minigrid/wav-tiny.yaml [--method all] [--seeds 0 1 2]

Every field of `swirl.wav.config.WAVConfig` can be set in the YAML preset or overridden as a flag (`--help`
lists them). Rerun the same command to resume after a crash: executed labels are journaled and never redone.
"""

from __future__ import annotations

import sys

import datasets

from eval.acquisition import summarise, summary_table
from swirl.cli import parse_config, run_or_exit
from swirl.training.loop import is_main_process
from swirl.wav.acquisition import run_acquisition
from swirl.wav.config import WAVConfig


def main(argv: list[str]) -> None:
    config = parse_config(WAVConfig, argv, description=__doc__.split("\n\n")[0])
    datasets.disable_progress_bars()  # many tiny .map calls; the run shows its own progress
    lines = run_acquisition(config)
    if is_main_process():
        summarise(lines, config.output_dir)
        print(summary_table(lines))
        print(f"per-round lines: {config.output_dir}/results.jsonl; plot: {config.output_dir}/error_vs_labels.png")


if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:]))
