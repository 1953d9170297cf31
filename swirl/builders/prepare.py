"""The dataset a run uses: the folder its config names, or one built from its ``env_*`` fields (once, on the main
process, under ``<output_dir>/data``), for SWIRL and WAV runs alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swirl.distributed import is_main_process, wait_for_everyone


def build_dataset(config: Any, seed: int, images: bool = False) -> Any:
    """The DatasetDict a config's ``env_*`` fields describe (``config.domain``: minigrid or maniskill), with state
    images when ``images``."""
    if config.domain == "maniskill":
        from swirl.builders.maniskill import build_maniskill_dataset

        return build_maniskill_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                       policy=config.env_policy, epsilon=config.env_epsilon,
                                       test_episodes=config.env_test_episodes, fields=config.env_fields,
                                       images="sensor" if images else "none", precision=config.env_precision,
                                       action_precision=config.env_action_precision,
                                       control_mode=config.env_control_mode, seed=seed, progress=True)
    from swirl.builders.minigrid import build_minigrid_dataset

    return build_minigrid_dataset(config.env_ids, episodes=config.env_episodes, max_steps=config.env_max_steps,
                                  policy=config.env_policy, epsilon=config.env_epsilon,
                                  test_episodes=config.env_test_episodes, test_split=config.env_test_split,
                                  images=images, tile_size=config.env_tile_size, state_text=config.state_text,
                                  seed=seed, progress=True)


def prepare_dataset(config: Any, seed: int) -> Path:
    """The dataset folder: ``config.dataset`` if it exists, else built (once, under ``config.output_dir``) from
    the config's ``env_*`` fields with ``seed``. Every process must call it (it ends at a barrier)."""
    from swirl.data import save_dataset_dict

    path = Path(config.dataset) if config.dataset else Path(config.output_dir) / "data"
    if is_main_process() and not path.exists():  # every process reaches the barrier below, built or not
        images = getattr(config, "state_modality", "text") != "text"
        save_dataset_dict(build_dataset(config, seed, images=images), path)
    wait_for_everyone()
    return path
