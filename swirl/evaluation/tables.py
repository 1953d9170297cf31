"""Evaluation lines as tables: the baselines' line, markdown rendering (each domain's headline metrics are its own).

The loop's per-stage table, ``swirl eval``'s ``eval.md``, the model card and ``swirl report`` all print through
:func:`markdown_table`, so every table of a run reads the same.
"""

from __future__ import annotations

from typing import Any

from swirl.envs.domain import DEFAULT_DOMAIN, get_domain

HEADLINE = get_domain(DEFAULT_DOMAIN).headline_metrics  # each domain's are on its record (swirl.envs.domain)


def baseline_line(line: dict[str, Any]) -> dict[str, Any]:
    """The baselines of an evaluation line, as a line of the same table: the FWM copies its input (s' = s: 0% of
    the changed fields right) and the IDM always gives the rows' most frequent action (the best constant answer)."""
    return {"stage": "baseline: copy s, best constant action",
            "fwm_exact_match": line.get("fwm_copy_exact_match"), "fwm_changed_accuracy": 0.0,
            "fwm_field_accuracy": line.get("fwm_copy_field_accuracy"), "fwm_parse_rate": 1.0,
            "idm_accuracy": line.get("idm_constant_accuracy"),
            "idm_equivalent_accuracy": line.get("idm_constant_equivalent_accuracy")}


def format_metric(name: str, value: float | None) -> str:
    """Rates and accuracies as percentages; MSEs and NLLs as numbers; None as a dash."""
    if value is None:
        return "—"
    return f"{value:.4g}" if "mse" in name or "nll" in name else f"{value:.1%}"


def markdown_table(lines: list[dict[str, Any]], columns: tuple[str, ...] = HEADLINE) -> str:
    """One row per evaluation line (e.g. per stage of a run), the given metric columns (a dash where a line lacks
    one, e.g. a run evaluated before the metric existed)."""
    header = "| stage | " + " | ".join(columns) + " |"
    rows = ["| " + str(line.get("stage", "")) + " | " + " | ".join(format_metric(c, line.get(c)) for c in columns)
            + " |" for line in lines]
    return "\n".join([header, "|" + "---|" * (len(columns) + 1), *rows])
