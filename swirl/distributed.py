"""The run's processes: accelerate's process state, which process is the main one, and barriers.

Only the main process evaluates a stage and writes its files; every process trains. Everything that needs to
know which process it is on goes through :func:`distributed_state`, because accelerate's state is a singleton
whose first creation decides the backend for the trainers created after it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

BARRIER_TIMEOUT_HOURS = 3  # non-main processes wait at barriers while the main one evaluates a stage


def distributed_state() -> Any:
    """accelerate's process state. Without a GPU it must be created with ``cpu=True`` (gloo). The barrier
    timeout is raised from torch's default (30 min on gloo) because only the main process evaluates each
    stage, which can take longer on a CPU."""
    import torch  # lazy: torch and accelerate are heavy; importing swirl.distributed stays light
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(hours=BARRIER_TIMEOUT_HOURS))


def is_main_process() -> bool:
    return distributed_state().is_main_process


def wait_for_everyone() -> None:
    distributed_state().wait_for_everyone()
