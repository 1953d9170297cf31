"""Where a SWIRL GRPO step's time goes: generation (``GRPOTrainer._generate``), reward scoring
(``_calculate_rewards``) and the update (the rest of ``training_step``: reference and policy log-probs, loss,
backward, optimiser), and how many distinct state-only pairs a CPU-minute trains.

It exists so that the step-time benchmarks (``benchmarks/grpo_step.py``, ``benchmarks/vlm_step.py``) are thin
command lines over one tested piece of code, and so that the timers never leak into a run: importing this module
patches nothing. :func:`timing_grpo` wraps the three trainer methods only inside its ``with`` block and puts the
originals back on exit (an exception included); :func:`measure` times one phase per block, run as the SWIRL loop
runs it (:func:`swirl.training.phases.run_grpo_phase`).
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trl import GRPOTrainer

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.data import convert_state_texts, load_dataset_dict
from swirl.models.adapters import lora_config, save_adapter, with_adapters
from swirl.models.loading import load_base_model, load_tokenizer
from swirl.models.prompts import images_for_row, trl_prompt
from swirl.models.vision import lora_target_modules
from swirl.training.phases import phase2_dataset, run_grpo_phase
from swirl.training.swirl_config import SwirlConfig

# GRPOTrainer method -> the timer it adds to. "step" is the whole step; the update is step - generation - scoring.
GRPO_TIMERS = {"_generate": "generation", "_calculate_rewards": "scoring", "training_step": "step"}

_ABSENT = object()  # an attribute the class inherits rather than defines: deleted again on exit


def timed(name: str, method: Callable[..., Any], timers: dict[str, float]) -> Callable[..., Any]:
    """``method`` that adds its wall-clock seconds to ``timers[name]`` on every call (an exception included)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            timers[name] = timers.get(name, 0.0) + time.perf_counter() - start

    return wrapper


@contextmanager
def timing_methods(owner: type, methods: Mapping[str, str],
                   timers: dict[str, float] | None = None) -> Iterator[dict[str, float]]:
    """Inside the block, each ``owner.<attribute>`` of ``methods`` (attribute -> timer name) is :func:`timed`;
    yields the timers (seconds by name, 0.0 for one never called), and restores the original methods on exit."""
    timers = defaultdict(float) if timers is None else timers
    saved = {attribute: owner.__dict__.get(attribute, _ABSENT) for attribute in methods}
    try:
        for attribute, name in methods.items():
            setattr(owner, attribute, timed(name, getattr(owner, attribute), timers))
        yield timers
    finally:
        for attribute, original in saved.items():
            if original is _ABSENT:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


@contextmanager
def timing_grpo(timers: dict[str, float] | None = None) -> Iterator[dict[str, float]]:
    """Time every GRPO step run inside the block: yields ``{"generation", "scoring", "step"}`` seconds, summed over
    the steps (subclasses such as ``SharedPromptGRPOTrainer`` included: the methods are wrapped on ``GRPOTrainer``)."""
    with timing_methods(GRPOTrainer, GRPO_TIMERS, timers) as grpo_timers:
        yield grpo_timers


def adapters_and_pairs(model_name: str, config: SwirlConfig, work: Path, warm: Path | None,
                       dataset: Path | None, pairs_needed: int) -> tuple[dict[str, Path], Any]:
    """The fwm/idm adapters (``warm``'s, or fresh ones) and the (state, next_state, action) rows to train on (with
    their images when the states are shown as images)."""
    if warm is not None:
        adapters = {role: warm / role for role in ("fwm", "idm")}
    else:
        base = load_base_model(model_name, device="cpu")
        lora = lora_config(target_modules=lora_target_modules(base))
        model = with_adapters(base, {"fwm": lora, "idm": lora})
        adapters = {role: save_adapter(model, role, work / "start" / role) for role in ("fwm", "idm")}
    if dataset is not None:
        rows = convert_state_texts(load_dataset_dict(dataset), config.state_text)["test"]  # labelled: true actions
    else:
        rows = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=12, max_steps=12, policy="expert",
                                      epsilon=0.3, test_episodes=0, labelled_fraction=1.0, state_text=config.state_text,
                                      images=config.state_view.has_images, seed=0, progress=False)["labelled"]
    rows = rows.shuffle(seed=0).select(range(min(pairs_needed, rows.num_rows)))
    images = ["image", "next_image"] if config.state_view.has_images else []
    return adapters, rows.select_columns(["state", "next_state", "action", *images])


def measure(model_name: str, steps: int, work: Path, state_modality: str = "text", prompts_per_step: int = 2,
            generations: int = 4, warm: Path | None = None, dataset: Path | None = None,
            shared_prompt: bool = True) -> list[dict]:
    """Time ``steps`` GRPO steps of each phase at ``prompts_per_step`` prompts x ``generations`` samples (states
    shown as ``state_modality``: image needs a VLM, as benchmarks/vlm_step.py passes); one result row per phase."""
    text_only = state_modality == "text"
    config = SwirlConfig(model=model_name, phase_steps=steps, num_generations=generations,
                         prompts_per_step=prompts_per_step, save_steps=1000, max_state_tokens=48 if text_only else 110,
                         max_action_tokens=6, state_text="objects" if text_only else "grid",
                         state_format="diff" if text_only else "full", learning_rate=2e-4,
                         state_modality=state_modality, shared_prompt=shared_prompt)
    view = config.state_view
    tokenizer = load_tokenizer(model_name)
    adapters, pairs = adapters_and_pairs(model_name, config, work, warm, dataset, steps * prompts_per_step)

    def phase1_example(row: dict) -> dict:  # the true action stands in for the IDM's annotation
        example = {"prompt": trl_prompt(tokenizer, "fwm", view, state=row["state"], action=row["latent_action"])}
        return example | ({"images": images_for_row("fwm", row, view)} if view.has_images else {})

    phase1 = pairs.rename_column("action", "latent_action").map(phase1_example)
    phase2 = phase2_dataset(tokenizer, pairs.remove_columns("action"), view)
    results = []
    for phase, data in ((1, phase1), (2, phase2)):
        with timing_grpo() as timers:
            summary = run_grpo_phase(phase, config, tokenizer, adapters, data,
                                     work / f"{model_name}-p{prompts_per_step}-{shared_prompt}" / f"phase{phase}")
        step = timers["step"] / steps
        generation, scoring = timers["generation"] / steps, timers["scoring"] / steps
        pairs_trained = summary["distinct_pairs_trained"]
        results.append({"model": model_name, "state_modality": state_modality, "warm_start": warm is not None,
                        "phase": phase,
                        "prompts_per_step": prompts_per_step, "generations": generations,
                        "shared_prompt": shared_prompt,
                        "completions_per_step": prompts_per_step * generations, "step_s": step,
                        "generation_s": generation, "scoring_s": scoring, "update_s": step - generation - scoring,
                        "scoring_share": scoring / step, "pairs_trained": pairs_trained,
                        "seconds_per_pair": timers["step"] / max(1, pairs_trained),
                        "pairs_per_minute": 60 * pairs_trained / timers["step"],
                        "scored_share": summary["scored_share"]})
    return results
