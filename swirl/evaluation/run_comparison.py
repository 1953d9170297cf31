"""Compare runs: the final evaluation of each run side by side (e.g. SFT-only vs SWIRL vs WAV + SWIRL).

    swirl report --run sft-only=runs/a --run swirl=runs/b --out reports/compare

Reads each run's ``metrics.jsonl`` (the last line is its final stage), writes ``report.json``,
``report.md`` and ``report.png`` (grouped bars of the headline metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from swirl.evaluation.plots import pyplot, save_figure
from swirl.evaluation.tables import HEADLINE, markdown_table
from swirl.errors import SwirlError
from swirl.paths import write_text_atomic


def final_line(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise SwirlError(f"no metrics.jsonl in {run_dir}: is it the output_dir of a SWIRL run?")
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise SwirlError(f"{path} is empty: the run has not finished a stage yet")
    return lines[-1]


def compare(runs: dict[str, str | Path], out: str | Path, keys: Sequence[str] = HEADLINE) -> dict:
    rows = {name: final_line(run_dir) for name, run_dir in runs.items()}
    out = Path(out)
    table = markdown_table([{**line, "stage": f"{name} ({line['stage']})"} for name, line in rows.items()], tuple(keys))
    table = table.replace("| stage |", "| run (final stage) |", 1)
    write_text_atomic(out / "report.json", json.dumps(rows, indent=2) + "\n")
    write_text_atomic(out / "report.md", table + "\n")
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(rows))
    for index, (name, line) in enumerate(rows.items()):
        heights = [float("nan") if line.get(key) is None else line[key] for key in keys]  # older runs lack new keys
        axis.bar([k + index * width for k in range(len(keys))], heights, width, label=name)
    axis.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], list(keys), rotation=20, fontsize=8)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    axis.set_title("final evaluation per run")
    save_figure(figure, out / "report.png")
    print(table)
    return rows


def plot_arms(rows: Sequence[dict], keys: Sequence[str], path: str | Path, title: str = "") -> None:
    """Grouped bars, one group per metric and one bar per row (an arm), with ``<key>_std`` error bars (e.g. the
    spread over seeds)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(rows))
    for index, row in enumerate(rows):
        axis.bar([k + index * width for k in range(len(keys))], [row[key] or 0.0 for key in keys], width,
                 yerr=[row.get(key + "_std") or 0.0 for key in keys], capsize=3,
                 label=f"{row['arm']} ({row['stage']})")
    axis.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], list(keys), rotation=20, fontsize=8)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    axis.set_title(title, fontsize=9)
    save_figure(figure, Path(path))
