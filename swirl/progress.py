"""What a user watching a run sees: progress bars and one line at the end of each stage.

One bar counts a run's stages (warm start, each phase, WAV rounds); inside a stage the trainer's own bar counts
optimiser steps and shows the numbers that matter (loss, reward, KL) instead of printing a dict per step; long
work outside a trainer (annotation, evaluation, pool scoring, dataset builds) gets a bar too. Bars are drawn by the
main process only, and :func:`disable_progress_bars` (a run's ``disable_tqdm``) turns every one off, like
``datasets.disable_progress_bars``.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable

_enabled = True
# what a stage's bar shows of the trainer's logs (the first of each pair that is logged), in this order
BAR_KEYS = (("loss", "loss"), ("reward", "reward"), ("reward_std", "std"), ("kl", "kl"), ("eval_loss", "eval_loss"))


def disable_progress_bars() -> None:
    global _enabled
    _enabled = False


def enable_progress_bars() -> None:
    global _enabled
    _enabled = True


def main_process() -> bool:
    """``RANK`` 0 under ``accelerate launch`` / ``torchrun`` (and any single-process run): the one that prints."""
    return int(os.environ.get("RANK", "0")) == 0


def progress_bars_enabled() -> bool:
    """Bars are on, and this is the main process."""
    return _enabled and main_process()


def bar(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
        leave: bool = False, disable: bool = False) -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand with ``total``), silent when bars are off (or ``disable``)."""
    from tqdm.auto import tqdm  # lazy: tqdm is heavy; importing swirl.progress stays light

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, dynamic_ncols=True,
                disable=disable or not progress_bars_enabled())


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def stage_line(stage: str, seconds: float, numbers: dict[str, float | None]) -> str:
    """The one readable line that ends a stage: ``swirl: iter_1/phase1 done in 2m41s | fwm changed 57.8% | ...``."""
    def shown(name: str, value: float) -> str:
        return f"{name} {value:.1%}" if name.endswith(("accuracy", "match", "rate")) else f"{name} {value:.4g}"

    parts = [shown(name, value) for name, value in numbers.items() if value is not None]
    return " | ".join([f"swirl: {stage} done in {format_seconds(seconds)}", *parts])


def show_stage_end(stage: str, seconds: float, numbers: dict[str, float | None]) -> None:
    if main_process():
        print(stage_line(stage, seconds, numbers), flush=True)


def use_stage_bar(trainer: Any, desc: str) -> None:
    """Replace the trainer's console output (a tqdm bar that also prints every log dict, or with ``disable_tqdm``
    the dicts alone) with one bar of ``desc`` whose postfix carries the latest loss / reward / KL."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback  # lazy: transformers is heavy

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(stage_bar_class()(desc))


@functools.cache
def stage_bar_class() -> type:
    """:class:`transformers.TrainerCallback` subclass (built on first use: importing swirl loads no transformers)."""
    from transformers import TrainerCallback  # lazy: transformers is heavy

    class StageBar(TrainerCallback):
        def __init__(self, desc: str) -> None:
            self.desc, self.bar = desc, None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.bar = bar(desc=self.desc, total=state.max_steps, unit="step")
                self.bar.update(state.global_step)  # a resumed phase starts at its checkpoint

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if self.bar is not None and logs:
                shown = {label: f"{logs[key]:.4g}" for key, label in BAR_KEYS if isinstance(logs.get(key), (int, float))}
                if shown:
                    self.bar.set_postfix(shown, refresh=False)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StageBar
