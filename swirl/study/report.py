"""The study's report: the headline table (every arm's final stage: changed-cell accuracy on identifiable rows, exact
match on no-op rows, FWM NLL of the true diff, state-only pairs trained on, wall time), the paired differences with
their intervals and the seeds a +5-point difference needs, each arm's share of the oracle headroom, the per-stage
table, per-action accuracy and the GRPO phases' diagnostics. Written as ``quality.{json,md,png}``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swirl.evaluation.run_comparison import plot_arms
from swirl.paths import json_safe, write_text_atomic
from swirl.study.study_config import ARMS, QualityConfig
from swirl.study.labels import SWIRL_RUNS, latent_action_stats
from swirl.study.statistics import headroom_shares, mean_std, paired_differences

METRICS = ("fwm_changed_accuracy", "fwm_exact_match", "fwm_parse_rate", "idm_accuracy", "idm_equivalent_accuracy")
HEADLINE = ("fwm_changed_accuracy", "noop_exact_match", "fwm_nll", "state_only_pairs_trained", "wall_time_s")
PHASE_SIGNALS = ("reward_std", "frac_reward_zero_std", "kl", "parse_rate", "completions/mean_length", "step_time",
                 "rewards/observed_next_state/mean")
PHASE_RECORDS = ("distinct_pairs_trained", "pairs_available", "max_steps", "train_seconds", "scored_share")
ANNOTATION_SIGNALS = ("keep_rate", "mean_annotation_logprob")
EFFECT = 0.05  # the paired difference the power calculation is for: 5 points of changed-cell accuracy
OTHER_METRICS = ("noop_exact_match", "fwm_nll")  # the headline's other columns, also compared seed by seed


def finals(per_seed: dict[int, dict[str, list[dict]]]) -> dict[int, dict[str, dict]]:
    """Seed -> arm -> the arm's final evaluation line."""
    return {seed: {arm: lines[-1] for arm, lines in arms.items() if lines} for seed, arms in per_seed.items()}


def summarise(per_seed: dict[int, dict[str, list[dict]]]) -> list[dict[str, Any]]:
    """Mean and std over seeds of each metric, per arm and stage (stages a seed has not reached are left out)."""
    table = []
    for arm in ARMS:
        stages = dict.fromkeys(line["stage"] for arms in per_seed.values() for line in arms.get(arm, []))
        for stage in stages:
            found = [line for arms in per_seed.values() for line in arms.get(arm, []) if line["stage"] == stage]
            row: dict[str, Any] = {"arm": arm, "stage": stage, "seeds": len(found)}
            for metric in METRICS:
                row[metric], row[metric + "_std"] = mean_std([line.get(metric) for line in found])
            table.append(row)
    return table


def headline(per_seed: dict[int, dict[str, list[dict]]], differences: list[dict]) -> list[dict[str, Any]]:
    """One row per arm (its final stage): the headline metrics, mean and std over seeds, its paired difference with
    ``sft`` and its share of the oracle_pairs headroom."""
    last = finals(per_seed)
    shares = headroom_shares(differences)
    against_sft = {row["arm"]: row for row in differences if row["reference"] == "sft"}
    rows = []
    for arm in ARMS:
        found = [arms[arm] for arms in last.values() if arm in arms]
        if not found:
            continue
        row: dict[str, Any] = {"arm": arm, "stage": found[0]["stage"], "seeds": len(found)}
        for metric in HEADLINE:
            row[metric], row[metric + "_std"] = mean_std([line.get(metric) for line in found])
        row["wall_time_includes_warm_start"] = any(line.get("wall_time_includes_warm_start") for line in found)
        row["vs_sft"] = against_sft.get(arm)
        row["headroom_share"] = shares.get(arm)
        rows.append(row)
    return rows


def per_action_table(per_seed: dict[int, dict[str, list[dict]]], key: str = "fwm_per_action",
                     metric: str = "fwm_changed_accuracy") -> dict[str, dict[str, float | None]]:
    """Per arm (final stage): ``metric`` for each true action, mean over seeds (``key`` ``noop_per_action``: the
    no-op rows' exact match, a number per action)."""
    table = {}
    for arm in ARMS:
        found = [arms[arm][-1].get(key, {}) for arms in per_seed.values() if arms.get(arm)]
        actions = sorted({action for per_action in found for action in per_action})
        if actions:
            table[arm] = {action: mean_std([action_value(per_action.get(action), metric) for per_action in found])[0]
                          for action in actions}
    return table


def action_value(entry: dict | float | None, metric: str) -> float | None:
    """One action's number: a per-action metrics dict's ``metric``, or the number itself."""
    return entry.get(metric) if isinstance(entry, dict) else entry


def phase_diagnostics(config: QualityConfig) -> list[dict[str, Any]]:
    """The evidence for why SWIRL helps or not: per run and GRPO stage, the mean over seeds (and over steps) of
    what the phase's trainer logged (reward, its std within a group, the share of groups with equal rewards, KL to
    the phase-start policy, parse rate, completion length, step time, the anchor reward), what the phase recorded
    (distinct pairs trained and available, steps, training seconds, the share of answers scored after
    de-duplication) and, for phase I, the annotation keep rate and the IDM's mean log-prob of the kept actions."""
    def mean(values: list) -> float | None:
        return mean_std(values)[0]

    rows = []
    for run in SWIRL_RUNS:
        for iteration in range(1, config.iterations + 1):
            for phase in (1, 2):
                stage = f"iter_{iteration}/phase{phase}"
                paths = [config.seed_dir(seed) / run / stage / "metrics.json" for seed in config.seeds]
                found = [json.loads(path.read_text())["training"] for path in paths if path.exists()]
                if not found:
                    continue
                steps = [step for training in found for step in training["log"]]
                row: dict[str, Any] = {"run": run, "stage": stage, "seeds": len(found),
                                       "reward_first_step": mean([training["log"][0]["reward"] for training in found
                                                                  if training["log"]]),
                                       "reward_last_step": mean([training["log"][-1]["reward"] for training in found
                                                                 if training["log"]])}
                row |= {key: mean([step.get(key) for step in steps]) for key in PHASE_SIGNALS}
                row |= {key: mean([training.get(key) for training in found]) for key in PHASE_RECORDS}
                if row["train_seconds"] is not None and row["distinct_pairs_trained"]:
                    row["seconds_per_pair"] = row["train_seconds"] / row["distinct_pairs_trained"]
                if phase == 1:
                    row |= {key: mean([training.get(key) for training in found]) for key in ANNOTATION_SIGNALS}
                rows.append(row)
    return rows


def pseudo_label_stats(config: QualityConfig) -> dict[str, float | None]:
    paths = [config.seed_dir(seed) / "pseudo" / "metrics.json" for seed in config.seeds]
    found = [json.loads(path.read_text())["training"]["pseudo_labels"] for path in paths if path.exists()]
    return {key: mean_std([stats.get(key) for stats in found])[0]
            for key in ("kept_pairs", "keep_rate", "pseudo_label_accuracy", "pseudo_label_equivalent_accuracy")} | {
        "seeds": len(found)}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def points(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}"


def interval(low: float | None, high: float | None) -> str:
    return "—" if low is None else f"[{100 * low:+.1f}, {100 * high:+.1f}]"


def headline_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm (final stage) | seeds | FWM changed-cell, identifiable rows | FWM exact, no-op rows | FWM NLL of the "
             "true diff | state-only pairs trained | wall time (min) | vs `sft` (pts) [t 95%] | share of "
             "`oracle_pairs` headroom | seeds for +5 pts |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        versus = row["vs_sft"]
        paired = "—" if versus is None else f"{points(versus['mean_difference'])} {interval(versus['t95_low'], versus['t95_high'])}"
        needed = "—" if versus is None or versus["seeds_for_effect"] is None else str(versus["seeds_for_effect"])
        share = "—" if row["headroom_share"] is None or row["arm"] in ("sft", "oracle_pairs") else f"{row['headroom_share']:.0%}"
        nll = "—" if row["fwm_nll"] is None else f"{row['fwm_nll']:.3f} ± {row['fwm_nll_std']:.3f}"
        minutes = "—" if row["wall_time_s"] is None else f"{row['wall_time_s'] / 60:.1f}" + ("*" if row.get(
            "wall_time_includes_warm_start") else "")
        pairs = "—" if row["state_only_pairs_trained"] is None else f"{row['state_only_pairs_trained']:.0f}"
        lines.append(f"| `{row['arm']}` ({row['stage']}) | {row['seeds']} | {percent(row['fwm_changed_accuracy'])} ± "
                     f"{percent(row['fwm_changed_accuracy_std'])} | {percent(row['noop_exact_match'])} ± "
                     f"{percent(row['noop_exact_match_std'])} | {nll} | {pairs} | {minutes} | {paired} | {share} | "
                     f"{needed} |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    lines = ["Final stage of each arm, mean ± std over seeds; wall time: what the arm cost beyond the shared warm start "
             "(* with it); paired differences with `sft` seed by seed (t 95% interval); seeds for +5 pts: a paired "
             "test at 5% with 80% power, from the spread of that arm's differences:", "", headline_markdown(result["headline"]), "",
             "Every stage (mean ± std over seeds):", "",
             "| arm | stage | seeds | " + " | ".join(METRICS) + " |", "|" + "---|" * (len(METRICS) + 3)]
    for row in result["table"]:
        cells = [f"{percent(row[m])} ± {percent(row[m + '_std'])}" if row[m] is not None else "—" for m in METRICS]
        lines.append(f"| {row['arm']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences of the final fwm_changed_accuracy (arm - reference, per seed; 95% intervals over "
              "seeds: percentile bootstrap, and paired t):", "",
              "| arm | reference | seeds | per seed (pts) | mean difference (pts) | bootstrap 95% | t 95% | SD of the "
              "differences | seeds for +5 pts | relative |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["differences"]:
        relative = "—" if row["relative_change"] is None else f"{row['relative_change']:+.0%}"
        spread = "—" if row["difference_std"] is None else f"{100 * row['difference_std']:.1f}"
        lines.append(f"| {row['arm']} | {row['reference']} | {row['seeds']} | "
                     f"{', '.join(points(value) for value in row['per_seed_difference'])} | "
                     f"{points(row['mean_difference'])} | {interval(row['ci95_low'], row['ci95_high'])} | "
                     f"{interval(row['t95_low'], row['t95_high'])} | {spread} | {row['seeds_for_effect'] or '—'} | "
                     f"{relative} |")
    if result["other_differences"]:
        lines += ["", "Paired differences of the other headline metrics (arm - reference, per seed; paired t 95%): exact "
                  "match on the no-op rows in points, and the FWM's NLL of the true diff per token (lower is better):",
                  "", "| metric | arm | reference | seeds | per seed | mean difference | t 95% |", "|---|---|---|---|---|---|---|"]
        for row in result["other_differences"]:
            scale, form = (100, "+.1f") if row["metric"] == "noop_exact_match" else (1, "+.3f")
            low = "—" if row["t95_low"] is None else f"[{scale * row['t95_low']:{form}}, {scale * row['t95_high']:{form}}]"
            lines.append(f"| {row['metric']} | {row['arm']} | {row['reference']} | {row['seeds']} | "
                         f"{', '.join(f'{scale * value:{form}}' for value in row['per_seed_difference'])} | "
                         f"{scale * row['mean_difference']:{form}} | {low} |")
    for title, table in (("FWM changed-cell accuracy per true action (identifiable rows)", result["per_action"]),
                         ("FWM exact match per action on the no-op rows", result["noop_per_action"])):
        if table:
            actions = sorted({action for per_arm in table.values() for action in per_arm})
            lines += ["", f"{title}, final stage, mean over seeds:", "",
                      "| arm | " + " | ".join(actions) + " |", "|" + "---|" * (len(actions) + 1)]
            for arm, per_arm in table.items():
                lines.append(f"| {arm} | " + " | ".join(percent(per_arm.get(action)) for action in actions) + " |")
    stats = result["pseudo_labels"]
    if stats["seeds"]:
        lines += ["", f"Pseudo labels: {stats['kept_pairs']:.0f} kept pairs on average (keep rate "
                  f"{percent(stats['keep_rate'])}), {percent(stats['pseudo_label_accuracy'])} of them the recorded "
                  f"action, {percent(stats['pseudo_label_equivalent_accuracy'])} an action that reproduces s'."]
    if result["phase_diagnostics"]:
        lines += ["", "GRPO phases (means over seeds and steps):", "", diagnostics_markdown(result["phase_diagnostics"])]
    if result["latent_actions"]:
        lines += ["", "Phase I's latent actions (the kept pairs; accuracy against the recorded action, and against any "
                  "action that reproduces s'):", "", "| run | stage | seeds | kept | distinct actions | top action's share "
                  "| accuracy | equivalent accuracy |", "|---|---|---|---|---|---|---|---|"]
        for row in result["latent_actions"]:
            lines.append(f"| {row['run']} | {row['stage']} | {row['seeds']} | {row['kept']:.0f} | {row['distinct']:.1f} | "
                         f"{percent(row['top_share'])} | {percent(row['accuracy'])} | "
                         f"{percent(row['equivalent_accuracy'])} |")
    return "\n".join(lines)


def diagnostics_markdown(rows: list[dict]) -> str:
    columns = ("distinct_pairs_trained", "pairs_available", "max_steps", "seconds_per_pair", "scored_share",
               "keep_rate", "mean_annotation_logprob", "reward_first_step", "reward_last_step", *PHASE_SIGNALS)
    lines = ["| run | stage | seeds | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        cells = ["—" if row.get(key) is None else f"{row[key]:.3g}" for key in columns]
        lines.append(f"| {row['run']} | {row['stage']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(config: QualityConfig, per_seed: dict[int, dict[str, list[dict]]], timings: dict, labels: dict) -> dict:
    """Write ``quality.json`` (everything), ``quality.md`` and ``quality.png`` under ``output_dir``; return the
    result."""
    out = Path(config.output_dir)
    table = summarise(per_seed)
    differences = paired_differences(finals(per_seed), ARMS, config.bootstrap_samples, effect=EFFECT)
    other_differences = [row for metric in OTHER_METRICS
                         for row in paired_differences(finals(per_seed), ARMS, config.bootstrap_samples, metric=metric)]
    result = {"regime": config.regime, "headline": headline(per_seed, differences), "table": table,
              "differences": differences, "other_differences": other_differences, "effect_for_power": EFFECT,
              "per_action": per_action_table(per_seed),
              "noop_per_action": per_action_table(per_seed, key="noop_per_action"),
              "pseudo_labels": pseudo_label_stats(config), "phase_diagnostics": phase_diagnostics(config),
              "latent_actions": latent_action_stats(config),
              "per_seed": {str(seed): arms for seed, arms in per_seed.items()}, "wall_time_s": timings,
              "labelled_rows": labels}
    write_text_atomic(out / "quality.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "quality.md", markdown(result) + "\n")
    plot_arms(result["headline"], ("fwm_changed_accuracy", "noop_exact_match"), out / "quality.png",
              title=f"{out.name} ({config.regime}): final stage per arm, mean ± std over seeds")
    return result
