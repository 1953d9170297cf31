"""swirl.training.step_timing: the step timers wrap GRPOTrainer's methods only inside their block (importing the
module patches nothing), and every exit, an exception included, puts the originals back."""

from __future__ import annotations

import pytest
from trl import GRPOTrainer

from swirl.training.step_timing import GRPO_TIMERS, timed, timing_grpo, timing_methods

WRAPPER_CODE = timed("any", lambda: None, {}).__code__


def grpo_methods() -> dict:
    return {attribute: GRPOTrainer.__dict__[attribute] for attribute in GRPO_TIMERS}


def test_importing_patches_nothing_and_the_block_restores_the_originals():
    originals = grpo_methods()
    assert all(method.__code__ is not WRAPPER_CODE for method in originals.values())
    with timing_grpo() as timers:
        assert all(method.__code__ is WRAPPER_CODE for method in grpo_methods().values())
        assert timers["step"] == 0.0  # a timer never called reads 0
    assert grpo_methods() == originals
    with pytest.raises(RuntimeError), timing_grpo():
        raise RuntimeError("a failed phase")
    assert grpo_methods() == originals


def test_a_timed_method_adds_its_seconds_and_an_inherited_one_is_deleted_again():
    class Base:
        def work(self, value: int) -> int:
            return value + 1

    class Child(Base):
        pass

    with timing_methods(Child, {"work": "work_s"}) as timers:
        assert Child().work(2) == 3 and Child().work(3) == 4
        assert "work" in Child.__dict__ and Base().work(0) == 1
    assert "work" not in Child.__dict__ and Child.work is Base.work
    assert set(timers) == {"work_s"} and timers["work_s"] >= 0.0
