"""``python -m swirl.study --config <preset>``: the quality study (:mod:`swirl.study.runner`)."""

import sys

from swirl.errors import run_or_exit
from swirl.study.runner import main

sys.exit(run_or_exit(main, sys.argv[1:]))
