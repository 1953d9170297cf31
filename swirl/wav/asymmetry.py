"""WAV's forward-inverse asymmetry (the paper's Proposition 3.2) measured with the package's structured models.

Why: WAV verifies a forward world model with an inverse model because the inverse model, reading a few
action-relevant features, stays accurate where the forward model does not. The paper's linear-Gaussian analysis
factors the forward/inverse error ratio into three terms, and its MiniGrid figures show the gap growing as
labelled samples get scarce, as objects in the room grow from 6 to 14 and as noisy floor tiles are added. This
module measures that claim on our own rooms and models, so WAV's premise is checked here rather than assumed.

The sweep. For each room of a factor (:func:`swirl.envs.wav_tasks.asymmetry_room`: 6-14 objects without noise,
and the 6-object room with noise levels 0-4), each training size (labelled transitions) and each seed:

* data: random play in the room (its "expert", which walks to random objects and picks up, toggles or switches
  them, with 30% random actions, as the WAV protocol collects), built once per room with a fixed data seed. The
  training rows of a (size, seed) cell are the first ``size`` rows of the room's labelled transitions shuffled by
  the seed, so a seed's smaller sets are inside its larger ones;
* test: a fixed held-out set per room, from episodes of their own seeds: only *identifiable* transitions (exactly
  one action reproduces s', and s' != s; :mod:`swirl.envs.identifiability`), at most ``test_rows_per_action``
  rows per action (``switch`` is rare in random play and keeps fewer);
* models: the structured forward model (:func:`swirl.wav.structured.train_structured_model`) and the sparse
  inverse model (:func:`swirl.wav.sparse_idm.train_sparse_idm`, motion features on, L1 0.1), each trained for a
  fixed number of optimiser steps on the same rows (fixed compute per cell, as in the WAV protocol);
* metrics (:mod:`swirl.evaluation.metrics`): the forward model's exact match and changed-cell accuracy, the
  inverse model's accuracy and equivalent accuracy (an answer counts when stepping it from s reproduces s'; on
  identifiable rows the two coincide, the equivalent one is the definition WAV's verifier needs).

Errors and their ratio. ``forward_error = 1 - changed-cell accuracy`` (copying s scores 0 there, so it measures
what the model must predict; noisy tiles that changed colour count among the changed cells: stochasticity the
forward model cannot predict is the point of the noise factor) and ``inverse_error = 1 - equivalent accuracy``.
``error_ratio = (forward_error + 1/n) / (inverse_error + 1/n)`` with ``n`` test rows: both get one test row's
worth of error added, so an inverse model without a mistake gives a finite ratio (at most ``n * forward_error +
1``) instead of a division by zero. Each cell's ratio is computed on its own seed; tables and plots show the mean
± standard deviation over seeds.

Two backends (``backend``): ``structured`` (the models above) and ``llm`` (:mod:`swirl.wav.asymmetry_llm`: the
``fwm`` and ``idm`` LoRA adapters of a language model, which read the whole state text).

Results go to ``asymmetry.json`` (settings, per-room data facts, one record per cell, the summary),
``asymmetry.md`` and ``asymmetry_<factor>.png`` under the output folder (``asymmetry_llm.*`` for ``llm``). Cells already in the JSON are skipped,
so an interrupted sweep resumes, and a sweep can be widened (more sizes, seeds or levels) without redoing cells;
a JSON made with other training or data settings is refused rather than mixed.

    python benchmarks/asymmetry.py                 # the whole sweep, or `make asymmetry`
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from swirl.builders.minigrid_dataset import build_minigrid_dataset
from swirl.builders.splits import balanced_indices
from swirl.config_fields import reject_invalid
from swirl.envs.identifiability import equivalent_actions_for_rows
from swirl.envs.minigrid_env import action_texts, make_env
from swirl.envs.wav_tasks import ASYMMETRY_NOISE_LEVELS, ASYMMETRY_OBJECTS, TILES_PER_NOISE_LEVEL, asymmetry_room
from swirl.errors import SwirlError
from swirl.evaluation.acquisition_summary import mean_std
from swirl.evaluation.metrics import equivalent_accuracy, fwm_metrics, idm_metrics
from swirl.evaluation.plots import pyplot, save_figure
from swirl.paths import write_json_atomic, write_text_atomic
from swirl.progress import bar
from swirl.wav.asymmetry_llm import LLM_CELL_SETTINGS, LLMCellFields, llm_predictions
from swirl.wav.sparse_idm import train_sparse_idm, try_predict
from swirl.wav.structured import train_structured_model

FACTORS = ("objects", "noise", "samples")
BACKENDS = ("structured", "llm")
BASE_OBJECTS = ASYMMETRY_OBJECTS[0]  # the noise rooms' object count, and the samples factor's room
METRICS = ("fwm_exact_match", "fwm_changed_accuracy", "idm_accuracy", "idm_equivalent_accuracy", "forward_error",
           "inverse_error", "error_ratio", "seconds", "cpu_seconds")
# what every cell's numbers depend on: a results file made with other values is refused, never mixed
DATA_SETTINGS = ("train_episodes", "test_episodes", "test_rows_per_action", "max_steps", "epsilon", "data_seed")
CELL_SETTINGS = {"structured": ("forward_steps", "inverse_steps", "batch_size", "learning_rate") + DATA_SETTINGS,
                 "llm": LLM_CELL_SETTINGS + DATA_SETTINGS}


@dataclass
class AsymmetrySettings(LLMCellFields):
    """The sweep's grid (which cells) and how each cell is made (:data:`CELL_SETTINGS` of its backend)."""

    backend: str = field(default="structured", metadata={
        "help": "the models: structured (the structured forward model and the sparse inverse model) or llm (fwm and "
                "idm LoRA adapters of `model`, objects text, diffs; the llm_* fields). Each backend has its own "
                "results: asymmetry.json, asymmetry_llm.json."})

    objects: list[int] = field(default_factory=lambda: list(ASYMMETRY_OBJECTS), metadata={
        "help": "objects factor: object counts of the 8x8 random-play rooms (no noise)."})
    noise_levels: list[int] = field(default_factory=lambda: list(ASYMMETRY_NOISE_LEVELS), metadata={
        "help": "noise factor: levels of the 6-object room, level k = 2k noisy floor tiles (0: none)."})
    sizes: list[int] = field(default_factory=lambda: [100, 200, 400, 800, 1600], metadata={
        "help": "samples factor: labelled training transitions per cell."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={
        "help": "training seeds (each picks its own training rows and initialisation)."})
    # how each structured cell is made (CELL_SETTINGS: a results file made with other values is refused)
    forward_steps: int = field(default=400, metadata={"help": "optimiser steps of the structured forward model "
                                                              "(near converged at 1600 labels)."})
    inverse_steps: int = field(default=300, metadata={"help": "optimiser steps of the sparse inverse model."})
    batch_size: int = field(default=128, metadata={"help": "minibatch size of both models."})
    learning_rate: float = field(default=3e-3, metadata={"help": "AdamW learning rate of both models (their "
                                                                 "defaults)."})
    train_episodes: int = field(default=80, metadata={"help": "random-play episodes per room for the training "
                                                              "pool (max_steps transitions each)."})
    test_episodes: int = field(default=100, metadata={"help": "held-out episodes per room from which the "
                                                              "identifiable test set is drawn."})
    test_rows_per_action: int = field(default=100, metadata={"help": "identifiable test rows kept per action at "
                                                                     "most."})
    max_steps: int = field(default=30, metadata={"help": "steps per episode (the rooms never end earlier)."})
    epsilon: float = field(default=0.3, metadata={"help": "share of uniformly random actions in the rooms' "
                                                          "random-play policy."})
    data_seed: int = field(default=7, metadata={"help": "seed of every room's data (training pool and test set), "
                                                        "the same for every cell."})
    # where the results go and how the sweep runs (no effect on the numbers)
    output_dir: str = field(default="benchmarks/results", metadata={"help": "folder of asymmetry.json, "
                                                                            "asymmetry.md and the plots."})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (the models are tiny: a second thread "
                                                      "buys little, and on a shared CPU it slows every cell down)."})
    progress: bool = field(default=True, metadata={"help": "show the progress bar (--no_progress hides it)."})

    def __post_init__(self) -> None:
        self.objects = sorted(set(self.objects))  # each level once, in order (a repeated one would run twice)
        self.noise_levels = sorted(set(self.noise_levels))
        self.sizes = sorted(set(self.sizes))
        self.seeds = list(dict.fromkeys(self.seeds))
        reject_invalid(self, [
            (bool(self.objects) and set(self.objects) <= set(ASYMMETRY_OBJECTS), "objects",
             f"must be some of the registered rooms' {', '.join(map(str, ASYMMETRY_OBJECTS))}"),
            (bool(self.noise_levels) and set(self.noise_levels) <= set(ASYMMETRY_NOISE_LEVELS), "noise_levels",
             f"must be some of {', '.join(map(str, ASYMMETRY_NOISE_LEVELS))}"),
            (bool(self.sizes) and min(self.sizes) >= 1, "sizes", "must list training sizes >= 1"),
            (max(self.sizes, default=0) <= self.train_episodes * self.max_steps, "sizes",
             f"must fit the training pool of train_episodes x max_steps = {self.train_episodes * self.max_steps}"),
            (bool(self.seeds), "seeds", "must list at least one seed"),
            (min(self.forward_steps, self.inverse_steps, self.batch_size) >= 1, "forward_steps",
             "and inverse_steps, batch_size must be >= 1"),
            (self.test_episodes >= 1 and self.test_rows_per_action >= 1, "test_episodes",
             "and test_rows_per_action must be >= 1"),
            (0.0 <= self.epsilon <= 1.0, "epsilon", "must be in [0, 1]"),
            (self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}"),
            (min(self.llm_steps, self.llm_inverse_steps, self.llm_batch_size, self.max_state_tokens) >= 1,
             "llm_steps", "and llm_inverse_steps, llm_batch_size, max_state_tokens must be >= 1"),
        ])
        self.check_lora_layers()

    def cell_settings(self) -> dict[str, Any]:
        return {"backend": self.backend} | {name: getattr(self, name) for name in CELL_SETTINGS[self.backend]}

    @property
    def results_stem(self) -> str:
        """``asymmetry`` (structured) or ``asymmetry_llm``: the stem of the results, table and plot files."""
        return "asymmetry" if self.backend == "structured" else f"asymmetry_{self.backend}"


# ------------------------------------------------------------------------------------------ the rooms
def factor_rooms(settings: AsymmetrySettings) -> dict[str, list[tuple[int, str]]]:
    """Each factor's (level, room id) pairs: objects and noise levels are rooms; the samples factor's levels are the
    training sizes, in the base room (6 objects, no noise), where the other two factors are at their lowest."""
    base = asymmetry_room(BASE_OBJECTS)
    return {"objects": [(n, asymmetry_room(n)) for n in settings.objects],
            "noise": [(k, asymmetry_room(BASE_OBJECTS, k)) for k in settings.noise_levels],
            "samples": [(size, base) for size in settings.sizes]}


def rooms_of(settings: AsymmetrySettings) -> list[str]:
    """Every room the sweep trains in, once (the base room is a level of all three factors)."""
    return list(dict.fromkeys(room for levels in factor_rooms(settings).values() for _, room in levels))


@dataclass
class RoomData:
    """A room's training pool, its fixed identifiable test set and the test rows' equivalent actions."""

    env_id: str
    train: Any  # datasets.Dataset of labelled transitions
    test: Any
    equivalent: list[list[int]]
    facts: dict[str, Any]


def room_data(env_id: str, settings: AsymmetrySettings) -> RoomData:
    """Random play in ``env_id`` (see the module docstring); deterministic given the settings."""
    start, cpu_start = time.perf_counter(), time.process_time()
    data = build_minigrid_dataset([env_id], episodes=settings.train_episodes, max_steps=settings.max_steps,
                                  policy="expert", epsilon=settings.epsilon, labelled_fraction=1.0,
                                  test_episodes=settings.test_episodes, seed=settings.data_seed,
                                  test_split="identifiable", balance_test=False, state_text="objects", progress=False)
    test = data["test"]
    test = test.select(balanced_indices(test["action_id"], np.random.default_rng(settings.data_seed),
                                        settings.test_rows_per_action))
    if test.num_rows == 0:
        raise SwirlError(f"{env_id}: no identifiable test transition in {settings.test_episodes} episodes; "
                         f"raise test_episodes")
    equivalent = equivalent_actions_for_rows(test)
    env = make_env(env_id)
    core = env.unwrapped
    facts = {"objects": core.num_objects, "noisy_tiles": core.num_noisy_tiles, "size": core.width,
             "train_rows": data["labelled"].num_rows, "test_rows": test.num_rows,
             "test_rows_per_action": dict(sorted(Counter(test["action"]).items())),
             "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}
    env.close()
    return RoomData(env_id, data["labelled"], test, equivalent, facts)


# ------------------------------------------------------------------------------------------ one cell
def error_ratio(forward_error: float, inverse_error: float, test_rows: int) -> float:
    """``(forward_error + 1/n) / (inverse_error + 1/n)``: one test row's worth added to both errors keeps the ratio
    finite when the inverse model makes no mistake.

    >>> error_ratio(0.5, 0.25, 4), error_ratio(0.3, 0.0, 10)
    (1.5, 4.0)
    """
    if test_rows < 1:
        raise ValueError("the error ratio needs at least one test row")
    floor = 1.0 / test_rows
    return (forward_error + floor) / (inverse_error + floor)


def run_cell(room: RoomData, labels: int, seed: int, settings: AsymmetrySettings,
             scratch_dir: str | Path | None = None) -> dict[str, Any]:
    """Train both models of ``settings.backend`` on ``labels`` of the room's transitions (``seed``'s subset) and
    score them on its test set (an llm cell keeps its adapters in a folder under ``scratch_dir`` until then)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    if labels > room.train.num_rows:
        raise SwirlError(f"{room.env_id}: {labels} labels asked, its training pool has {room.train.num_rows} "
                         f"transitions; raise train_episodes")
    train = room.train.shuffle(seed=seed, keep_in_memory=True).select(range(labels))
    test = room.test
    if settings.backend == "llm":
        predicted_states, predicted_actions, facts = llm_predictions(train, test, seed, settings, scratch_dir)
    else:
        predicted_states, predicted_actions, facts = structured_predictions(train, test, room.env_id, seed, settings)
    forward_metrics = fwm_metrics(test["state"], predicted_states, test["next_state"], text_metrics=False)
    actions = list(action_texts(room.env_id))
    record = {
        "env_id": room.env_id, "labels": labels, "seed": seed, "test_rows": test.num_rows,
        "fwm_exact_match": forward_metrics["exact_match"],
        "fwm_changed_accuracy": forward_metrics["changed_accuracy"],
        "idm_accuracy": idm_metrics(predicted_actions, test["action"], actions)["accuracy"],
        "idm_equivalent_accuracy": equivalent_accuracy(predicted_actions, room.equivalent, test["env_id"]),
    } | facts
    record["forward_error"] = 1.0 - record["fwm_changed_accuracy"]
    record["inverse_error"] = 1.0 - record["idm_equivalent_accuracy"]
    record["error_ratio"] = error_ratio(record["forward_error"], record["inverse_error"], test.num_rows)
    record["seconds"] = time.perf_counter() - start
    record["cpu_seconds"] = time.process_time() - cpu_start  # the wall time alone, near enough, with one thread
    return record


def structured_predictions(train: Any, test: Any, env_id: str, seed: int,
                           settings: AsymmetrySettings) -> tuple[list[str], list[str | None], dict[str, Any]]:
    """The structured forward model's next states and the sparse inverse model's actions (``None``: a state that
    did not parse) for ``test``, both trained on ``train``; and how many features the inverse model kept."""
    actions = list(action_texts(env_id))
    forward = train_structured_model(train["state"], train["next_state"], train["action"], code_names=actions,
                                     steps=settings.forward_steps, batch_size=settings.batch_size,
                                     learning_rate=settings.learning_rate, seed=seed)
    inverse = train_sparse_idm(train["state"], train["action"], train["next_state"], actions,
                               steps=settings.inverse_steps, batch_size=settings.batch_size,
                               learning_rate=settings.learning_rate, seed=seed)
    return (forward.predict(test["state"], test["action"]), try_predict(inverse, test["state"], test["next_state"]),
            {"idm_kept_features": len(inverse.kept_features())})


# ------------------------------------------------------------------------------------------ the sweep
def cell_key(record: dict[str, Any]) -> tuple[str, int, int]:
    return record["env_id"], int(record["labels"]), int(record["seed"])


def load_results(path: Path, settings: AsymmetrySettings) -> dict[str, Any]:
    """The results file's content, or an empty one; a file made with other cell settings is refused."""
    if not path.exists():
        return {"settings": settings.cell_settings(), "rooms": {}, "cells": []}
    results = json.loads(path.read_text())
    # a file from before the llm backend existed holds structured cells
    recorded, wanted = {"backend": "structured"} | results.get("settings", {}), settings.cell_settings()
    changed = sorted(name for name in wanted if recorded.get(name) != wanted[name])
    if changed:
        raise SwirlError(f"{path} was made with other settings ({', '.join(changed)} differ); use another output "
                         f"folder or the original settings")
    return results


def run_sweep(settings: AsymmetrySettings, output_dir: str | Path = "benchmarks/results", *,
              progress: bool = True, threads: int = 1) -> dict[str, Any]:
    """Run every cell of ``settings`` not yet in ``<output_dir>/<results_stem>.json``; after each cell, write the JSON,
    its summary, the markdown table and one plot per factor. Returns the results (the JSON's content).

    ``threads``: torch's CPU threads while the sweep runs (restored after). The models are so small that a second
    thread buys little, and on a CPU shared with another job two threads ran a cell 5-7x slower than one."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_sweep(settings, Path(output_dir), progress)
    finally:
        torch.set_num_threads(previous_threads)


def _run_sweep(settings: AsymmetrySettings, output_dir: Path, progress: bool) -> dict[str, Any]:
    path = output_dir / f"{settings.results_stem}.json"
    results = load_results(path, settings) | {"machine": platform.processor() or platform.machine()}
    done = {cell_key(record) for record in results["cells"]}
    todo = [(room, labels, seed) for room in rooms_of(settings) for labels in settings.sizes
            for seed in settings.seeds if (room, labels, seed) not in done]
    cells_bar = bar(desc="asymmetry cells", total=len(todo), unit="cell", leave=True, disable=not progress)
    room: RoomData | None = None
    for env_id, labels, seed in todo:
        if room is None or room.env_id != env_id:
            cells_bar.set_postfix_str(f"{env_id}: building its data")
            room = room_data(env_id, settings)
            results["rooms"][env_id] = room.facts
        cells_bar.set_postfix_str(f"{env_id} {labels} labels seed {seed}")
        results["cells"].append(run_cell(room, labels, seed, settings, output_dir))
        write_outputs(results, settings, output_dir)  # an interrupted sweep leaves its table and plots current
        cells_bar.update(1)
    cells_bar.close()
    if not todo:  # nothing ran: still refresh the summary, table and plots from the JSON's cells
        write_outputs(results, settings, output_dir)
    return results


def write_outputs(results: dict[str, Any], settings: AsymmetrySettings, output_dir: Path) -> None:
    """The results JSON with a fresh summary of all its cells, the markdown table and the plots."""
    results["summary"] = summarise(results["cells"], covering_settings(results["cells"], settings))
    write_json_atomic(output_dir / f"{settings.results_stem}.json", results)
    write_text_atomic(output_dir / f"{settings.results_stem}.md", summary_table(results["summary"]) + "\n")
    plot_factors(results["summary"], output_dir, settings.results_stem, settings.backend)


# ------------------------------------------------------------------------------------------ summary
def covering_settings(cells: Sequence[dict[str, Any]], settings: AsymmetrySettings) -> AsymmetrySettings:
    """``settings`` with its grid (objects, noise levels, sizes, seeds) widened to every cell the results hold: a
    command for a few cells (``--objects 14 --seeds 2``) adds them to the JSON, and its table and plots must still
    summarise the cells earlier commands ran, not only the ones it names."""
    objects = {asymmetry_room(n): n for n in ASYMMETRY_OBJECTS}
    noise = {asymmetry_room(BASE_OBJECTS, k): k for k in ASYMMETRY_NOISE_LEVELS}
    rooms = {cell["env_id"] for cell in cells}
    return dataclasses.replace(
        settings,
        objects=sorted({*settings.objects, *(objects[room] for room in rooms if room in objects)}),
        noise_levels=sorted({*settings.noise_levels, *(noise[room] for room in rooms if room in noise)}),
        sizes=sorted({*settings.sizes, *(int(cell["labels"]) for cell in cells)}),
        seeds=sorted({*settings.seeds, *(int(cell["seed"]) for cell in cells)}))


def summarise(cells: Sequence[dict[str, Any]], settings: AsymmetrySettings) -> dict[str, list[dict[str, Any]]]:
    """Per factor, one row per (level, training size) of the grid: mean and std over the seeds' cells."""
    by_key = {cell_key(record): record for record in cells}
    summary: dict[str, list[dict[str, Any]]] = {}
    for factor, levels in factor_rooms(settings).items():
        rows = []
        sizes = [None] if factor == "samples" else settings.sizes
        for level, room in levels:
            for size in sizes:
                labels = level if factor == "samples" else size
                group = [by_key[(room, labels, seed)] for seed in settings.seeds if (room, labels, seed) in by_key]
                row: dict[str, Any] = {"factor": factor, "level": level, "env_id": room, "labels": labels,
                                       "seeds": len(group)}
                for metric in METRICS:
                    row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std([record[metric] for record in group])
                rows.append(row)
        summary[factor] = rows
    return summary


LEVEL_NAMES = {"objects": "objects in the room", "samples": "labelled training transitions",
               "noise": f"noise level ({TILES_PER_NOISE_LEVEL} noisy floor tiles each)"}
TABLE_COLUMNS = (("fwm_exact_match", "FWM exact"), ("fwm_changed_accuracy", "FWM changed-cell"),
                 ("idm_accuracy", "IDM accuracy"), ("idm_equivalent_accuracy", "IDM equivalent"),
                 ("forward_error", "forward error"), ("inverse_error", "inverse error"),
                 ("error_ratio", "error ratio"), ("cpu_seconds", "CPU s / cell"))


def summary_table(summary: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: one row per factor, level and training size; every number the mean ± std over seeds."""
    header = "| factor | level | room | labels | seeds | " + " | ".join(title for _, title in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 5)]
    for factor, rows in summary.items():
        for row in rows:
            cells = [shown(metric, row[f"{metric}_mean"], row[f"{metric}_std"]) for metric, _ in TABLE_COLUMNS]
            lines.append(f"| {factor} | {row['level']} | {row['env_id'].removeprefix('swirl/')} | {row['labels']} | "
                         f"{row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shown(metric: str, mean: float | None, std: float | None) -> str:
    """Accuracies and errors in percent, the ratio and seconds as numbers; a dash for a cell not run."""
    if mean is None or math.isnan(mean):
        return "—"
    if metric == "error_ratio":
        return f"{mean:.2f} ± {std:.2f}"
    if metric.endswith("seconds"):
        return f"{mean:.1f}"
    return f"{mean:.1%} ± {std:.1%}"


# ------------------------------------------------------------------------------------------ plots
def plot_factors(summary: dict[str, list[dict[str, Any]]], output_dir: Path, stem: str = "asymmetry",
                 backend: str = "structured") -> list[Path]:
    """``<stem>_<factor>.png``: the error ratio against the factor's level, as the paper's figure plots it; one
    line per training size (objects, noise) or the base room's one line (samples), error bars the std over seeds.
    Cells no seed has reached yet (an interrupted sweep) are left out of the lines."""
    paths = []
    for factor, rows in summary.items():
        series: dict[str, dict[str, list[float]]] = {}
        for row in rows:
            if not row["seeds"]:
                continue
            name = row["env_id"].removeprefix("swirl/") if factor == "samples" else f"{row['labels']} labels"
            curve = series.setdefault(name, {"x": [], "mean": [], "std": []})
            curve["x"].append(row["level"])
            curve["mean"].append(row["error_ratio_mean"])
            curve["std"].append(row["error_ratio_std"])
        paths.append(plot_error_ratio(series, LEVEL_NAMES[factor], output_dir / f"{stem}_{factor}.png",
                                      f"forward / inverse error ratio: {factor} ({backend} models)",
                                      log_x=factor == "samples"))
    return paths


def plot_error_ratio(series: dict[str, dict[str, list[float]]], xlabel: str, out: Path, title: str,
                     log_x: bool = False) -> Path:
    """One line per series (``x``, ``mean``, ``std``) on a log ratio axis, with the ratio 1 (forward as accurate
    as inverse) dashed. The plots module's :func:`~swirl.evaluation.plots.plot_curves` draws against labels only."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, curve in series.items():
        axis.errorbar(curve["x"], curve["mean"], yerr=curve["std"], marker="o", capsize=3, label=name)
    axis.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set_yscale("log", nonpositive="clip")
    axis.yaxis.set_major_formatter(plt.LogFormatter())  # plain numbers (6, not 6 x 10^0)
    axis.yaxis.set_minor_formatter(plt.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    if log_x:
        axis.set_xscale("log")
    axis.xaxis.set_minor_locator(plt.NullLocator())
    levels = sorted({x for curve in series.values() for x in curve["x"]})
    axis.set_xticks(levels, [f"{x:g}" for x in levels])  # a tick at every level the sweep ran
    axis.set_xlabel(xlabel)
    axis.set_ylabel("forward error / inverse error")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    return save_figure(figure, out)
