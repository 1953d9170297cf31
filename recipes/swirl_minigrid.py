"""SWIRL on MiniGrid: build or load the data, warm-start FWM and IDM, alternate phase I and phase II.

    accelerate launch recipes/swirl_minigrid.py --config recipes/minigrid/cpu-tiny.yaml [--field value ...]

Every field of `swirl.training.swirl_config.SwirlConfig` can be set in the YAML preset or overridden as a flag
(`--help` lists them). Rerun the same command to resume after a crash.
"""

from __future__ import annotations

import sys

from swirl.errors import run_or_exit
from swirl.recipes import swirl_recipe
from swirl.training.swirl_config import SwirlConfig

if __name__ == "__main__":
    sys.exit(run_or_exit(swirl_recipe, SwirlConfig, sys.argv[1:], "recipes/swirl_minigrid.py", __doc__.split("\n\n")[0]))
