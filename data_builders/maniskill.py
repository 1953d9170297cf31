"""Build a ManiSkill3 transition dataset: ``python -m data_builders.maniskill ...`` is ``swirl data maniskill ...``.

    python -m data_builders.maniskill --env PickCube-v1 --episodes 20 --out data/pickcube

The code is :func:`swirl.builders.maniskill_dataset.build_maniskill_dataset`.
"""

import sys

from swirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "maniskill", *sys.argv[1:]]))
