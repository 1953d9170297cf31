"""SWIRL with WAV (the two papers in one loop): acquire the warm start's labels with a WAV method, then hand SWIRL
a dataset whose ``labelled`` split is the seed labels plus the acquired ones."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_from_disk

from swirl import tracking
from swirl.config_fields import LoRAModelFields
from swirl.data import convert_state_texts, load_dataset_dict, save_dataset_dict
from swirl.distributed import is_main_process, wait_for_everyone
from swirl.wav.acquisition import run_acquisition
from swirl.wav.wav_config import WAVConfig
from swirl.wav.seed_data import labelled_dataset, split_data


def acquire_for_swirl(config: Any, data_path: Path) -> Path:
    """SWIRL with WAV: acquire labels with ``config.acquisition``, then return a dataset whose ``labelled`` split
    is the seed labels + the acquired ones (``state_only`` and ``test`` unchanged), for the warm start.

    ``config`` is a :class:`swirl.training.swirl_config.SwirlConfig`; the acquisition runs under
    ``<output_dir>/acquisition/`` (resumable like any WAV run) and reuses its model and SFT settings.
    """
    out = Path(config.output_dir) / "data_acquired"
    sft_steps = config.sft_steps if config.acquisition_sft_steps is None else config.acquisition_sft_steps
    wav = WAVConfig(output_dir=str(Path(config.output_dir) / "acquisition"), method=config.acquisition,
                    seeds=[config.seed], dataset=str(data_path),
                    eval_rows=config.eval_rows if config.acquisition_eval_rows is None else config.acquisition_eval_rows,
                    **asdict(config.acquisition_fields()),
                    **{f.name: getattr(config, f.name) for f in fields(LoRAModelFields)},
                    warm_start_steps=sft_steps, subgoal_steps=sft_steps, round_steps=max(1, sft_steps // 4),
                    sft_learning_rate=config.sft_learning_rate, sft_batch_size=config.sft_batch_size,
                    temperature=config.temperature, top_p=config.top_p, max_state_tokens=config.max_state_tokens,
                    max_action_tokens=config.max_action_tokens, sampler=config.sampler,
                    state_format=config.state_format, state_text=config.state_text,
                    state_front_cell=config.state_front_cell,
                    report_to=config.report_to, project=config.project, disable_tqdm=config.disable_tqdm,
                    run_name=f"{tracking.run_name(config)}/acquisition")
    run_acquisition(wav)  # finished rounds are skipped; other settings than the first run's are refused
    if is_main_process() and not out.exists():
        data = convert_state_texts(load_dataset_dict(data_path), config.state_text)
        run_dir = Path(wav.output_dir) / f"seed_{config.seed}" / config.acquisition
        if wav.rounds:
            labelled = load_from_disk(str(run_dir / f"round_{wav.rounds}" / "labelled"))["labelled"]
        else:
            labelled = labelled_dataset(split_data(wav, data, config.seed)["seed_labels"], [])
        columns = list(labelled.features)
        save_dataset_dict(DatasetDict({"labelled": labelled, "state_only": data["state_only"].select_columns(columns),
                                       "test": data["test"].select_columns(columns)}), out)
    wait_for_everyone()
    return out
