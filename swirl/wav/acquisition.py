"""WAV's Algorithm 1, pool-based: score a pool of candidate (state, action) pairs, execute the top-B in the
real env, add the labelled transitions, retrain the FWM and the inverse model, repeat. Resumable.

Layout under ``output_dir``::

    data/                                the dataset (when built by the run)
    seed_<s>/warmstart/                  shared by every method of a seed: fwm/ (SFT on the seed labels),
                                         fwm_initial/ (the untrained LoRA), subgoal/, sparse_idm/ or idm/,
                                         metrics.json (evaluation with 0 acquired labels)
    seed_<s>/<method>/labels.jsonl       journal of executed labels: one line per execution, fsync'd
    seed_<s>/<method>/round_<k>/selected.json   the top-B with their scores, rank correlations with the oracle
    seed_<s>/<method>/round_<k>/labelled/       the grown labelled set (a Dataset, written atomically)
    seed_<s>/<method>/round_<k>/fwm/, sparse_idm/ or idm/, metrics.json (written last: the round is done)
    seed_<s>/<method>/metrics.jsonl      one line per round, rebuilt from the rounds' metrics.json

Resuming: a round whose ``metrics.json`` exists is skipped; a round with ``selected.json`` keeps that
selection and executes only the candidates the journal does not hold yet, so a run killed at any point
loses no executed label and executes none twice.

The data split: the ``labelled`` split supplies the seed labels (``seed_labels`` random rows); the
``state_only`` episodes are split by episode number, even ones train the subgoal generator, odd ones give
the pool's states (``pool_states`` random rows, every action of each a candidate); ``test`` is evaluated.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from swirl.builders.prepare import prepare_dataset
from swirl.progress import bar
from swirl import tracking
from swirl.config_fields import TRACKING_FIELDS
from swirl.distributed import distributed_state, is_main_process, wait_for_everyone
from swirl.paths import (WAV_RUN_CONFIG, json_safe, refuse_other_settings, stage_done, write_json_atomic,
                         write_text_atomic)
from swirl.wav.candidates import Candidate, Simulator, distinct_states, pool_candidates
from swirl.wav.config import METHODS, WAVConfig
from swirl.wav.journal import JOURNAL, execute_selected, read_journal
from swirl.wav.scores import PoolScorer, rank_correlations, top_b
from swirl.wav.world_models import LLMWorldModels, StructuredWorldModels, WorldModels

FINGERPRINT = WAV_RUN_CONFIG
RESUMABLE_FIELDS = ("output_dir", "method", "methods", "seeds", "rounds", "sampler", *TRACKING_FIELDS)  # may change


# ---------------------------------------------------------------------------------------- the data
def split_data(config: WAVConfig, data: Any, seed: int) -> dict[str, Any]:
    """Seed labels, subgoal-training pairs, pool states and evaluation rows for one seed."""
    from swirl.errors import SwirlError

    labelled = data["labelled"].shuffle(seed=seed, keep_in_memory=True)
    state_only = data["state_only"]
    # alternate each env's state-only episodes: the subgoal generator never sees a pool transition
    episodes: dict[str, list[int]] = {}
    for env_id, episode in zip(state_only["env_id"], state_only["episode"]):
        episodes.setdefault(env_id, []).append(episode)
    for_subgoal = {(env_id, e) for env_id, found in episodes.items() for e in sorted(set(found))[::2]}
    if not for_subgoal or len(for_subgoal) == sum(len(set(found)) for found in episodes.values()):
        raise SwirlError("WAV needs at least two state-only episodes (one trains the subgoal generator, one gives "
                         "the pool): build the dataset with more env_episodes")
    in_subgoal = [(env_id, e) in for_subgoal for env_id, e in zip(state_only["env_id"], state_only["episode"])]
    subgoal_rows = state_only.select([i for i, flag in enumerate(in_subgoal) if flag])
    pool_rows = state_only.select([i for i, flag in enumerate(in_subgoal) if not flag])
    pool_rows = pool_rows.shuffle(seed=seed, keep_in_memory=True)
    distinct = distinct_states(pool_rows, config.pool_states)
    test = data["test"].shuffle(seed=0, keep_in_memory=True)  # the same test rows for every seed and method
    return {
        "seed_labels": labelled.select(range(min(config.seed_labels, labelled.num_rows))),
        "subgoal": subgoal_rows,
        "pool": pool_rows.select(distinct),
        "test": test.select(range(min(config.eval_rows, test.num_rows))),
    }


def labelled_dataset(seed_rows: Any, acquired: list[dict[str, Any]]) -> Any:
    """Seed labels + acquired labels as one Dataset with the transition features."""
    from datasets import Dataset, concatenate_datasets

    from swirl.builders.minigrid import minigrid_features

    features = minigrid_features()
    base = seed_rows.select_columns(list(features)).cast(features)
    if not acquired:
        return base
    extra = Dataset.from_list([{name: row[name] for name in features} for row in acquired], features=features)
    return concatenate_datasets([base, extra])


# ---------------------------------------------------------------------------------------- the models
INVERSE_DIRS = {"sparse": "sparse_idm", "dense": "dense_idm", "llm": "idm"}  # where a stage keeps its inverse model


def action_labels(env_ids: Any) -> list[str]:
    from swirl.envs.minigrid_env import action_texts

    return list(dict.fromkeys(a for env_id in sorted(set(env_ids)) for a in action_texts(env_id)))


def train_structured(config: WAVConfig, states: Any, next_states: Any, actions: Any | None, out: Path,
                     init: Path | None, steps: int, vocabulary_states: Any, seed: int) -> dict[str, Any]:
    """A structured forward model (``actions`` given) or subgoal generator, saved to ``out`` (main process)."""
    if is_main_process():
        from swirl.wav.structured import StructuredModel, train_structured_model

        start = time.perf_counter()
        model = train_structured_model(
            states, next_states, actions, code_names=action_labels(config.env_ids) if actions is not None else None,
            latent_codes=config.structured_codes, steps=steps, batch_size=config.structured_batch_size,
            learning_rate=config.structured_learning_rate, init=StructuredModel.load(init) if init else None,
            vocabulary_states=vocabulary_states, seed=seed)
        model.save(out)
        return {"steps": steps, "rows": len(states), "seconds": time.perf_counter() - start}
    return {}


def train_forward_model(config: WAVConfig, tokenizer: Any, labelled: Any, test: Any, stage: Path,
                        previous: Path | None, seed: int, vocabulary_states: Any = ()) -> dict[str, Any]:
    """The stage's ``fwm``: from scratch on the seed labels, or continuing ``previous``'s on the grown set."""
    if config.backend == "structured":
        return train_structured(config, labelled["state"], labelled["next_state"], labelled["action"], stage / "fwm",
                                previous / "fwm" if previous else None,
                                config.structured_round_steps if previous else config.structured_steps,
                                vocabulary_states, seed)
    return train_adapter(config, tokenizer, "fwm", labelled, test, stage, previous / "fwm" if previous else None,
                         config.round_steps if previous else config.warm_start_steps, seed)


def train_inverse_model(config: WAVConfig, tokenizer: Any, labelled: Any, test: Any, stage: Path,
                        previous: Path | None, seed: int) -> dict[str, Any]:
    """The sparse or dense IDM (main process; seconds) or the LLM ``idm`` adapter (SFT, every process)."""
    if config.inverse_model in ("sparse", "dense"):
        if is_main_process():
            from swirl.wav.sparse_idm import train_sparse_idm

            model = train_sparse_idm(labelled["state"], labelled["action"], labelled["next_state"],
                                     action_labels(labelled["env_id"]), steps=config.sparse_idm_steps,
                                     l1_weight=config.sparse_idm_l1, dense=config.inverse_model == "dense", seed=seed)
            model.save(stage / INVERSE_DIRS[config.inverse_model])
            return {"kept_features": model.kept_features(), "num_features": len(model.config.features)}
        return {}
    return train_adapter(config, tokenizer, "idm", labelled, test, stage, previous / "idm" if previous else None,
                         config.round_steps if previous else config.warm_start_steps, seed)


def train_adapter(config: WAVConfig, tokenizer: Any, role: str, rows: Any, test: Any, stage: Path,
                  init: Path | None, steps: int, seed: int) -> dict[str, Any]:
    from swirl.sft import sft_adapter

    eval_rows = test.select(range(min(config.sft_eval_rows, test.num_rows)))  # 0 rows: no eval loss
    metrics = sft_adapter(config.model, tokenizer, role, rows, eval_rows, stage / role, init_adapter=init,
                          lora=(config.lora_r, config.lora_alpha, config.lora_dropout), dtype=config.dtype,
                          steps=steps, learning_rate=config.sft_learning_rate, batch_size=config.sft_batch_size,
                          seed=seed, trainer_dir=stage / "trainer" / role, view=config.state_view,
                          lora_layers=config.lora_layers, tracking=config,
                          stage=f"{os.path.relpath(stage, config.output_dir)}/{role}")
    wait_for_everyone()
    return metrics


def round_models(config: WAVConfig, tokenizer: Any, warm: Path, stage: Path, before: Path | None,
                 seed: int) -> WorldModels:
    """A round's world models (main process): ``stage``'s forward and inverse models, the warm start's subgoal
    generator and, for ``progress``, the forward model ``before`` the round's training."""
    from swirl.wav.sparse_idm import SparseIDM, try_predict

    inverse_dir = stage / INVERSE_DIRS[config.inverse_model]
    if config.backend == "structured":
        from swirl.wav.structured import StructuredModel

        return StructuredWorldModels(StructuredModel.load(stage / "fwm"), StructuredModel.load(warm / "subgoal"),
                                     SparseIDM.load(inverse_dir), StructuredModel.load(before) if before else None,
                                     temperature=config.temperature, seed=seed)
    from swirl.sampling import load_world_model

    adapters = {"fwm": stage / "fwm", "subgoal": warm / "subgoal"}
    if before is not None:  # only the progress score reads the previous round's fwm
        adapters["fwm_before"] = before
    if config.inverse_model == "llm":
        adapters["idm"] = inverse_dir
    model, sampler = load_world_model(config.model, tokenizer, adapters, sampler=config.sampler, dtype=config.dtype,
                                      seed=seed)
    if config.inverse_model != "llm":
        structured = SparseIDM.load(inverse_dir)
        inverse = lambda states, next_states: try_predict(structured, states, next_states)  # noqa: E731
    else:
        inverse = llm_inverse(config, tokenizer, sampler)
    return LLMWorldModels(model, tokenizer, sampler, inverse, view=config.state_view, temperature=config.temperature,
                          top_p=config.top_p, max_state_tokens=config.max_state_tokens)


def llm_inverse(config: WAVConfig, tokenizer: Any, sampler: Any) -> Callable:
    """The ``idm`` adapter as an inverse model: greedy actions; ``None`` where s' does not parse (with ``diff`` the
    IDM reads diff(s, s'))."""
    from swirl.errors import StateParseError
    from swirl.models.prompts import idm_prompt

    view = config.state_view

    def show(state: str, next_state: str) -> str | None:
        try:
            return view.answer(state, next_state)
        except StateParseError:
            return None

    def inverse(states, next_states):
        shown = [show(s, n) for s, n in zip(states, next_states)]
        valid = [i for i, text in enumerate(shown) if text is not None]
        answers = sampler.generate([idm_prompt(tokenizer, states[i], shown[i], view) for i in valid],
                                   adapter="idm", temperature=0, max_new_tokens=config.max_action_tokens)
        actions: list[str | None] = [None] * len(states)
        for i, answer in zip(valid, answers):
            actions[i] = answer[0]
        return actions
    return inverse


def evaluate_round(config: WAVConfig, tokenizer: Any, warm: Path, stage: Path, test: Any, seed: int,
                   equivalent: list[list[int]] | None = None) -> dict[str, Any]:
    """The stage's forward and inverse models on the test rows (either backend; ``equivalent``: the rows' equivalent
    actions, computed once per run)."""
    from swirl.evaluation.world_model import world_model_metrics

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


def save_initial_adapter(config: WAVConfig, out: Path) -> None:
    """The untrained LoRA (B = 0: exactly the base model)."""
    from swirl.models.adapters import lora_config, save_adapter, top_layers, with_adapters
    from swirl.models.loading import load_base_model
    from swirl.models.vision import lora_target_modules

    base = load_base_model(config.model, dtype=config.dtype)
    layers = top_layers(base, config.lora_layers) if config.lora_layers is not None else None
    initial = with_adapters(base, {"default": lora_config(config.lora_r, config.lora_alpha, config.lora_dropout,
                                                          lora_target_modules(base), layers)})
    save_adapter(initial, "default", out)


def finish_round(config: WAVConfig, stage: Path, record: dict[str, Any], start: float) -> None:
    """Mark a round complete (its ``metrics.json``, written last), log its evaluation and the score's correlation
    with the oracle to the run's trackers at its number of labels, and print the line that ends it."""
    from swirl.progress import show_stage_end
    from swirl.tracking import log_stage, stage_scalars

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
    oracle = scorer.oracle()
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
    from swirl.data import save_dataset_dict

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
            from swirl.errors import SwirlError

            raise SwirlError(f"the pool is exhausted after round {k - 1}: raise pool_states or lower budget")
        if is_main_process():
            if not (stage / "selected.json").exists():
                write_json_atomic(stage / "selected.json", select_candidates(config, method, tokenizer, warm, previous,
                                                                      before, remaining, seed * 1000 + k, simulate))
            selection = json.loads((stage / "selected.json").read_text())
            acquired = execute_selected([Candidate.from_json(c) for c in selection["selected"]], k, journal, execute)
            if not (stage / "labelled").exists():
                from datasets import DatasetDict

                save_dataset_dict(DatasetDict({"labelled": labelled_dataset(parts["seed_labels"], acquired)}),
                                  stage / "labelled", overwrite=True)
        wait_for_everyone()
        from datasets import load_from_disk

        labelled = load_from_disk(str(stage / "labelled"))["labelled"]
        training = {
            "fwm": train_forward_model(config, tokenizer, labelled, parts["test"], stage, previous, seed * 1000 + k),
            "inverse": train_inverse_model(config, tokenizer, labelled, parts["test"], stage, previous, seed * 1000 + k),
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
    from swirl.data import convert_state_texts, load_dataset_dict
    from swirl.models.loading import load_tokenizer
    from swirl.progress import disable_progress_bars

    if config.disable_tqdm:
        disable_progress_bars()
    distributed_state()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_fingerprint(config, output_dir / FINGERPRINT)
    data = convert_state_texts(load_dataset_dict(prepare_dataset(config, 0)), config.state_text)
    tokenizer = load_tokenizer(config.model) if config.backend == "llm" else None
    simulate = Simulator()  # shared by every seed and method: a candidate's true next state is simulated once
    equivalent = None  # the test rows' equivalent actions: the same rows for every seed, computed once
    parts: dict[str, Any] = {}
    for seed, method in bar([(seed, method) for seed in config.seeds for method in config.methods],
                            desc="WAV runs", unit="run", leave=True):
        if parts.get("seed") != seed:  # the runs come seed by seed: split each seed's data once
            parts = split_data(config, data, seed) | {"seed": seed}
            if equivalent is None and is_main_process():
                from swirl.envs.identifiability import equivalent_actions_for_rows

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
    from dataclasses import asdict

    from swirl.config_fields import field_defaults

    refuse_other_settings(path, {key: value for key, value in asdict(config).items() if key not in RESUMABLE_FIELDS},
                          defaults=field_defaults(type(config)),
                          write=is_main_process())


def acquire_for_swirl(config: Any, data_path: Path) -> Path:
    """SWIRL with WAV: acquire labels with ``config.acquisition``, then return a dataset whose ``labelled`` split
    is the seed labels + the acquired ones (``state_only`` and ``test`` unchanged), for the warm start.

    ``config`` is a :class:`swirl.training.config.SwirlConfig`; the acquisition runs under
    ``<output_dir>/acquisition/`` (resumable like any WAV run) and reuses its model and SFT settings.
    """
    from dataclasses import fields

    from datasets import DatasetDict, load_from_disk

    from swirl.config_fields import LoRAModelFields
    from swirl.data import convert_state_texts, load_dataset_dict, save_dataset_dict

    out = Path(config.output_dir) / "data_acquired"
    sft_steps = config.sft_steps if config.acquisition_sft_steps is None else config.acquisition_sft_steps
    wav = WAVConfig(output_dir=str(Path(config.output_dir) / "acquisition"), method=config.acquisition,
                    seeds=[config.seed], dataset=str(data_path),
                    eval_rows=config.eval_rows if config.acquisition_eval_rows is None else config.acquisition_eval_rows,
                    rounds=config.acquisition_rounds, budget=config.acquisition_budget,
                    seed_labels=config.acquisition_seed_labels, pool_states=config.acquisition_pool_states,
                    subgoals=config.acquisition_subgoals, score_loss=config.acquisition_score_loss,
                    backend=config.acquisition_backend,
                    **{f.name: getattr(config, f.name) for f in fields(LoRAModelFields)}, warm_start_steps=sft_steps,
                    subgoal_steps=sft_steps, round_steps=max(1, sft_steps // 4),
                    sft_learning_rate=config.sft_learning_rate, sft_batch_size=config.sft_batch_size,
                    temperature=config.temperature, top_p=config.top_p, max_state_tokens=config.max_state_tokens,
                    max_action_tokens=config.max_action_tokens, sampler=config.sampler,
                    state_format=config.state_format, state_text=config.state_text,
                    report_to=config.report_to, project=config.project, disable_tqdm=config.disable_tqdm,
                    run_name=f"{tracking.run_name(config)}/acquisition")
    run_acquisition(wav)  # finished rounds are skipped; other settings than the first run's are refused
    if is_main_process() and not out.exists():
        data = convert_state_texts(load_dataset_dict(data_path), config.state_text)
        run_dir = Path(wav.output_dir) / f"seed_{config.seed}" / config.acquisition
        if wav.rounds:
            labelled = load_from_disk(str(run_dir / f"round_{wav.rounds}" / "labelled"))["labelled"]
        else:
            labelled = labelled_dataset(split_data(wav, data, config.seed)["seed_labels"], [])
        columns = list(labelled.features)
        save_dataset_dict(DatasetDict({"labelled": labelled, "state_only": data["state_only"].select_columns(columns),
                                       "test": data["test"].select_columns(columns)}), out)
    wait_for_everyone()
    return out
