"""WAV on MiniGrid: warm-start FWM, inverse model and subgoal generator, then acquire action labels round by
round with WAV or a baseline, retraining after each round.

    accelerate launch recipes/wav_minigrid.py --config recipes/minigrid/wav-tiny.yaml [--method all] [--seeds 0 1 2]

Every field of `swirl.wav.wav_config.WAVConfig` can be set in the YAML preset or overridden as a flag (`--help`
lists them). Rerun the same command to resume after a crash: executed labels are journaled and never redone.
"""

from __future__ import annotations

import sys

from swirl.errors import run_or_exit
from swirl.recipes import wav_recipe

if __name__ == "__main__":
    sys.exit(run_or_exit(wav_recipe, sys.argv[1:], __doc__.split("\n\n")[0]))
