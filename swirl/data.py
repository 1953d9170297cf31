"""Saving and loading the transition datasets: atomic writes, and one-line errors for bad folders.

Every builder (``swirl/builders/``) produces a ``datasets.DatasetDict`` with the splits ``labelled``
(transitions with their action), ``state_only`` (the action is the latent variable, ``None``) and ``test``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from swirl.envs.domain import domain_of_columns
from swirl.errors import DatasetError
from swirl.paths import atomic_dir

SPLITS = ("labelled", "state_only", "test")
TRANSITION_COLUMNS = ("state", "action", "next_state", "env_id", "seed", "episode", "step", "action_prefix")  # every builder


def ensure_writable(out: str | os.PathLike, overwrite: bool) -> Path:
    """Fail before any work when ``out`` holds data that must not be replaced."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    return out


def save_dataset_dict(dataset_dict, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """``save_to_disk`` into a temporary sibling folder, then move it into place.

    A crash mid-write never leaves a half-written dataset at ``out``, and an existing dataset there is
    only replaced when ``overwrite`` is set (and only once the new one is complete).
    """
    out = ensure_writable(out, overwrite)
    with atomic_dir(out, replace=True) as staging:
        dataset_dict.save_to_disk(str(staging))
    return out


def load_dataset_dict(
    path: str | os.PathLike, splits: Iterable[str] = SPLITS, columns: Iterable[str] = TRANSITION_COLUMNS
):
    """Load a dataset built by ``swirl data ...``; check that the splits and columns are there."""
    from datasets import DatasetDict, load_from_disk  # lazy: datasets is heavy; importing swirl.data stays light

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no dataset at {path}; build one with `swirl data minigrid --out {path}`")
    try:
        dataset = load_from_disk(str(path))
    except Exception as error:  # datasets raises several types for unreadable folders
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DatasetError(f"cannot read the dataset at {path} ({message}); rebuild it with `swirl data ...`") from None
    if not isinstance(dataset, DatasetDict):
        raise DatasetError(f"{path} holds a single Dataset, expected a DatasetDict with splits {', '.join(splits)}")
    missing = [split for split in splits if split not in dataset]
    if missing:
        raise DatasetError(f"{path} lacks the split(s) {', '.join(missing)} (has {', '.join(dataset)})")
    for split in splits:
        absent = [column for column in columns if column not in dataset[split].column_names]
        if absent:
            raise DatasetError(f"{path}: split {split!r} lacks the column(s) {', '.join(absent)}")
    return dataset


def domain_of(rows: Any) -> str:
    """The name of a dataset split's domain, read from its columns (e.g. ManiSkill rows carry the simulator state)."""
    return domain_of_columns(rows.column_names).name


def check_state_images(dataset_dict: Any, path: str | os.PathLike, splits: Iterable[str] = SPLITS) -> None:
    """Image states need the builders' ``image`` and ``next_image`` columns in every split used."""
    for split in splits:
        absent = [column for column in ("image", "next_image") if column not in dataset_dict[split].column_names]
        if absent:
            raise DatasetError(f"{path}: split {split!r} has no state images (no {', '.join(absent)} column); "
                               f"rebuild it with `swirl data ... --images` or use state_modality: text")


def _in_state_text(states: list[str], next_states: list[str], convert: Any, state_text: str) -> dict:
    return {"state": [convert(text, state_text) for text in states],
            "next_state": [convert(text, state_text) for text in next_states]}


def convert_state_texts(dataset_dict: Any, state_text: str) -> Any:
    """Splits with their ``state`` / ``next_state`` columns in ``state_text`` (MiniGrid: ``grid`` or ``objects``,
    both lossless); splits already in that text, and domains with one state text, are returned as they are."""
    converted = {}
    for split, rows in dataset_dict.items():
        domain = domain_of_columns(rows.column_names)
        if rows.num_rows and domain.convert_state_text and domain.state_text_kind(rows[0]["state"]) != state_text:
            rows = rows.map(_in_state_text, batched=True, input_columns=["state", "next_state"], keep_in_memory=True,
                            fn_kwargs={"convert": domain.convert_state_text, "state_text": state_text},
                            desc=f"{split}: {state_text} state texts")  # only the texts are read (no image decoding)
        converted[split] = rows
    return type(dataset_dict)(converted)
