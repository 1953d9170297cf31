"""WAV's Algorithm 1, pool-based: score a pool of candidate (state, action) pairs, execute the top-B in the
real env, add the labelled transitions, retrain the FWM and the inverse model, repeat. Resumable.

Layout under ``output_dir``::

    data/                                the dataset (when built by the run)
    seed_<s>/warmstart/                  shared by every method of a seed: fwm/ (SFT on the seed labels),
                                         fwm_initial/ (the untrained LoRA), subgoal/, sparse_idm/, dense_idm/
                                         or idm/,
                                         metrics.json (evaluation with 0 acquired labels)
    seed_<s>/<method>/labels.jsonl       journal of executed labels: one line per execution, fsync'd
    seed_<s>/<method>/round_<k>/selected.json   the top-B with their scores, rank correlations with the oracle
    seed_<s>/<method>/round_<k>/labelled/       the grown labelled set (a Dataset, written atomically)
    seed_<s>/<method>/round_<k>/fwm/, sparse_idm/, dense_idm/ or idm/, metrics.json (written last: the round is done)
    seed_<s>/<method>/metrics.jsonl      one line per round, rebuilt from the rounds' metrics.json

Resuming: a round whose ``metrics.json`` exists is skipped; a round with ``selected.json`` keeps that
selection and executes only the candidates the journal does not hold yet, so a run killed at any point
loses no executed label and executes none twice. An adapter a stage already saved is kept (a warm start killed
after its forward model's SFT resumes at the subgoal generator).

The seed's data split is :mod:`swirl.wav.seed_data`'s, the round's models :mod:`swirl.wav.round_models`'; SWIRL's
use of a WAV run is :mod:`swirl.wav.swirl_labels`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from datasets import DatasetDict, load_from_disk

from swirl.config_fields import TRACKING_FIELDS, field_defaults
from swirl.data import save_dataset_dict
from swirl.distributed import distributed_state, is_main_process, wait_for_everyone
from swirl.envs.identifiability import equivalent_actions_for_rows
from swirl.errors import SwirlError
from swirl.evaluation.world_model import world_model_metrics
from swirl.models.loading import load_tokenizer
from swirl.progress import bar, disable_progress_bars, show_stage_end
from swirl.tracking import log_stage, stage_scalars
from swirl.paths import (WAV_RUN_CONFIG, json_safe, refuse_other_settings, stage_done, write_json_atomic,
                         write_text_atomic)
from swirl.wav.candidates import Candidate, Simulator, pool_candidates
from swirl.wav.wav_config import METHODS, WAVConfig
from swirl.wav.journal import JOURNAL, execute_selected, read_journal
from swirl.wav.scores import PoolScorer, rank_correlations, top_b
from swirl.wav.round_models import (round_models, round_seed, save_initial_adapter, train_adapter,
                                    train_forward_model, train_inverse_model, train_structured)
from swirl.wav.seed_data import labelled_dataset, load_run_data, split_data

FINGERPRINT = WAV_RUN_CONFIG
RESUMABLE_FIELDS = ("output_dir", "method", "methods", "seeds", "rounds", "sampler", *TRACKING_FIELDS)  # may change


def evaluate_round(config: WAVConfig, tokenizer: Any, warm: Path, stage: Path, test: Any, seed: int,
                   equivalent: list[list[int]] | None = None) -> dict[str, Any]:
    """The stage's forward and inverse models on the test rows (either backend; ``equivalent``: the rows' equivalent
    actions, computed once per run)."""
    models = round_models(config, tokenizer, warm, stage, None, seed)
    states, actions, next_states = test["state"], test["action"], test["next_state"]
    result = world_model_metrics(test, models.predict(states, actions), models.nll(states, actions, next_states),
                                 models.infer(states, next_states), equivalent=equivalent, breakdowns=False)
    return result


# ---------------------------------------------------------------------------------------- one seed
def warm_start_seed(config: WAVConfig, tokenizer: Any, parts: dict[str, Any], warm: Path, seed: int) -> None:
    """A seed's round-0 models, shared by every method: the fwm (and the inverse model) on the seed labels, the
    subgoal generator on state-only pairs, and the untrained ``fwm_initial`` (the forward model before any
    training, which the first round's ``progress`` compares with); evaluated with 0 acquired labels."""
    if stage_done(warm):
        return
    start = time.perf_counter()
    seed_labels, subgoal = parts["seed_labels"], parts["subgoal"]
    # the structured models' vocabulary: every state the run may see without paying for a label
    seen = [*seed_labels["state"], *subgoal["state"], *subgoal["next_state"], *parts["pool"]["state"]]
    training = {
        "fwm": train_forward_model(config, tokenizer, seed_labels, parts["test"], warm, None, seed, seen),
        "inverse": train_inverse_model(config, tokenizer, seed_labels, parts["test"], warm, None, seed),
    }
    if config.backend == "structured":
        training["subgoal"] = train_structured(config, subgoal["state"], subgoal["next_state"], None, warm / "subgoal",
                                               None, config.structured_subgoal_steps, seen, seed)
        train_structured(config, seed_labels["state"], seed_labels["next_state"], seed_labels["action"],
                         warm / "fwm_initial", None, 0, seen, seed)
    else:
        training["subgoal"] = train_adapter(config, tokenizer, "subgoal", subgoal, parts["test"], warm, None,
                                            config.subgoal_steps, seed)
        if is_main_process():
            save_initial_adapter(config, warm / "fwm_initial")
    if is_main_process():
        metrics = evaluate_round(config, tokenizer, warm, warm, parts["test"], seed, parts.get("equivalent"))
        finish_round(config, warm, {"round": 0, "labels": seed_labels.num_rows, "training": training,
                                    "eval": metrics}, start)
    wait_for_everyone()


def finish_round(config: WAVConfig, stage: Path, record: dict[str, Any], start: float) -> None:
    """Mark a round complete (its ``metrics.json``, written last), log its evaluation and the score's correlation
    with the oracle to the run's trackers at its number of labels, and print the line that ends it."""
    write_json_atomic(stage / "metrics.json", record)
    name = os.path.relpath(stage, config.output_dir)
    scalars = stage_scalars(record["eval"]) | {f"wav/oracle_{key}": value for key, value in
                                               record.get("correlation_with_oracle", {}).items()
                                               if isinstance(value, (int, float))}
    log_stage(config, name, scalars, record["labels"])
    show_stage_end(name, time.perf_counter() - start, {
        "labels": record["labels"], "fwm_changed_accuracy": record["eval"].get("fwm_changed_accuracy"),
        "spearman": record.get("correlation_with_oracle", {}).get("spearman")})


def select_candidates(config: WAVConfig, method: str, tokenizer: Any, warm: Path, previous: Path, before: Path,
                      candidates: list[Candidate], seed: int, simulate: Callable) -> dict[str, Any]:
    """Score the remaining pool with the previous round's models and pick the top-B."""
    models = round_models(config, tokenizer, warm, previous, before, seed)
    scorer = PoolScorer(candidates, models, score_loss=config.score_loss, subgoals=config.subgoals,
                        uncertainty_samples=config.uncertainty_samples, seed=seed, simulate=simulate)
    scores = scorer.score(method)
    oracle = scorer.true_losses
    chosen = top_b(scores, config.budget, seed)
    unscored = sum(scores[i] == -math.inf for i in chosen)  # WAV's picks beyond what its subgoals lead to: random
    if unscored:
        print(f"swirl: note: {method} scored {len(chosen) - unscored} candidates for a budget of {len(chosen)}; the "
              f"other {unscored} are unscored candidates in random order (raise pool_states or subgoals)",
              file=sys.stderr)
    return {
        "method": method,
        "selected": [candidates[i].to_json() | {"score": scores[i], "oracle_error": oracle[i]} for i in chosen],
        "selected_oracle_error": sum(oracle[i] for i in chosen) / len(chosen),
        "unscored_picks": unscored,
        "pool_oracle_error": sum(oracle) / len(oracle),
        "pool_size": len(candidates),
        "correlation_with_oracle": rank_correlations(scores, oracle),
        # over the candidates the method scores (WAV: those a subgoal leads to; the others score every one)
        "correlation_on_scored": rank_correlations(scores, oracle, scored_only=True),
        "details": scorer.details,
    }


def run_method(config: WAVConfig, method: str, seed: int, tokenizer: Any, parts: dict[str, Any], seed_dir: Path,
               execute: Callable[[Candidate], dict[str, Any]] | None = None,
               simulate: Simulator | None = None) -> list[dict[str, Any]]:
    """All rounds of one method for one seed (resumable); returns the per-round lines, round 0 first. ``simulate``
    gives the oracle its true next states (one per run: it remembers them); ``execute`` acquires a label
    (default: ``simulate``)."""
    warm, run_dir = seed_dir / "warmstart", seed_dir / method
    journal = run_dir / JOURNAL
    simulate = simulate or Simulator()
    execute = execute or simulate
    pool = pool_candidates(parts["pool"])
    stages = [warm]
    for k in bar(range(1, config.rounds + 1), desc=f"{method} seed {seed} rounds", unit="round"):
        stage, previous = run_dir / f"round_{k}", stages[-1]
        before = stages[-2] / "fwm" if len(stages) > 1 else warm / "fwm_initial"
        stages.append(stage)
        if stage_done(stage):
            continue
        start = time.perf_counter()
        executed = {row["key"] for row in read_journal(journal)}  # every process checks: none waits in vain
        remaining = [c for c in pool if c.key not in executed]
        if not remaining and not (stage / "selected.json").exists():
            raise SwirlError(f"the pool is exhausted after round {k - 1}: raise pool_states or lower budget")
        if is_main_process():
            if not (stage / "selected.json").exists():
                write_json_atomic(stage / "selected.json", select_candidates(config, method, tokenizer, warm, previous,
                                                                      before, remaining, round_seed(seed, k),
                                                                      simulate))
            selection = json.loads((stage / "selected.json").read_text())
            acquired = execute_selected([Candidate.from_json(c) for c in selection["selected"]], k, journal, execute)
            if not (stage / "labelled").exists():
                save_dataset_dict(DatasetDict({"labelled": labelled_dataset(parts["seed_labels"], acquired)}),
                                  stage / "labelled", overwrite=True)
        wait_for_everyone()
        labelled = load_from_disk(str(stage / "labelled"))["labelled"]
        training = {
            "fwm": train_forward_model(config, tokenizer, labelled, parts["test"], stage, previous,
                                       round_seed(seed, k)),
            "inverse": train_inverse_model(config, tokenizer, labelled, parts["test"], stage, previous,
                                           round_seed(seed, k)),
        }
        if is_main_process():
            selection = json.loads((stage / "selected.json").read_text())
            metrics = evaluate_round(config, tokenizer, warm, stage, parts["test"], seed, parts.get("equivalent"))
            finish_round(config, stage, {
                "round": k, "labels": labelled.num_rows, "training": training, "eval": metrics,
                **{key: selection.get(key) for key in ("correlation_with_oracle", "correlation_on_scored",
                                                        "selected_oracle_error", "pool_oracle_error", "pool_size",
                                                        "unscored_picks", "details")},
                "selected_actions": sorted(c["action"] for c in selection["selected"]),
            }, start)
        wait_for_everyone()
    lines = []
    for stage in stages:
        metrics = json.loads((stage / "metrics.json").read_text())
        lines.append({"method": method, "seed": seed, "round": metrics["round"], "labels": metrics["labels"],
                      **metrics["eval"], **{f"oracle_{name}": value for name, value in
                                            metrics.get("correlation_with_oracle", {}).items()},
                      **{f"oracle_{name}_scored": value for name, value in
                         metrics.get("correlation_on_scored", {}).items()},
                      "selected_oracle_error": metrics.get("selected_oracle_error")})
    if is_main_process():
        write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(json_safe(line)) + "\n" for line in lines))
    return lines


def run_acquisition(config: WAVConfig, execute: Callable[[Candidate], dict[str, Any]] | None = None
                    ) -> list[dict[str, Any]]:
    """Every method x seed of ``config`` (resumable); returns all per-round lines and writes
    ``<output_dir>/results.jsonl``. ``execute`` defaults to the real env (tests wrap it to count calls)."""
    if config.disable_tqdm:
        disable_progress_bars()
    distributed_state()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_fingerprint(config, output_dir / FINGERPRINT)
    data = load_run_data(config)
    tokenizer = load_tokenizer(config.model) if config.backend == "llm" else None
    simulate = Simulator()  # shared by every seed and method: a candidate's true next state is simulated once
    equivalent = None  # the test rows' equivalent actions: the same rows for every seed, computed once
    parts: dict[str, Any] = {}
    for seed, method in bar([(seed, method) for seed in config.seeds for method in config.methods],
                            desc="WAV runs", unit="run", leave=True):
        if parts.get("seed") != seed:  # the runs come seed by seed: split each seed's data once
            parts = split_data(config, data, seed) | {"seed": seed}
            if equivalent is None and is_main_process():
                equivalent = equivalent_actions_for_rows(parts["test"])
            parts["equivalent"] = equivalent
        seed_dir = output_dir / f"seed_{seed}"
        warm_start_seed(config, tokenizer, parts, seed_dir / "warmstart", seed)
        run_method(config, method, seed, tokenizer, parts, seed_dir, execute, simulate)
    # every run in the folder, also those of earlier commands (e.g. --method wav, then --method random)
    seed_dirs = sorted(output_dir.glob("seed_*"), key=lambda path: int(path.name.split("_", 1)[1]))
    lines = [json.loads(line) for seed_dir in seed_dirs for method in METHODS
             if (seed_dir / method / "metrics.jsonl").exists()
             for line in (seed_dir / method / "metrics.jsonl").read_text().splitlines()]
    if is_main_process():
        write_text_atomic(output_dir / "results.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    wait_for_everyone()
    return lines


def check_fingerprint(config: WAVConfig, path: Path) -> None:
    """Refuse to resume a folder made with other settings (only methods, seeds, rounds and the sampler may
    change): its warm start and rounds would silently mix two experiments."""
    refuse_other_settings(path, {key: value for key, value in asdict(config).items() if key not in RESUMABLE_FIELDS},
                          defaults=field_defaults(type(config)),
                          write=is_main_process())


