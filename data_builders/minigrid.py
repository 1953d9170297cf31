"""Build a MiniGrid / WAV-task transition dataset: ``python -m data_builders.minigrid ...`` is ``swirl data minigrid ...``.

    python -m data_builders.minigrid --env swirl/WAV-KeyDelivery-v0 --episodes 100 --out data/keydelivery

The code is :func:`swirl.builders.minigrid_dataset.build_minigrid_dataset`.
"""

import sys

from swirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "minigrid", *sys.argv[1:]]))
