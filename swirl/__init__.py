"""swirl: fine-tune LLMs/VLMs into world models with SWIRL and collect action labels with WAV.

The entry points, importable from here (loaded on first use, so ``import swirl`` stays cheap)::

    from swirl import SwirlConfig, run_swirl
    lines = run_swirl(SwirlConfig(output_dir="runs/quick", model="tiny-qwen2"))

``SwirlConfig`` / ``SwirlManiSkillConfig`` and :func:`run_swirl` are the SWIRL loop (:mod:`swirl.training`),
``WAVConfig`` and :func:`run_acquisition` WAV's acquisition (:mod:`swirl.wav`), :func:`evaluate_world_model`
the evaluation of a world model on a split (:mod:`swirl.evaluation`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SwirlConfig": "swirl.training.swirl_config",
    "SwirlManiSkillConfig": "swirl.training.swirl_config",
    "run_swirl": "swirl.training.loop",
    "WAVConfig": "swirl.wav.wav_config",
    "run_acquisition": "swirl.wav.acquisition",
    "evaluate_world_model": "swirl.evaluation.world_model",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'swirl' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
