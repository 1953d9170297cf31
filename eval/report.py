"""Compare the final evaluation of SWIRL runs: ``python -m eval.report ...`` is ``swirl report ...``.

    python -m eval.report --run sft-only=runs/a --run swirl=runs/b --out reports/compare

The code is :func:`swirl.evaluation.run_comparison.compare`.
"""

import sys

from swirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
