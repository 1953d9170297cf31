"""The study's statistics over seeds: mean and spread, paired differences between arms with a bootstrap and a t
interval, each arm's share of the headroom the state-only pairs offer, and how many seeds a paired difference of
a given size needs to be seen."""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
from scipy.stats import norm, t

REFERENCES = ("sft", "sft_more", "pseudo")  # the arms every other arm is compared with, seed by seed


def mean_std(values: list[float | None]) -> tuple[float | None, float]:
    """Mean and sample standard deviation of the values that are not None (``(None, 0.0)`` for none)."""
    present = [value for value in values if value is not None]
    if not present:
        return None, 0.0
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else 0.0


def bootstrap_interval(differences: list[float], samples: int, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of the mean of ``differences`` over bootstrap resamples (of the seeds)."""
    values = np.asarray(differences, dtype=float)
    means = np.random.default_rng(seed).choice(values, size=(samples, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def t_interval(differences: list[float]) -> tuple[float, float]:
    """The paired t 95% interval of the mean difference (wider than the bootstrap's with a handful of seeds, where
    the percentile bootstrap covers less than it says)."""
    mean, std = statistics.fmean(differences), statistics.stdev(differences)
    half = t.ppf(0.975, len(differences) - 1) * std / math.sqrt(len(differences))
    return mean - half, mean + half


def seeds_needed(paired_std: float, effect: float, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Seeds a paired two-sided test at level ``alpha`` needs to detect a mean difference of ``effect`` with
    probability ``power`` when the per-seed differences have standard deviation ``paired_std`` (normal
    approximation, plus one seed for the t distribution's heavier tails)."""
    if paired_std <= 0 or effect <= 0:
        return None
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return math.ceil((z * paired_std / effect) ** 2) + 1


def paired_differences(finals: dict[int, dict[str, dict[str, Any]]], arms: tuple[str, ...], samples: int,
                       metric: str = "fwm_changed_accuracy", effect: float = 0.05) -> list[dict[str, Any]]:
    """Each arm's final ``metric`` minus the reference arm's (``sft``, ``sft_more``, ``pseudo``), seed by seed (``finals``: seed ->
    arm -> its final evaluation): the mean difference, its bootstrap and paired t 95% intervals, the relative
    change of the means, the spread of the differences, and the seeds a difference of ``effect`` would need."""
    rows = []
    for reference in REFERENCES:
        for arm in arms:
            pairs = [(found[reference].get(metric), found[arm].get(metric)) for found in finals.values()
                     if arm != reference and arm in found and reference in found]
            pairs = [(base, other) for base, other in pairs if base is not None and other is not None]
            if not pairs:
                continue
            differences = [other - base for base, other in pairs]
            base_mean, arm_mean = statistics.fmean(p[0] for p in pairs), statistics.fmean(p[1] for p in pairs)
            many = len(pairs) > 1
            low, high = bootstrap_interval(differences, samples) if many else (None, None)
            t_low, t_high = t_interval(differences) if many else (None, None)
            spread = statistics.stdev(differences) if many else None
            rows.append({"arm": arm, "reference": reference, "metric": metric, "seeds": len(pairs),
                         "reference_mean": base_mean, "arm_mean": arm_mean,
                         "mean_difference": statistics.fmean(differences), "ci95_low": low, "ci95_high": high,
                         "t95_low": t_low, "t95_high": t_high, "difference_std": spread,
                         "seeds_for_effect": seeds_needed(spread, effect) if spread is not None else None,
                         "relative_change": (arm_mean - base_mean) / base_mean if base_mean else None,
                         "per_seed_difference": differences})
    return rows


def headroom_shares(differences: list[dict[str, Any]], oracle: str = "oracle_pairs") -> dict[str, float | None]:
    """Each arm's mean gain over ``sft`` as a share of ``oracle``'s (what the same state-only pairs give with their
    true actions); None unless there is a headroom to share: the oracle's paired t interval above zero (so never
    from one seed, where a gain of a few tenths of a point would turn every arm's gain into a huge share)."""
    against_sft = {row["arm"]: row["mean_difference"] for row in differences if row["reference"] == "sft"}
    oracle_row = next((row for row in differences if row["reference"] == "sft" and row["arm"] == oracle), None)
    if oracle_row is None or oracle_row["t95_low"] is None or oracle_row["t95_low"] <= 0:
        return {arm: None for arm in against_sft}
    headroom = oracle_row["mean_difference"]
    return {arm: gain / headroom for arm, gain in against_sft.items()}
