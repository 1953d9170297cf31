"""The study's arms, run (or resumed) for one seed. Every arm uses the same labelled rows, model and warm start:

* ``sft``: the warm start only (SFT of the fwm and idm adapters on the labelled rows);
* ``sft_more``: the warm start continued with as many extra SFT steps per adapter as SWIRL spends GRPO steps on it
  (``extra_steps``) at ``extra_learning_rate``: rules out "SWIRL is just more training" (with
  ``pair_arms_from_scratch``, a fresh fwm with ``oracle_pairs``' steps on the labelled rows: rules out "the headroom
  is just more steps");
* ``pseudo``: the warm-started IDM labels the state-only pairs SWIRL uses (greedy, kept at the phase I threshold,
  ``annotation_min_logprob``), then the fwm continues SFT on labelled + pseudo-labelled rows: the inverse-model
  pseudo-labelling of video pre-training, which SWIRL must beat to matter;
* ``oracle_pairs``: ``pseudo`` with the TRUE actions of the same pairs: with ``pair_arms_from_scratch``, the most
  those pairs can give by SFT (``oracle_pairs - sft`` is the headroom; each method's gain is reported as a share of
  it); without, what they give for SWIRL's compute;
* ``swirl``: ``iterations`` x (phase I, phase II) on the state-only pairs, the paper's objective;
* ``swirl_anchored``: the same with phase I's observed-next-state reward (``phase1_anchor = anchor_weight``), from
  the same warm start;
* ``wav_swirl``: the labelled budget spent by WAV acquisition, then the same warm start recipe and SWIRL;
* ``upper``: SFT on every training transition with its true action (with ``upper_epochs_matched``, for as many
  epochs as ``sft``).

Every arm's final FWM is also tested on held-out no-op transitions (:mod:`swirl.study.noops`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable

from datasets import concatenate_datasets

from swirl.data import load_dataset_dict
from swirl.distributed import is_main_process
from swirl.models.loading import load_tokenizer
from swirl.paths import stage_done, write_json_atomic
from swirl.sft import sft_adapter
from swirl.study.study_config import ARMS, RUNS, SFT_ARMS, QualityConfig
from swirl.study.labels import label_accuracy, true_actions
from swirl.study.noops import noop_result
from swirl.training.swirl_config import SwirlConfig
from swirl.training.loop import evaluate_stage, load_stage, run_swirl, state_only_pairs
from swirl.training.phases import annotate_latent_actions
from swirl.training.warm_start import load_run_data, test_sample

WAV_POOL_STATES_PER_LABEL = 2  # wav_swirl's candidate pool: see run_configs
LINE_COLUMNS = ("state", "action", "next_state")


def run_configs(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, SwirlConfig]:
    """One SWIRL run config per run folder: ``swirl`` (arms sft and swirl; also the base of the SFT arms),
    ``swirl_anchored``, ``wav_swirl`` and ``upper``."""
    root = config.seed_dir(seed)
    shared = {f.name: getattr(config, f.name) for f in fields(SwirlConfig)}
    shared |= {"seed": seed, "push_to_hub": False}
    labelled = load_dataset_dict(data)["labelled"].num_rows
    rounds = max(1, config.acquisition_rounds)
    seed_labels = min(config.acquisition_seed_labels, labelled)
    per_round = math.ceil(max(0, labelled - seed_labels) / rounds)
    # WAV proposes only the actions its subgoals lead to: about 1.5 candidates per pool state with 2 subgoals (seeds
    # 0-3 of the first study: 43-55 of 32 states' 224). So the pool holds 2 states per label WAV acquires, for its
    # proposals to outnumber the budget of every round; with 32 states half the labels were unscored, random picks.
    pool_states = max(config.acquisition_pool_states, WAV_POOL_STATES_PER_LABEL * rounds * per_round)
    iterations = config.iterations if "swirl" in config.arms else 0
    every_row = load_dataset_dict(data_all)["labelled"].num_rows
    upper_steps = round(config.sft_steps * every_row / labelled) if config.upper_epochs_matched else config.sft_steps
    return {
        "swirl": SwirlConfig(**shared | {"output_dir": str(root / "swirl"), "dataset": str(data),
                                         "acquisition": "none", "iterations": iterations}),
        "swirl_anchored": SwirlConfig(**shared | {"output_dir": str(root / "swirl_anchored"), "dataset": str(data),
                                                  "acquisition": "none", "phase1_anchor": config.anchor_weight}),
        "wav_swirl": SwirlConfig(**shared | {"output_dir": str(root / "wav_swirl"), "dataset": str(data),
                                             "acquisition": "wav", "acquisition_rounds": rounds,
                                             "acquisition_budget": per_round, "acquisition_seed_labels": seed_labels,
                                             "acquisition_pool_states": pool_states}),
        "upper": SwirlConfig(**shared | {"output_dir": str(root / "upper"), "dataset": str(data_all),
                                         "acquisition": "none", "iterations": 0, "sft_steps": upper_steps}),
    }


def pseudo_labelled_rows(run: SwirlConfig, tokenizer: Any, pairs: Any, data_all: Path,
                         warm: Path) -> tuple[Any, dict[str, Any]]:
    """The warm IDM's greedy action for each state-only pair (phase I's annotation, the same threshold), as
    labelled rows; with how many were kept and how often the kept labels are right (:func:`label_accuracy`)."""
    model, sampler = load_stage(run, warm, tokenizer)
    kept, stats = annotate_latent_actions(model, tokenizer, sampler, pairs, run)
    del model, sampler
    labels = list(zip(kept["state"], kept["next_state"], kept["latent_action"]))
    stats |= {f"pseudo_label_{key}": value for key, value in label_accuracy(labels, data_all, run.state_text).items()}
    return kept.rename_column("latent_action", "action"), stats


def oracle_labelled_rows(run: SwirlConfig, pairs: Any, data_all: Path) -> tuple[Any, dict[str, Any]]:
    """The same state-only pairs with their true actions (the recorded one; where one (s, s') was recorded with
    several, all of which reproduce it, the first in sorted order)."""
    recorded, _ = true_actions(str(data_all), run.state_text)
    actions = [sorted(recorded[(s, n)])[0] for s, n in zip(pairs["state"], pairs["next_state"])]
    return pairs.add_column("action", actions), {"kept_pairs": len(actions)}


def continued_sft_arm(name: str, run: SwirlConfig, steps: int, learning_rate: float, data_all: Path,
                      iterations: int, from_scratch: bool = False,
                      scratch_steps: int | None = None) -> list[dict[str, Any]]:
    """Arm ``sft_more``, ``pseudo`` or ``oracle_pairs``: the SWIRL run's warm-start adapters continued for ``steps``
    SFT steps at ``learning_rate``, in ``<seed>/<name>/``; returns its evaluation line. ``sft_more`` continues both
    adapters on the labelled rows; ``pseudo`` and ``oracle_pairs`` continue the fwm on the labelled rows plus the
    state-only pairs of the SWIRL run's ``iterations`` (every iteration's block), labelled by the warm IDM or with
    their true actions (their idm is the warm start's). With ``from_scratch`` these two train a fresh fwm adapter on
    those rows instead, with the warm start's recipe and as many epochs (``steps`` and ``learning_rate`` unused), and
    ``sft_more`` becomes their steps-matched control: a fresh fwm on the labelled rows alone for as many steps as
    ``oracle_pairs`` takes (so ``oracle_pairs - sft_more`` is what the pairs add beyond more steps). ``scratch_steps``
    sets those fresh adapters' steps instead (the same for all three)."""
    warm = Path(run.output_dir) / "warmstart"
    stage = Path(run.output_dir).parent / name
    if stage_done(stage):
        return [json.loads((stage / "metrics.json").read_text())["eval"] | {"stage": name}]
    tokenizer = load_tokenizer(run.model)
    data = load_run_data(run, Path(run.dataset))
    test = test_sample(run, data, run.eval_rows)
    sft_test = test_sample(run, data, run.eval_rows if run.sft_eval_rows is None else run.sft_eval_rows)
    training: dict[str, Any] = {"extra_steps": steps, "learning_rate": learning_rate}
    fwm_rows = data["labelled"]
    if name in ("pseudo", "oracle_pairs") or from_scratch:
        pairs = state_only_pairs(replace(run, iterations=iterations), data)  # the study's, even without arm swirl
    if name in ("pseudo", "oracle_pairs"):
        if name == "pseudo":
            extra, stats = pseudo_labelled_rows(run, tokenizer, pairs, data_all, warm)
            training["pseudo_labels"] = stats
        else:
            extra, stats = oracle_labelled_rows(run, pairs, data_all)
        training["state_only_pairs"] = len(set(zip(extra["state"], extra["next_state"])))
        fwm_rows = concatenate_datasets([data["labelled"].select_columns(LINE_COLUMNS), extra.select_columns(LINE_COLUMNS)])
    roles = ("fwm", "idm") if name == "sft_more" and not from_scratch else ("fwm",)
    if from_scratch:  # the warm start's recipe on more rows: as many passes over them as sft makes over its own
        rows_matched = data["labelled"].num_rows + pairs.num_rows if name == "sft_more" else fwm_rows.num_rows
        steps = scratch_steps or round(run.sft_steps * rows_matched / data["labelled"].num_rows)
        learning_rate = run.sft_learning_rate
        training |= {"extra_steps": 0, "from_scratch_steps": steps, "learning_rate": learning_rate}
    for role in roles:
        rows = fwm_rows if role == "fwm" else data["labelled"]
        training[role] = sft_adapter(run.model, tokenizer, role, rows, sft_test, stage / role,
                                     init_adapter=None if from_scratch else warm / role,
                                     lora=(run.lora_r, run.lora_alpha, run.lora_dropout), dtype=run.dtype,
                                     steps=steps, learning_rate=learning_rate, batch_size=run.sft_batch_size,
                                     seed=run.seed, trainer_dir=stage / "trainer" / role, view=run.state_view,
                                     lora_vision=run.lora_vision, lora_layers=run.lora_layers)
    if "idm" not in roles and is_main_process():
        shutil.copytree(warm / "idm", stage / "idm", dirs_exist_ok=True)
    trained = "fwm" if roles == ("fwm",) else None
    evaluation = evaluate_stage(run, stage, test, tokenizer, previous=warm, trained=trained)
    write_json_atomic(stage / "metrics.json", {"training": training, "eval": evaluation})
    return [evaluation | {"stage": name}]


def final_stage(seed_dir: Path, arm: str, stage: str) -> Path:
    """The folder of an arm's final stage: ``sft`` is the SWIRL run's warm start, the SFT arms are their own
    folders, the other arms are stages of their run folder."""
    if stage == arm:
        return seed_dir / arm
    return seed_dir / {"sft": "swirl"}.get(arm, arm) / stage


def state_only_pairs_trained(seed_dir: Path, arm: str, stage: str) -> int:
    """Distinct state-only pairs (s, s') an arm trained on: for a SWIRL run, those its GRPO phases' rewards saw in
    any phase and iteration (the phases' ``pairs_seen`` logs); the pseudo- or truly-labelled pairs for ``pseudo``
    and ``oracle_pairs``; 0 for the arms that use labelled rows only."""
    if arm in RUNS and stage != "warmstart":
        logs = (seed_dir / arm).glob("iter_*/phase*/pairs_seen.rank*.jsonl")
        return len({line for log in logs for line in log.read_text().splitlines()})
    if arm in ("pseudo", "oracle_pairs") and stage_done(seed_dir / arm):
        return json.loads((seed_dir / arm / "metrics.json").read_text())["training"].get("state_only_pairs", 0)
    return 0


def arm_seconds(seed_dir: Path, arm: str, spent: dict[str, float]) -> tuple[float | None, bool]:
    """What an arm cost beyond the shared warm start, and whether that number still includes the warm start. A
    SWIRL run's stages record their seconds (the sum of its iterations' stages, when all have); otherwise the
    arm's time in ``wall_time.json`` (for ``swirl``, with its warm start)."""
    if arm == "sft":
        return None, False
    stages = sorted((seed_dir / arm).glob("iter_*/phase*/metrics.json")) if arm in RUNS else []
    recorded = [json.loads(path.read_text()).get("seconds") for path in stages]
    if stages and None not in recorded:
        return sum(recorded), False
    return spent.get(arm), arm == "swirl"


def with_seed_extras(config: QualityConfig, seed: int, lines: dict[str, list[dict]],
                     spent: dict[str, float]) -> dict[str, list[dict]]:
    """Add to each arm's final line its wall time beyond the warm start, the state-only pairs it trained on and its
    no-op result (read when done; run here unless ``report_only``)."""
    seed_dir = config.seed_dir(seed)
    for arm, arm_lines in lines.items():
        final = arm_lines[-1]
        stage = final_stage(seed_dir, arm, final["stage"])
        final["wall_time_s"], final["wall_time_includes_warm_start"] = arm_seconds(seed_dir, arm, spent)
        final["state_only_pairs_trained"] = state_only_pairs_trained(seed_dir, arm, final["stage"])
        if config.noop_rows_per_action:
            noop = noop_result(config, seed, stage, run_if_missing=not config.report_only)
            if noop is not None:
                final["noop_exact_match"] = noop["fwm_exact_match"]
                final["noop_rows"] = noop["rows"]
                final["noop_per_action"] = noop["per_action"]
    return lines


def finished_lines(config: QualityConfig, seed: int) -> dict[str, list[dict]]:
    """The evaluation lines of the arms one seed has finished, read from its folder (``report_only``)."""
    root = config.seed_dir(seed)
    lines: dict[str, list[dict]] = {}
    for run in RUNS:
        if (root / run / "hub" / "README.md").exists():  # written last, when the run has finished
            lines[run] = [json.loads(line) for line in (root / run / "metrics.jsonl").read_text().splitlines()]
    if stage_done(root / "swirl" / "warmstart"):
        lines["sft"] = [json.loads((root / "swirl" / "warmstart" / "metrics.json").read_text())["eval"]
                        | {"stage": "warmstart"}]
    for arm in SFT_ARMS:
        if stage_done(root / arm):
            lines[arm] = [json.loads((root / arm / "metrics.json").read_text())["eval"] | {"stage": arm}]
    spent = json.loads((root / "wall_time.json").read_text()) if (root / "wall_time.json").exists() else {}
    lines = {arm: lines[arm] for arm in ARMS if arm in lines and arm in config.arms}
    return with_seed_extras(config, seed, lines, spent)


def share_warm_start(source: Path, target: Path) -> None:
    """Give a run folder the warm start of another (a copy of the finished stage, its metrics included), so that
    two SWIRL variants start from the same adapters and the warm start is trained and evaluated once."""
    if not stage_done(target / "warmstart"):
        if (target / "warmstart").exists():
            shutil.rmtree(target / "warmstart")
        shutil.copytree(source / "warmstart", target / "warmstart")


def arm_lines(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, list[dict]]:
    """Run (or resume) every arm of one seed; return each arm's evaluation lines (its last one is its result).

    Each arm's wall time is added to ``<seed>/wall_time.json`` by every invocation that works on it, so a study
    resumed after a kill still reports (about) what each arm cost."""
    root = config.seed_dir(seed)
    runs = run_configs(config, seed, data, data_all)
    timing_file = root / "wall_time.json"
    spent = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    lines: dict[str, list[dict]] = {}

    def timed(arm: str, work: Callable[[], list[dict]]) -> None:
        print(f"== seed {seed}: {arm}", flush=True)
        start = time.perf_counter()
        lines[arm] = work()
        spent[arm] = spent.get(arm, 0.0) + time.perf_counter() - start
        write_json_atomic(timing_file, spent)

    def run_arm(arm: str) -> list[dict]:
        return run_swirl(runs[arm], "python benchmarks/quality_minigrid.py ...")

    warm = Path(runs["swirl"].output_dir) / "warmstart"
    needs_warm_start = bool({"sft", "swirl_anchored", *SFT_ARMS} & set(config.arms))
    if "swirl" in config.arms or (needs_warm_start and not stage_done(warm)):  # without arm swirl: 0 iterations
        timed("swirl", lambda: run_arm("swirl"))
    elif needs_warm_start:  # the warm start is done: read it, and leave the SWIRL run's files alone
        lines["swirl"] = [json.loads((warm / "metrics.json").read_text())["eval"] | {"stage": "warmstart"}]
    if "swirl" in lines:
        lines["sft"] = [dict(lines["swirl"][0])]  # a copy: the SWIRL run's time below is not the warm start's
    if "swirl_anchored" in config.arms:
        share_warm_start(warm.parent, Path(runs["swirl_anchored"].output_dir))
        timed("swirl_anchored", lambda: run_arm("swirl_anchored"))
    for arm in SFT_ARMS:
        if arm in config.arms:
            timed(arm, lambda arm=arm: continued_sft_arm(arm, runs["swirl"], config.extra_steps,
                                                         config.extra_learning_rate, data_all, config.iterations,
                                                         from_scratch=config.pair_arms_from_scratch,
                                                         scratch_steps=config.pair_arms_steps))
    for arm in ("wav_swirl", "upper"):
        if arm in config.arms:
            timed(arm, lambda arm=arm: run_arm(arm))
    lines = {arm: lines[arm] for arm in ARMS if arm in lines and arm in config.arms}
    return with_seed_extras(config, seed, lines, spent)


def labels_used(config: QualityConfig, seed: int, data: Path, data_all: Path) -> dict[str, int]:
    """Labelled transitions each arm's warm start trained on (the acquired set for WAV)."""
    root = config.seed_dir(seed)
    labelled = load_dataset_dict(data)["labelled"].num_rows
    used = {arm: labelled for arm in ("sft", "swirl", "swirl_anchored", *SFT_ARMS) if arm in config.arms}
    if "wav_swirl" in config.arms and (root / "wav_swirl" / "data_acquired").exists():  # not before WAV has run
        used["wav_swirl"] = load_dataset_dict(root / "wav_swirl" / "data_acquired")["labelled"].num_rows
    if "upper" in config.arms:
        used["upper"] = load_dataset_dict(data_all)["labelled"].num_rows
    return {f"seed_{seed}/{arm}": count for arm, count in used.items()}
