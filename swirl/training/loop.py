"""The SWIRL loop: warm start, then ``iterations`` x (phase I -> eval -> phase II -> eval), resumable.

Layout under ``output_dir``::

    data/                   the dataset (when built by the run)
    warmstart/{fwm,idm}/    SFT adapters; warmstart/metrics.json
    iter_1/phase1/{fwm,idm}/, iter_1/phase1/metrics.json, iter_1/phase1/trainer/checkpoint-N/
    iter_1/phase1/latent_actions.jsonl   the state-only pairs phase I kept, with the IDM's latent action and its
                                         mean token log-prob
    iter_1/phase2/...
    metrics.jsonl           one line per evaluation, rebuilt from the stages' metrics.json
    swirl_config.json       the run's config (``swirl eval`` reads state_text / state_format / state_modality)

A stage is complete when its ``metrics.json`` exists (written last, atomically). Rerunning the same
command skips complete stages and resumes an interrupted phase from its last checkpoint, so a crash or
``kill -9`` loses at most ``save_steps`` GRPO steps and repeats no completed stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from swirl.builders.prepare import prepare_dataset
from swirl.data import check_state_images
from swirl.distributed import is_main_process, wait_for_everyone
from swirl.envs.domain import get_domain
from swirl.errors import SwirlError
from swirl.evaluation.plots import plot_confusion, plot_stages
from swirl.evaluation.rollouts import rollout_accuracy
from swirl.evaluation.world_model import carry_over, evaluate_world_model
from swirl.hub import ensure_hub_reachable
from swirl.models.loading import load_tokenizer
from swirl.models.vision import require_vlm
from swirl.paths import RUN_CONFIG, stage_done, write_json_atomic, write_text_atomic
from swirl.progress import bar, disable_progress_bars, show_stage_end
from swirl.sampling import load_world_model
from swirl.tracking import log_stage, stage_scalars
from swirl.training.swirl_config import RunConfig
from swirl.training.phases import PHASE_ROLES, annotate_latent_actions, phase2_dataset, run_grpo_phase
from swirl.training.publish import publish
from swirl.training.warm_start import load_run_data, test_sample, warm_start
from swirl.wav.swirl_labels import acquire_for_swirl


def load_stage(config: RunConfig, stage_dir: Path, tokenizer: Any) -> tuple[Any, Any]:
    """The base with the stage's ``fwm`` and ``idm`` adapters, and a sampler over it."""
    return load_world_model(config.model, tokenizer, {"fwm": stage_dir / "fwm", "idm": stage_dir / "idm"},
                            sampler=config.sampler, dtype=config.dtype, seed=config.seed)


def evaluate_stage(config: RunConfig, stage_dir: Path, test: Any, tokenizer: Any,
                   previous: Path | None = None, trained: str | None = None) -> dict[str, Any]:
    """Every FWM and IDM metric of the stage's adapters on ``test`` (and, with ``eval_rollout_horizon``, the FWM's
    open-loop rollouts from test states). A GRPO phase trains one adapter (``trained``); the other is the
    ``previous`` stage's, so its metrics are carried over from there instead of recomputed."""
    model, sampler = load_stage(config, stage_dir, tokenizer)
    roles = (trained,) if trained is not None else ("fwm", "idm")
    evaluation = evaluate_world_model(model, tokenizer, sampler, test, max_state_tokens=config.max_state_tokens,
                                      max_action_tokens=config.max_action_tokens, domain=config.domain,
                                      view=config.state_view, roles=roles)
    rollouts_apply = get_domain(config.domain).replays_actions and not config.state_view.has_images  # on text states
    if "fwm" in roles and config.eval_rollout_horizon > 0 and rollouts_apply:
        evaluation["rollouts"] = rollout_accuracy(sampler, tokenizer, test, horizon=config.eval_rollout_horizon,
                                                  max_starts=config.eval_rollout_starts,
                                                  max_state_tokens=config.max_state_tokens, view=config.state_view)
    if trained is None:
        return evaluation
    return carry_over(json.loads((previous / "metrics.json").read_text())["eval"], evaluation)


def state_only_pairs(config: RunConfig, data: Any, iteration: int | None = None) -> Any:
    """The state-only pairs of ``iteration`` (1-based): the k-th block of ``max_state_only_pairs`` rows of the pool
    shuffled with the run's seed, wrapping round to the start when the pool runs out, so that successive
    iterations annotate and train on different pairs. ``iteration=None``: every pair the run's iterations use, in
    that order (what the pseudo-labelling and oracle baselines must see). Without ``max_state_only_pairs``, the
    whole pool each time."""
    pairs = data["state_only"].shuffle(seed=config.seed, keep_in_memory=True)
    block = config.max_state_only_pairs
    if block is not None and pairs.num_rows:
        if iteration is None:
            indices = range(min(block * max(1, config.iterations), pairs.num_rows))
        else:
            indices = [(block * (iteration - 1) + offset) % pairs.num_rows for offset in range(block)]
            indices = list(dict.fromkeys(indices))  # a block larger than the pool takes each pair once
        pairs = pairs.select(indices)
    return pairs.select_columns(["state", "next_state"] + (["image", "next_image"] if config.state_view.has_images else []))


def check_image_run(config: RunConfig, tokenizer: Any, data: Any, data_path: Path) -> None:
    """Image states need a VLM and a dataset with state images: say so before any training."""
    require_vlm(config.state_view, tokenizer, config.model)
    check_state_images(data, data_path)


def finish_stage(config: RunConfig, stage_dir: Path, metrics: dict[str, Any], step: int, start: float) -> None:
    """Mark a stage complete (its ``metrics.json``, written last), send its numbers to the run's trackers at the
    stage's last step, and print the line that ends it (main process)."""
    seconds = time.perf_counter() - start
    write_json_atomic(stage_dir / "metrics.json", metrics | {"seconds": seconds})
    stage = str(stage_dir.relative_to(config.output_dir))
    scalars = stage_scalars(metrics["eval"], metrics["training"])
    log_stage(config, stage, scalars, step)
    headline = get_domain(config.domain).headline_metrics
    shown = {name: metrics["eval"].get(name) for name in headline[:2] + headline[4:5]}  # two of the FWM's, one IDM's
    shown |= {name: scalars.get(f"phase/{name}") for name in ("reward", "kl")}
    show_stage_end(stage, seconds, shown)


def rebuild_metrics_log(output_dir: Path, stages: list[Path]) -> None:
    lines = []
    for stage in stages:
        if stage_done(stage):
            metrics = json.loads((stage / "metrics.json").read_text())
            lines.append(json.dumps({"stage": str(stage.relative_to(output_dir)), **metrics["eval"]}))
    write_text_atomic(output_dir / "metrics.jsonl", "".join(line + "\n" for line in lines))


# What the saved adapters were trained to read and write: a rerun must not resume them with other settings.
SAME_ON_RESUME = ("model", "state_text", "state_format", "state_front_cell", "state_modality", "lora_layers",
                  "lora_r")


def check_resumable(config: RunConfig, path: Path) -> None:
    """Refuse to resume a run folder whose stages were trained with another model, state text or format."""
    if not path.is_file():
        return
    recorded, current = json.loads(path.read_text()), asdict(config)
    changed = [key for key in SAME_ON_RESUME if key in current and recorded.get(key, current[key]) != current[key]]
    if changed:
        raise SwirlError(f"{path.parent} was trained with other settings ({', '.join(f'{key}: {recorded[key]!r}' for key in changed)}); "
                         f"use another output_dir or the original settings")


def run_swirl(config: RunConfig, command: str = "") -> list[dict[str, Any]]:
    """Run (or resume) the whole loop; return the per-stage evaluation lines.

    Writes ``<output_dir>/hub/`` (the final adapters and their model card) at the end, and pushes it when
    ``push_to_hub`` is set; the Hub is checked before any work so an offline machine fails at once.
    """
    if config.disable_tqdm:
        disable_progress_bars()
    if config.push_to_hub:
        ensure_hub_reachable()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(config, output_dir / RUN_CONFIG)
    if is_main_process():  # `swirl eval` reads the run's prompt and answer formats from here
        write_json_atomic(output_dir / RUN_CONFIG, asdict(config))
    data_path = prepare_dataset(config, config.seed)
    if getattr(config, "acquisition", "none") != "none":  # WAV acquisition: MiniGrid only
        data_path = acquire_for_swirl(config, data_path)
    data = load_run_data(config, data_path)
    test = test_sample(config, data, config.eval_rows)
    tokenizer = load_tokenizer(config.model)
    if config.state_view.has_images:
        check_image_run(config, tokenizer, data, data_path)
    stages = [output_dir / "warmstart"]
    run_bar = bar(desc="SWIRL stages", total=1 + 2 * config.iterations, unit="stage", leave=True)
    if not stage_done(stages[0]):
        start = time.perf_counter()
        training = warm_start(config, data_path, stages[0], tokenizer)
        if is_main_process():
            finish_stage(config, stages[0], {"training": training,
                                             "eval": evaluate_stage(config, stages[0], test, tokenizer)},
                         config.sft_steps, start)
        wait_for_everyone()
    run_bar.update()
    previous = stages[0]
    for iteration in range(1, config.iterations + 1):
        pairs = state_only_pairs(config, data, iteration)
        for phase in (1, 2):
            stage = output_dir / f"iter_{iteration}" / f"phase{phase}"
            stages.append(stage)
            if not stage_done(stage):
                start = time.perf_counter()
                adapters = {"fwm": previous / "fwm", "idm": previous / "idm"}
                extra: dict[str, Any] = {}
                if phase == 1:
                    model, sampler = load_stage(config, previous, tokenizer)
                    train, extra = annotate_latent_actions(model, tokenizer, sampler, pairs, config)
                    del model, sampler
                    if is_main_process():  # what the IDM called each kept pair: the evidence of what phase I learns
                        write_text_atomic(stage / "latent_actions.jsonl", "".join(
                            json.dumps({"state": s, "next_state": n, "latent_action": a, "logprob": c}) + "\n"
                            for s, n, a, c in zip(train["state"], train["next_state"], train["latent_action"],
                                                  train["latent_logprob"])))
                else:
                    train = phase2_dataset(tokenizer, pairs, config.state_view)
                if train.num_rows == 0:
                    raise SwirlError(f"phase {phase} of iteration {iteration} has no training pairs (annotation kept "
                                     f"none: lower annotation_min_logprob or train the warm start longer)")
                summary = run_grpo_phase(phase, config, tokenizer, adapters, train, stage, iteration)
                if is_main_process():
                    evaluation = evaluate_stage(config, stage, test, tokenizer, previous, PHASE_ROLES[phase][0])
                    finish_stage(config, stage, {"training": summary | extra, "eval": evaluation},
                                 summary["max_steps"], start)
                wait_for_everyone()
            run_bar.update()
            previous = stage
    run_bar.close()
    if is_main_process():
        rebuild_metrics_log(output_dir, stages)
    wait_for_everyone()
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    if is_main_process():
        rates = [name for name in get_domain(config.domain).headline_metrics if "mse" not in name]  # the plot's axis is a share
        plot_stages(lines, tuple(rates), output_dir / "plots" / "metrics_by_stage.png", title=str(output_dir))
        if "idm_confusion" in lines[-1]:
            plot_confusion(lines[-1]["idm_confusion"], output_dir / "plots" / "idm_confusion_final.png")
        publish(config, data, lines, previous, command)
    return lines
