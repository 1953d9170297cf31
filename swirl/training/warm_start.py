"""SWIRL's warm start: SFT of the ``fwm`` and ``idm`` adapters on the labelled split (or copies of adapters given),
the stage every SWIRL iteration starts from."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from swirl.data import convert_state_texts, load_dataset_dict
from swirl.distributed import is_main_process, wait_for_everyone
from swirl.training.swirl_config import RunConfig


def load_run_data(config: RunConfig, data_path: Path) -> Any:
    """The run's dataset, its states in the run's ``state_text`` where its domain has several (converted on load)."""
    data = load_dataset_dict(data_path)
    state_text = getattr(config, "state_text", None)
    return convert_state_texts(data, state_text) if state_text else data


def test_sample(config: RunConfig, data: Any, rows: int) -> Any:
    """The first ``rows`` test rows in the run's seeded order: every stage's evaluation (``eval_rows``) and the SFT
    eval loss (``sft_eval_rows``) read prefixes of the same shuffle, so every stage sees the same rows."""
    test = data["test"].shuffle(seed=config.seed, keep_in_memory=True)
    return test.select(range(min(rows, test.num_rows)))


def warm_start(config: RunConfig, data_path: Path, stage_dir: Path, tokenizer: Any) -> dict[str, Any]:
    """SFT of the fwm and idm adapters on the labelled split (or copies of ``fwm_adapter`` / ``idm_adapter``), saved
    under ``stage_dir``; returns each adapter's training summary. Every process must call it."""
    from swirl.sft import sft_adapter  # lazy: swirl.sft imports torch, transformers, peft and trl

    data = load_run_data(config, data_path)
    test = test_sample(config, data, config.eval_rows if config.sft_eval_rows is None else config.sft_eval_rows)
    results = {}
    for role, given in (("fwm", config.fwm_adapter), ("idm", config.idm_adapter)):
        if given:
            if is_main_process():
                shutil.copytree(given, stage_dir / role, dirs_exist_ok=True)
            results[role] = {"from": given}
            continue
        results[role] = sft_adapter(config.model, tokenizer, role, data["labelled"], test, stage_dir / role,
                                    lora=(config.lora_r, config.lora_alpha, config.lora_dropout), dtype=config.dtype,
                                    steps=config.sft_steps, learning_rate=config.sft_learning_rate,
                                    batch_size=config.sft_batch_size, seed=config.seed,
                                    trainer_dir=stage_dir / "trainer" / role, view=config.state_view,
                                    lora_vision=config.lora_vision, lora_layers=config.lora_layers,
                                    tracking=config, stage=f"{stage_dir.name}/{role}")
        wait_for_everyone()
    return results
