"""WAV's forward-inverse asymmetry on MiniGrid: the structured forward model's error against the sparse inverse
model's, over the paper's three factors (labelled samples, objects in the room, noisy floor tiles).

The sweep lives in :mod:`swirl.wav.asymmetry` (what each cell trains and measures, and why); this is its command
line, as ``make asymmetry`` runs it:

    python benchmarks/asymmetry.py                          # the whole sweep, resumable
    python benchmarks/asymmetry.py --sizes 100 400 --seeds 0 --output_dir runs/asymmetry-quick

Writes ``asymmetry.json``, ``asymmetry.md`` and ``asymmetry_{objects,noise,samples}.png`` into the output folder
and prints the table. Cells already in the JSON are skipped; the table, plots and summary cover every cell of the
JSON, also those an earlier command ran with other flags (``--objects 14 --seeds 2`` adds one cell to the rest).
"""

import sys

from swirl.config_fields import parse_config
from swirl.errors import run_or_exit
from swirl.wav.asymmetry import AsymmetrySettings, run_sweep, summary_table


def main(argv: list[str], prog: str) -> None:
    settings = parse_config(AsymmetrySettings, argv, description=__doc__.split("\n\n")[0], prog=prog)
    results = run_sweep(settings, settings.output_dir, progress=settings.progress, threads=settings.threads)
    print(summary_table(results["summary"]))


if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:], "asymmetry.py"))
