"""Does phase I's reward point at the truth? For every pair SWIRL's phase I trained on, the warm FWM's samples
scored with phase I's own reward: do the samples that are the observed s' get the higher group advantage?

The diagnostic lives in :mod:`swirl.study.reward_alignment` (what it measures, and why); this is its command line:

    python benchmarks/reward_alignment.py --study_config recipes/minigrid/quality-headroom.yaml

Needs the study's swirl runs on disk; writes ``benchmarks/results/reward_alignment.{json,md}``.
"""

import sys

from swirl.errors import run_or_exit
from swirl.study.reward_alignment import main

if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:], "reward_alignment.py"))
