"""SWIRL on MiniGrid: build or load the data, warm-start FWM and IDM, alternate phase I and phase II.

    accelerate launch recipes/swirl_minigrid.py --config recipes/minigrid/cpu-tiny.yaml [--field value ...]

Every field of `swirl.training.config.SwirlConfig` can be set in the YAML preset or overridden as a flag
(`--help` lists them). Rerun the same command to resume after a crash.
"""

from __future__ import annotations

import shlex
import sys

import datasets

from eval.world_model import markdown_table
from swirl.cli import parse_config, run_or_exit
from swirl.training.config import SwirlConfig
from swirl.training.loop import is_main_process, run_swirl



def main(argv: list[str]) -> None:
    config = parse_config(SwirlConfig, argv, description=__doc__.split("\n\n")[0])
    command = "accelerate launch recipes/swirl_minigrid.py " + " ".join(shlex.quote(arg) for arg in argv)
    datasets.disable_progress_bars()  # dozens of tiny .map calls; the trainers log their own progress
    lines = run_swirl(config, command)
    if is_main_process():
        print(markdown_table(lines))
        print(f"metrics: {config.output_dir}/metrics.jsonl")


if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:]))
