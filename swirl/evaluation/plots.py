"""PNG plots (matplotlib, no display needed): metrics per stage of a run, accuracy per horizon, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only: runs on machines without a display)."""
    # lazy: matplotlib only when a plot is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_stages(lines: Sequence[dict[str, Any]], keys: Sequence[str], out: str | Path, title: str = "") -> Path:
    """One line per metric across the stages of a run (``metrics.jsonl`` lines)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    stages = [line["stage"] for line in lines]
    for key in keys:
        axis.plot(stages, [float("nan") if line.get(key) is None else line[key] for line in lines], marker="o", label=key)
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("rate")
    axis.set_title(title or "metrics per stage")
    axis.legend(fontsize=8)
    axis.tick_params(axis="x", labelrotation=20)
    return save_figure(figure, out)


def plot_horizon(steps: Sequence[dict[str, float]], out: str | Path, title: str = "") -> Path:
    """Exact match and field accuracy per rollout horizon."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    horizons = [step["horizon"] for step in steps]
    for key in ("exact_match", "field_accuracy"):
        axis.plot(horizons, [step[key] for step in steps], marker="o", label=key)
    axis.set_xlabel("rollout horizon (steps)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title or "open-loop FWM rollouts")
    axis.legend(fontsize=8)
    return save_figure(figure, out)


def plot_confusion(confusion: dict[str, dict[str, int]], out: str | Path, title: str = "") -> Path:
    """The IDM's confusion matrix (rows: true action, columns: predicted)."""
    plt = pyplot()
    rows = [action for action, counts in confusion.items() if sum(counts.values())] or list(confusion)
    columns = list(next(iter(confusion.values())))
    matrix = [[confusion[row][column] for column in columns] for row in rows]
    figure, axis = plt.subplots(figsize=(6, 4.5))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title or "IDM confusion matrix")
    figure.colorbar(image, ax=axis)
    return save_figure(figure, out)


def save_figure(figure: Any, out: str | Path) -> Path:
    """Write ``figure`` to ``out`` (folders made as needed), close it, return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    pyplot().close(figure)
    return out


def plot_curves(curves: dict[str, dict[str, list[float]]], keys: Sequence[str], out: str | Path, title: str = "") -> Path:
    """One panel per metric: a line per method of the mean against the number of labels, +- std as error bars.

    ``curves[method]`` holds ``labels`` and, per key, ``<key>_mean`` and ``<key>_std`` lists.
    """
    plt = pyplot()
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for method, curve in curves.items():
            mean, std = curve[f"{key}_mean"], curve[f"{key}_std"]
            axis.errorbar(curve["labels"], mean, yerr=std, marker="o", capsize=3, label=method)
        axis.set_xlabel("action labels")
        axis.set_ylabel(key)
        axis.legend(fontsize=8)
    figure.suptitle(title or "test metrics vs labels")
    return save_figure(figure, out)
