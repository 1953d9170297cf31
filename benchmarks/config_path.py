"""Which files the main recipe's config passes through: run ``recipes/swirl_minigrid.py`` in this process on a
preset and record every repository file whose code reads a field, property or method of the run's ``SwirlConfig``
(issue #30's measure of how far the config object travels).

    python benchmarks/config_path.py --config recipes/minigrid/cpu-tiny.yaml --output_dir /tmp/config-path

Any other flag goes to the recipe (``--acquisition wav``). Prints the count and the files (reads per file), and
writes ``config_path.json`` into ``--output_dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path

from swirl.recipes import swirl_recipe
from swirl.training.swirl_config import SwirlConfig

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="recipes/minigrid/cpu-tiny.yaml", help="the recipe's preset.")
    parser.add_argument("--output_dir", default="/tmp/config-path", help="the run's folder (and the JSON's).")
    args, recipe_flags = parser.parse_known_args()  # any other flag goes to the recipe (e.g. --acquisition wav)
    names = {f.name for f in fields(SwirlConfig)} | {name for name in dir(SwirlConfig) if not name.startswith("_")}
    reads: Counter = Counter()
    original = SwirlConfig.__getattribute__

    def recording(self, name):
        if name in names:
            caller = Path(sys._getframe(1).f_code.co_filename).resolve()
            if caller.is_relative_to(REPO) and ".venv" not in caller.parts:
                reads[str(caller.relative_to(REPO))] += 1
        return original(self, name)

    SwirlConfig.__getattribute__ = recording
    try:
        swirl_recipe(SwirlConfig, ["--config", args.config, "--output_dir", args.output_dir, *recipe_flags],
                     "recipes/swirl_minigrid.py", "config path")
    finally:
        SwirlConfig.__getattribute__ = original
    files = sorted(reads)
    print(f"{len(files)} files read the config:")
    for name in files:
        print(f"  {name}: {reads[name]} reads")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "config_path.json").write_text(json.dumps(
        {"preset": args.config, "flags": recipe_flags, "files": reads}, indent=1))


if __name__ == "__main__":
    main()
