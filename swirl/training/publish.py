"""The end of a SWIRL run: its ``hub/`` folder (final adapters, model card, run config), pushed when asked."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from swirl.hub import model_card, prepare_push_folder, push_folder
from swirl.training.swirl_config import RunConfig


def publish(config: RunConfig, data: Any, lines: list[dict], final_stage: Path, command: str) -> Path:
    """Write the Hub folder (final adapters + model card); push it if ``config.push_to_hub``."""
    env_ids = sorted(set(data["labelled"]["env_id"]) | set(data["state_only"]["env_id"]))
    data_info = {"domain": config.domain, "env_ids": env_ids,
                 **{split: data[split].num_rows for split in ("labelled", "state_only", "test")}}
    card = model_card(asdict(config), data_info, lines, command or f"accelerate launch recipes/swirl_{config.domain}.py ...")
    folder = prepare_push_folder(config.output_dir, str(final_stage), card)
    if config.push_to_hub:
        print(f"pushed to {push_folder(str(folder), config.hub_model_id)}")
    return folder
