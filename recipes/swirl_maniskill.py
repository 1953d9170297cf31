"""SWIRL on ManiSkill3 text states: build or load the data, warm-start FWM and IDM, alternate phase I and phase II.

    accelerate launch recipes/swirl_maniskill.py --config recipes/maniskill/cpu-tiny.yaml [--field value ...]

The same loop as recipes/swirl_minigrid.py; states are the tasks' state observations as fixed-precision text and
actions the controller's continuous vectors (see swirl.envs.maniskill). Every field of
`swirl.training.swirl_config.SwirlManiSkillConfig` can be set in the YAML preset or overridden as a flag (`--help`
lists them). Rerun the same command to resume after a crash. On a CPU-only machine run `make maniskill-setup`
and `source .vulkan/env.sh` first (ManiSkill needs Vulkan).
"""

from __future__ import annotations

import sys

from swirl.errors import run_or_exit
from swirl.recipes import swirl_recipe
from swirl.training.swirl_config import SwirlManiSkillConfig

if __name__ == "__main__":
    sys.exit(run_or_exit(swirl_recipe, SwirlManiSkillConfig, sys.argv[1:], "recipes/swirl_maniskill.py",
                         __doc__.split("\n\n")[0]))
