"""Does self-improvement help? SWIRL against the obvious baselines on MiniGrid, over seeds, one command, resumable.

The study lives in :mod:`swirl.study` (its arms in ``swirl/study/arms.py``, its statistics in
``swirl/study/statistics.py``); this is its command line, as ``make quality`` runs it:

    python benchmarks/quality_minigrid.py --config recipes/minigrid/quality-smollm2.yaml

Writes ``<output_dir>/quality.{json,md,png}`` and prints the headline table.
"""

import sys

from swirl.errors import run_or_exit
from swirl.study.runner import main

if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:], "quality_minigrid.py"))
