"""WAV's forward-inverse asymmetry on MiniGrid: the structured forward model's error against the sparse inverse
model's, over the paper's three factors (labelled samples, objects in the room, noisy floor tiles).

The sweep lives in :mod:`swirl.wav.asymmetry` (what each cell trains and measures, and why); this is its command
line, as ``make asymmetry`` runs it:

    python benchmarks/asymmetry.py                          # the whole sweep, resumable
    python benchmarks/asymmetry.py --sizes 100 400 --seeds 0 --output_dir runs/asymmetry-quick

Writes ``asymmetry.json``, ``asymmetry.md`` and ``asymmetry_{objects,noise,samples}.png`` into the output folder
and prints the table. Cells already in the JSON are skipped.
"""

import argparse
import sys

from swirl.errors import run_or_exit
from swirl.wav.asymmetry import AsymmetrySettings, run_sweep, summary_table

DEFAULTS = AsymmetrySettings()


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grid = parser.add_argument_group("the grid (cells already in the results are skipped)")
    grid.add_argument("--objects", type=int, nargs="+", default=DEFAULTS.objects,
                      help="objects factor: object counts of the 8x8 random-play rooms (no noise)")
    grid.add_argument("--noise_levels", type=int, nargs="+", default=DEFAULTS.noise_levels,
                      help="noise factor: levels of the 6-object room, level k = 2k noisy floor tiles (0: none)")
    grid.add_argument("--sizes", type=int, nargs="+", default=DEFAULTS.sizes,
                      help="samples factor: labelled training transitions per cell")
    grid.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS.seeds,
                      help="training seeds (each picks its own training rows and initialisation)")
    cell = parser.add_argument_group("how each cell is made (a results file made with other values is refused)")
    cell.add_argument("--forward_steps", type=int, default=DEFAULTS.forward_steps,
                      help="optimiser steps of the structured forward model")
    cell.add_argument("--inverse_steps", type=int, default=DEFAULTS.inverse_steps,
                      help="optimiser steps of the sparse inverse model")
    cell.add_argument("--batch_size", type=int, default=DEFAULTS.batch_size, help="minibatch size of both models")
    cell.add_argument("--learning_rate", type=float, default=DEFAULTS.learning_rate,
                      help="AdamW learning rate of both models")
    cell.add_argument("--train_episodes", type=int, default=DEFAULTS.train_episodes,
                      help="random-play episodes per room for the training pool (max_steps transitions each)")
    cell.add_argument("--test_episodes", type=int, default=DEFAULTS.test_episodes,
                      help="held-out episodes per room from which the identifiable test set is drawn")
    cell.add_argument("--test_rows_per_action", type=int, default=DEFAULTS.test_rows_per_action,
                      help="identifiable test rows kept per action at most")
    cell.add_argument("--max_steps", type=int, default=DEFAULTS.max_steps, help="steps per episode")
    cell.add_argument("--epsilon", type=float, default=DEFAULTS.epsilon,
                      help="share of uniformly random actions in the rooms' random-play policy")
    cell.add_argument("--data_seed", type=int, default=DEFAULTS.data_seed,
                      help="seed of every room's data (training pool and test set)")
    parser.add_argument("--output_dir", default="benchmarks/results",
                        help="folder of asymmetry.json, asymmetry.md and the plots")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (the models are tiny: a second thread buys little, and on a shared "
                             "CPU it slows every cell down)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str], prog: str) -> None:
    parser = build_parser(prog)
    args = vars(parser.parse_args(argv))
    output_dir, threads, progress = args.pop("output_dir"), args.pop("threads"), not args.pop("no_progress")
    try:
        settings = AsymmetrySettings(**args)
    except ValueError as error:
        parser.error(str(error))
    results = run_sweep(settings, output_dir, progress=progress, threads=threads)
    print(summary_table(results["summary"]))


if __name__ == "__main__":
    sys.exit(run_or_exit(main, sys.argv[1:], "asymmetry.py"))
