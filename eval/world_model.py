"""Evaluate a stage's fwm/idm adapters on a dataset split: ``python -m eval.world_model ...`` is ``swirl eval ...``.

    python -m eval.world_model --adapters runs/quick/iter_1/phase2 --dataset runs/quick/data --out runs/quick/eval

The code is :func:`swirl.evaluation.world_model.evaluate_saved_stage`; ``--help`` lists the flags.
"""

import sys

from swirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
