"""The two SWIRL phases, each one GRPO run of TRL's ``GRPOTrainer`` on one adapter of the shared base.

Phase I (variational information maximisation): the FWM is the policy. State-only pairs (s, s') are first
annotated with a latent action z, the frozen IDM's greedy decoding, kept only when z's mean token
log-prob is at least ``annotation_min_logprob``; then GRPO samples G next states per prompt (s, z), each
rewarded by :class:`~swirl.training.rewards.IDMActionReward`.

Phase II (ELBO maximisation): the IDM is the policy, prompt (s, s'), G sampled actions, each rewarded by
:class:`~swirl.training.rewards.FWMStateReward`.

In both, the policy adapter is loaded under the name ``default`` (TRL trains that one) and the scorer
under its role name; with ``beta > 0`` GRPOTrainer adds a frozen ``ref`` adapter copied from ``default``
at construction: exactly the phase-start reference the KL term needs (not the bare base model).

Each phase draws its prompts with its own seed (:func:`phase_seed`: from the run's seed, the iteration and the
phase); with one seed for all, TRL's sampler drew the same prompts in the same order in every phase. With
``phase_steps: None`` a phase makes one pass over its pairs; either way its summary records how many distinct
pairs the rewards were called on (``distinct_pairs_trained``) beside how many it had (``pairs_available``).

With image states (``config.state_view``), prompts are conversations with image placeholders and each row
carries its ``images`` (phase I: s; phase II: s and s'), which TRL feeds to the VLM's processor.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from datasets import concatenate_datasets
from trl import GRPOConfig, GRPOTrainer

from swirl.distributed import distributed_state
from swirl.errors import SwirlError
from swirl.models.adapters import save_adapter, with_adapters
from swirl.models.loading import load_base_model
from swirl.models.prompts import (completion, end_of_answer, images_for_row, prompt_for_row, trl_prompt,
                                  trl_prompt_for_row)
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import StateView, TEXT_VIEW
from swirl.progress import use_stage_bar
from swirl.tracking import route_tensorboard, tensorboard_dir, trainer_tracking
from swirl.training.swirl_config import RunConfig
from swirl.training.rewards import FWMStateReward, IDMActionReward, ObservedNextStateReward
from swirl.training.shared_prompt import SharedPromptGRPOTrainer

PHASE_ROLES = {1: ("fwm", "idm"), 2: ("idm", "fwm")}  # phase -> (policy, frozen scorer)
ANNOTATION_CHUNK = 512  # state-only pairs annotated per sampler/scorer call


def phase_seed(seed: int, iteration: int, phase: int) -> int:
    """The seed of one phase's trainer (its prompt order and samples): distinct for every (iteration, phase) of a
    run, the same on a rerun."""
    return seed * 1000 + 2 * iteration + phase


def planned_phase_steps(config: RunConfig, pairs: int, processes: int = 1) -> int:
    """``phase_steps``, or with ``None`` one pass over ``pairs``: every step takes ``prompts_per_step`` prompts on
    each of ``processes``."""
    if config.phase_steps is not None:
        return config.phase_steps
    return max(1, math.ceil(pairs / (config.prompts_per_step * processes)))


def padded_to_whole_steps(dataset: Any, prompts_per_step: int) -> Any:
    """``dataset`` with its first rows repeated at the end until its length is a multiple of ``prompts_per_step``:
    TRL's sampler drops an epoch's last incomplete batch, so without this a one-pass phase would never train on
    up to ``prompts_per_step - 1`` of its pairs (and on none with fewer pairs than one step takes)."""
    missing = -dataset.num_rows % prompts_per_step
    if missing == 0 or dataset.num_rows == 0:
        return dataset
    repeats = [dataset] * (missing // dataset.num_rows) + [dataset.select(range(missing % dataset.num_rows))]
    return concatenate_datasets([dataset, *repeats])


def grpo_args(config: RunConfig, output_dir: Path, max_completion_length: int, stage: str, seed: int,
              steps: int, reward_weights: list[float] | None = None) -> Any:
    """TRL ``GRPOConfig`` for one phase (CPU settings switched on when there is no GPU), reporting to the run's
    trackers as ``<run_name>/<stage>``."""
    gpu = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(output_dir),
        learning_rate=config.learning_rate,
        beta=config.beta,
        num_generations=config.num_generations,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        max_completion_length=max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        max_steps=steps,
        reward_weights=reward_weights,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        seed=seed,
        use_cpu=not gpu,
        bf16=gpu and torch.cuda.is_bf16_supported(),
        activation_checkpointing=False,
        disable_tqdm=True,  # the stage's own bar replaces the trainer's (swirl.progress.use_stage_bar)
        **trainer_tracking(config, stage),
    )


def last_checkpoint(trainer_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder of a phase, to resume from."""
    checkpoints = sorted(trainer_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1]))
    complete = [path for path in checkpoints if (path / "trainer_state.json").is_file()]
    return str(complete[-1]) if complete else None


def annotate_latent_actions(model: Any, tokenizer: Any, sampler: Any, pairs: Any, config: RunConfig) -> tuple[Any, dict]:
    """Phase I data: the frozen IDM's greedy action z for each state-only pair, kept if confident enough."""
    view = config.state_view
    actions: list[str] = []
    confidences: list[float] = []
    for start in range(0, pairs.num_rows, ANNOTATION_CHUNK):  # decoded images of one chunk at a time in memory
        rows = list(pairs.select(range(start, min(start + ANNOTATION_CHUNK, pairs.num_rows))))
        prompts = [prompt_for_row(tokenizer, "idm", row, view) for row in rows]
        images = [images_for_row("idm", row, view) for row in rows] if view.has_images else None
        chunk = [answers[0] for answers in sampler.generate(prompts, adapter="idm", temperature=0,
                                                           max_new_tokens=config.max_action_tokens, images=images)]
        scored = [completion(tokenizer, a if a else end_of_answer(tokenizer)) for a in chunk]
        confidences += log_likelihood(model, tokenizer, prompts, scored, adapter="idm", images=images).mean.tolist()
        actions += chunk
    confidence = torch.tensor(confidences)
    keep = [i for i, (a, c) in enumerate(zip(actions, confidences)) if a and c >= config.annotation_min_logprob]
    kept = pairs.select(keep).add_column("latent_action", [actions[i] for i in keep])
    kept = kept.add_column("latent_logprob", [confidences[i] for i in keep])  # to choose the threshold by

    def fwm_example(row: dict) -> dict:
        example = {"prompt": trl_prompt(tokenizer, "fwm", view, state=row["state"], action=row["latent_action"])}
        return example | ({"images": images_for_row("fwm", row, view)} if view.has_images else {})

    kept = kept.map(fwm_example, keep_in_memory=True)
    stats = {"annotated_pairs": len(actions), "kept_pairs": len(keep), "keep_rate": len(keep) / max(1, len(actions)),
             "mean_annotation_logprob": float(confidence.mean()) if len(actions) else float("nan"),
             "latent_action_counts": dict(Counter(actions[i] for i in keep).most_common())}
    return kept, stats


def phase2_dataset(tokenizer: Any, pairs: Any, view: StateView = TEXT_VIEW) -> Any:
    def idm_example(row: dict) -> dict:
        example = {"prompt": trl_prompt_for_row(tokenizer, "idm", row, view)}  # with diff: (s, diff(s, s'))
        return example | ({"images": images_for_row("idm", row, view)} if view.has_images else {})

    return pairs.map(idm_example, keep_in_memory=True)


def grpo_trainer(phase: int, config: RunConfig, tokenizer: Any, adapters: dict[str, Path], train_dataset: Any,
                 phase_dir: Path, iteration: int = 1) -> tuple[Any, Any]:
    """The phase's ``GRPOTrainer``, untrained, and the ``PeftModel`` it trains: the policy adapter (from
    ``adapters[policy]``) under ``default``, the frozen scorer under its role name and, with ``beta > 0``, TRL's
    frozen ``ref`` copy of ``default``, the KL reference (checked here: TRL falls back to the bare base model,
    adapters disabled, when it cannot add ``ref``)."""
    policy, scorer = PHASE_ROLES[phase]
    base = load_base_model(config.model, dtype=config.dtype, device="cpu")
    model = with_adapters(base, {"default": adapters[policy], scorer: adapters[scorer]})
    reward_class = IDMActionReward if phase == 1 else FWMStateReward
    state = distributed_state()
    pair_log = phase_dir / f"pairs_seen.rank{state.process_index}.jsonl"  # counted by run_grpo_phase
    phase_dir.mkdir(parents=True, exist_ok=True)
    rewards = [reward_class(model, tokenizer, adapter=scorer, clip=config.reward_clip, view=config.state_view,
                            pair_log=pair_log)]
    weights = None
    if phase == 1 and config.phase1_anchor > 0:  # the optional anchor to the observed s' (rewards.py)
        rewards.append(ObservedNextStateReward(tokenizer, view=config.state_view))
        weights = [1.0, config.phase1_anchor]
    max_length = config.max_state_tokens if phase == 1 else config.max_action_tokens
    columns = ["prompt", "state", "next_state"] + (["latent_action"] if phase == 1 else [])
    columns += ["images"] if config.state_view.has_images else []  # not image/next_image: TRL reads an "image" column
    stage = f"{phase_dir.parent.name}/{phase_dir.name}"  # iter_<k>/phase<n>
    steps = planned_phase_steps(config, train_dataset.num_rows, state.num_processes)
    args = grpo_args(config, phase_dir / "trainer", max_length, stage, phase_seed(config.seed, iteration, phase), steps,
                     weights)
    trainer_class = SharedPromptGRPOTrainer if config.shared_prompt else GRPOTrainer
    prompts = padded_to_whole_steps(train_dataset.select_columns(columns), config.prompts_per_step * state.num_processes)
    trainer = trainer_class(model=model, reward_funcs=rewards, args=args, train_dataset=prompts,
                            processing_class=tokenizer)
    use_stage_bar(trainer, f"{stage} GRPO ({policy})")
    route_tensorboard(trainer, tensorboard_dir(config, stage))
    if config.beta > 0 and "ref" not in model.peft_config:
        raise SwirlError(f"phase {phase}: TRL added no frozen 'ref' adapter, so its KL reference would be the bare "
                         f"base model, not the phase-start {policy} adapter (upgrade peft to >= 0.20)")
    return trainer, model


def run_grpo_phase(phase: int, config: RunConfig, tokenizer: Any, adapters: dict[str, Path], train_dataset: Any,
                   phase_dir: Path, iteration: int = 1) -> dict[str, Any]:
    """Train the phase's policy adapter with GRPO; save both adapters under ``phase_dir``; return a summary,
    with the distinct (s, s') pairs the phase's rewards saw over all processes and runs (a resumed phase's
    earlier steps included: each process appends them to ``pairs_seen.rank<k>.jsonl``)."""
    policy, scorer = PHASE_ROLES[phase]
    trainer_dir = phase_dir / "trainer"
    trainer, model = grpo_trainer(phase, config, tokenizer, adapters, train_dataset, phase_dir, iteration)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=last_checkpoint(trainer_dir))
    train_seconds = time.perf_counter() - start
    reward = trainer.reward_funcs[0]
    trainer.accelerator.wait_for_everyone()
    seen = {tuple(json.loads(line)) for log in phase_dir.glob("pairs_seen.rank*.jsonl") for line in log.open()}
    if trainer.accelerator.is_main_process:
        save_adapter(model, "default", phase_dir / policy)
        if (phase_dir / scorer).exists():
            shutil.rmtree(phase_dir / scorer)
        shutil.copytree(adapters[scorer], phase_dir / scorer)
    trainer.accelerator.wait_for_everyone()
    steps = [entry for entry in trainer.state.log_history if "reward" in entry]
    summary_keys = ("reward", "reward_std", "kl", "completions/mean_length", "parse_rate",
                    "rewards/observed_next_state/mean")
    return {
        "phase": phase,
        "policy": policy,
        "steps": len(steps),
        "max_steps": trainer.args.max_steps,
        "seed": trainer.args.seed,
        "pairs_available": len(set(zip(train_dataset["state"], train_dataset["next_state"]))),
        "distinct_pairs_trained": len(seen),
        "train_seconds": train_seconds,
        # the share of sampled answers the scorer really scored (each distinct one once; None: none to score)
        "scored_share": reward.scored_answers / reward.requested_answers if reward.requested_answers else None,
        "first_step": {key: steps[0].get(key) for key in summary_keys} if steps else {},
        "last_step": {key: steps[-1].get(key) for key in summary_keys} if steps else {},
        "log": steps,
    }
