"""The dataset a run uses: the folder its config names, or one built from its ``env_*`` fields (once, on the main
process, under ``<output_dir>/data``), for SWIRL and WAV runs alike."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from swirl.data import save_dataset_dict
from swirl.distributed import is_main_process, wait_for_everyone
from swirl.envs.domain import get_domain


def build_dataset(config: Any, seed: int, images: bool = False) -> Any:
    """The DatasetDict a config's ``env_*`` fields describe, built by its domain's builder (the ``builder``
    entry point of its :class:`swirl.envs.domain.Domain`), with state images when ``images``."""
    module, function = get_domain(config.domain).builder.split(":")
    return getattr(importlib.import_module(module), function)(config, seed, images)


def prepare_dataset(config: Any, seed: int) -> Path:
    """The dataset folder: ``config.dataset`` if it exists, else built (once, under ``config.output_dir``) from
    the config's ``env_*`` fields with ``seed``. Every process must call it (it ends at a barrier)."""
    path = Path(config.dataset) if config.dataset else Path(config.output_dir) / "data"
    if is_main_process() and not path.exists():  # every process reaches the barrier below, built or not
        images = getattr(config, "state_modality", "text") != "text"
        save_dataset_dict(build_dataset(config, seed, images=images), path)
    wait_for_everyone()
    return path
