"""Summarise WAV acquisition runs: ``python -m eval.acquisition RUN_DIR ...`` is ``swirl wav-report RUN_DIR ...``.

    python -m eval.acquisition runs/wav-tiny

The code is :func:`swirl.evaluation.acquisition_summary.summarise_runs`.
"""

import sys

from swirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["wav-report", *sys.argv[1:]]))
