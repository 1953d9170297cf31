"""Test helper: ``recipes/swirl_minigrid.py`` with one failure injected on one process (the thinnest seam: two
functions replaced before the recipe runs). ``SWIRL_TEST_FAIL_RANK`` picks the process, ``SWIRL_TEST_FAIL_AT`` the
place: ``eval`` (the evaluation of iter_1/phase1) or ``phase`` (phase I's reward, inside GRPO training)."""

import os
import runpy
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "swirl_minigrid.py"

if int(os.environ.get("RANK", "0")) == int(os.environ["SWIRL_TEST_FAIL_RANK"]):
    from swirl.errors import SwirlError

    if os.environ["SWIRL_TEST_FAIL_AT"] == "eval":
        import swirl.training.loop as loop

        evaluate_stage = loop.evaluate_stage

        def failing_evaluation(config, stage_dir, *args, **kwargs):
            if stage_dir.name == "phase1":
                raise SwirlError("injected failure in the evaluation of iter_1/phase1")
            return evaluate_stage(config, stage_dir, *args, **kwargs)

        loop.evaluate_stage = failing_evaluation
    else:
        from swirl.training.rewards import IDMActionReward

        def failing_reward(self, *args, **kwargs):
            raise SwirlError("injected failure in phase I's reward")

        IDMActionReward.__call__ = failing_reward

sys.argv = [str(RECIPE), *sys.argv[1:]]
runpy.run_path(str(RECIPE), run_name="__main__")
