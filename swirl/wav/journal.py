"""WAV's journal of executed labels: one JSON line per execution, forced to disk before the next one, so a run killed
at any point loses no executed label and executes none twice."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from swirl.errors import SwirlError
from swirl.paths import write_text_atomic
from swirl.wav.candidates import Candidate

JOURNAL = "labels.jsonl"  # a method's journal, in its run folder


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Executed labels in order. A torn last line (killed mid-write) is dropped: that label was never
    acknowledged, so it is executed again; nothing acknowledged is ever lost."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise SwirlError(f"{path}: line {number} is corrupt but later labels exist; repair or remove it "
                                 f"(the labels after it were executed)") from None
    return rows


def append_journal(path: Path, row: dict[str, Any]) -> None:
    """Append one executed label and force it to disk before the next execution."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        file.write(json.dumps(row) + "\n")
        file.flush()
        os.fsync(file.fileno())


def truncate_torn_tail(path: Path) -> None:
    """Drop a partial last line so the next append starts on a fresh line."""
    if path.exists():
        text = path.read_text()
        if text and not text.endswith("\n"):
            write_text_atomic(path, text[: text.rfind("\n") + 1])


def execute_selected(selected: list[Candidate], round_index: int, journal: Path,
                     execute: Callable[[Candidate], dict[str, Any]]) -> list[dict[str, Any]]:
    """Execute every selected candidate the journal does not hold yet, journaling each one at once."""
    truncate_torn_tail(journal)
    done = {row["key"] for row in read_journal(journal)}
    for candidate in selected:
        if candidate.key not in done:
            append_journal(journal, {**execute(candidate), "key": candidate.key, "round": round_index})
    return [row for row in read_journal(journal) if row["round"] <= round_index]


def acquired_labels(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """What a WAV run's methods labelled, from their journals (``seed_<s>/<method>/labels.jsonl``): one row per
    seed, method and round with the labels' count, how many changed the state, and their counts per action and per
    env. Where the test metrics say whether labels paid off, this says what they were (a score that picks only
    turns, or only a noisy room, shows here first)."""
    rows = []
    for journal in sorted(Path(run_dir).glob(f"seed_*/*/{JOURNAL}")):
        seed, method = int(journal.parent.parent.name.removeprefix("seed_")), journal.parent.name
        by_round: dict[int, list[dict[str, Any]]] = {}
        for label in read_journal(journal):
            by_round.setdefault(label["round"], []).append(label)
        for round_index, labels in sorted(by_round.items()):
            rows.append({"seed": seed, "method": method, "round": round_index, "labels": len(labels),
                         "changed": sum(label["next_state"] != label["state"] for label in labels),
                         "actions": dict(Counter(label["action"] for label in labels)),
                         "envs": dict(Counter(label["env_id"] for label in labels))})
    return rows
