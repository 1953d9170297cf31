"""Acquisition results: per method and round, the mean +- std over seeds of the test metrics against the number of
labels, rank correlation with the oracle, and how many labels each method needs to match random's final value (on
the mean curves and on each seed's own).

    swirl wav-report runs/wav-tiny            # reads results.jsonl; writes summary.{md,json}, plots

The lines come from :func:`swirl.wav.acquisition.run_acquisition` (``results.jsonl``): one per method, seed
and round, with ``labels`` and flat ``fwm_*`` / ``idm_*`` metrics.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any, Sequence

from swirl.errors import SwirlError
from swirl.evaluation.plots import plot_curves
from swirl.paths import json_safe, write_text_atomic

COLUMNS = ("fwm_nll", "fwm_changed_accuracy", "fwm_exact_match", "idm_accuracy", "oracle_spearman",
           "oracle_kendall", "oracle_spearman_scored", "oracle_kendall_scored", "selected_oracle_error")
# the test metrics of the "labels to match random's final value" comparison, and whether higher is better
MATCHED = {"fwm_nll": False, "fwm_exact_match": True, "fwm_changed_accuracy": True}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of the values that are numbers (None and NaN left out)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    return fmean(values), pstdev(values)


def curves(lines: Sequence[dict[str, Any]], keys: Sequence[str] = COLUMNS) -> dict[str, dict[str, list[float]]]:
    """Per method: ``round``, ``labels`` (mean over seeds) and ``<key>_mean`` / ``<key>_std`` per round."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        grouped[line["method"]][line["round"]].append(line)
    result = {}
    for method, rounds in grouped.items():
        curve: dict[str, list[float]] = defaultdict(list)
        for round_index in sorted(rounds):
            group = rounds[round_index]
            curve["round"].append(round_index)
            curve["labels"].append(sum(line["labels"] for line in group) / len(group))
            curve["seeds"].append(len(group))
            for key in keys:
                mean, std = mean_std([line.get(key) for line in group])
                curve[f"{key}_mean"].append(mean)
                curve[f"{key}_std"].append(std)
        result[method] = dict(curve)
    return result


def labels_to_match(curve: dict[str, list[float]], reference: dict[str, list[float]], key: str = "fwm_nll",
                    higher_is_better: bool = False) -> float | None:
    """Fewest labels at which ``curve``'s mean ``key`` is at least as good as ``reference``'s final mean;
    ``None`` if it never gets there."""
    target = reference[f"{key}_mean"][-1]
    for labels, value in zip(curve["labels"], curve[f"{key}_mean"]):
        if (value >= target) if higher_is_better else (value <= target):
            return labels
    return None


def labels_to_match_per_seed(lines: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, float | None]]]:
    """Per method (random aside) and seed: :func:`labels_to_match` on that seed's own curves, for each metric of
    ``MATCHED``. A label saving "on each of 3 seeds" is a claim about seeds, which the mean curve can hide (one seed's
    large gain outweighing two losses). A seed without random is left out."""
    result: dict[str, dict[int, dict[str, float | None]]] = defaultdict(dict)
    for seed in sorted({line["seed"] for line in lines}):
        by_method = curves([line for line in lines if line["seed"] == seed], tuple(MATCHED))
        if "random" not in by_method:
            continue
        for method, curve in by_method.items():
            if method != "random":
                result[method][seed] = {key: labels_to_match(curve, by_method["random"], key, higher)
                                        for key, higher in MATCHED.items()}
    return dict(result)


def summary_table(lines: Sequence[dict[str, Any]], keys: Sequence[str] = COLUMNS) -> str:
    """Markdown: one row per method and round, mean +- std over seeds."""
    header = "| method | round | labels | seeds | " + " | ".join(keys) + " |"
    rows = [header, "|" + "---|" * (len(keys) + 4)]
    for method, curve in curves(lines, keys).items():
        for i, round_index in enumerate(curve["round"]):
            cells = [f"{curve[f'{k}_mean'][i]:.3f} ± {curve[f'{k}_std'][i]:.3f}"
                     if not math.isnan(curve[f"{k}_mean"][i]) else "—" for k in keys]
            rows.append(f"| {method} | {round_index} | {curve['labels'][i]:.0f} | {curve['seeds'][i]} | "
                        + " | ".join(cells) + " |")
    return "\n".join(rows)


def labels_cell(labels: float | None, warm_start_labels: float | None) -> str:
    """A table cell for :func:`labels_to_match`'s answer. A match at the warm start's labels is no saving any method
    earned (the warm start is every method's round 0): the cell says so."""
    if labels is None:
        return "never"
    return f"{labels:.0f}" + (" (warm start)" if labels == warm_start_labels else "")


def matched_cells(matched: dict[str, float | None], warm_start_labels: float | None) -> str:
    """One row's cells of a labels-to-match table: :func:`labels_cell` per metric of ``MATCHED``."""
    return " | ".join(labels_cell(labels, warm_start_labels) for labels in matched.values())


def short_env(env_id: str) -> str:
    """``swirl/WAV-RandomPlay-14obj-Noisy-v0`` -> ``RandomPlay-14obj-Noisy``: a column name."""
    return env_id.split("/")[-1].removeprefix("WAV-").removesuffix("-v0")


def labels_table(labels: Sequence[dict[str, Any]]) -> str:
    """Markdown: what each method labelled per round (rows of :func:`swirl.wav.journal.acquired_labels`), mean over
    seeds: how many labels, how many changed the state, and how many were each action and came from each env."""
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in labels:
        grouped[(row["method"], row["round"])].append(row)
    actions = sorted({action for row in labels for action in row["actions"]})
    envs = sorted({env for row in labels for env in row["envs"]})
    header = ["method", "round", "seeds", "labels", "changed the state", *actions, *map(short_env, envs)]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (method, round_index), group in grouped.items():
        counts = [[row["labels"], row["changed"], *(row["actions"].get(a, 0) for a in actions),
                   *(row["envs"].get(e, 0) for e in envs)] for row in group]  # one list per seed
        cells = [f"{fmean(column):.1f}" for column in zip(*counts)]
        table.append(f"| {method} | {round_index} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(table)


def summarise(lines: Sequence[dict[str, Any]], out: str | Path, labels: Sequence[dict[str, Any]] = ()
              ) -> tuple[dict[str, Any], str]:
    """Write summary.md, summary.json and error_vs_labels.png into ``out``; return the summary and summary.md's
    text. ``labels``: what the methods labelled (:func:`swirl.wav.journal.acquired_labels`), a last table."""
    out = Path(out)
    by_method = curves(lines)
    summary: dict[str, Any] = {"curves": by_method}
    table = summary_table(lines)
    if "random" in by_method:
        summary["random_final_labels"] = by_method["random"]["labels"][-1]
        summary["labels_to_match_random_final"] = {
            method: {key: labels_to_match(curve, by_method["random"], key, higher) for key, higher in MATCHED.items()}
            for method, curve in by_method.items() if method != "random"}
        table += f"\n\nLabels each method needs to reach random's final value ({summary['random_final_labels']:.0f} labels):\n\n"
        table += "| method | " + " | ".join(MATCHED) + " |\n|" + "---|" * (len(MATCHED) + 1) + "\n"
        for method, matched in summary["labels_to_match_random_final"].items():
            table += f"| {method} | {matched_cells(matched, by_method[method]['labels'][0])} |\n"
        summary["labels_to_match_random_final_per_seed"] = labels_to_match_per_seed(lines)
        warm_start_labels = {(line["method"], line["seed"]): line["labels"] for line in lines if line["round"] == 0}
        table += "\nThe same on each seed's own curves (its random's final value):\n\n"
        table += "| method | seed | " + " | ".join(MATCHED) + " |\n|" + "---|" * (len(MATCHED) + 2) + "\n"
        for method, seeds in summary["labels_to_match_random_final_per_seed"].items():
            for seed, matched in seeds.items():
                table += f"| {method} | {seed} | {matched_cells(matched, warm_start_labels.get((method, seed)))} |\n"
    if labels:
        summary["acquired_labels"] = list(labels)
        table = table.rstrip("\n") + "\n\nWhat each method labelled (mean over seeds):\n\n" + labels_table(labels)
    write_text_atomic(out / "summary.json", json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")
    table = table.rstrip("\n") + "\n"
    write_text_atomic(out / "summary.md", table)
    plot_curves(by_method, ("fwm_nll", "fwm_exact_match", "fwm_changed_accuracy", "idm_accuracy",
                            "oracle_spearman_scored"), out / "error_vs_labels.png")
    return summary, table


def summarise_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None,
                   labels: Sequence[dict[str, Any]] = ()) -> tuple[dict[str, Any], str]:
    """What ``swirl wav-report`` does: merge the ``results.jsonl`` of WAV run folders, write the summary (under
    ``out``, default the first folder) and return it with its tables (``labels``: as :func:`summarise`). Folders
    that hold the same method, seed and round are refused: their lines would be averaged as two seeds."""
    lines: list[dict[str, Any]] = []
    source: dict[tuple[str, int, int], Path] = {}  # (method, seed, round) -> the file that holds it
    for run_dir in run_dirs:
        path = Path(run_dir) / "results.jsonl"
        if not path.exists():
            raise SwirlError(f"{path} does not exist: run recipes/wav_minigrid.py with output_dir {run_dir} first")
        for line in (json.loads(text) for text in path.read_text().splitlines() if text.strip()):
            key = (line["method"], line["seed"], line["round"])
            if key in source:
                raise SwirlError(f"{source[key]} and {path} both hold {key[0]} seed {key[1]} round {key[2]}: merge "
                                 "folders of different seeds or methods")
            source[key] = path
            lines.append(line)
    return summarise(lines, out or run_dirs[0], labels)
