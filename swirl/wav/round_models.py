"""The models of a WAV round: train the forward model, the inverse model (sparse, dense or the LLM ``idm``) and the
subgoal generator on either backend (structured networks or LoRA adapters), and load a round's models behind the
:class:`swirl.wav.world_models.WorldModels` interface the scores use."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from swirl.distributed import is_main_process, wait_for_everyone
from swirl.envs.minigrid_env import action_texts
from swirl.errors import StateParseError
from swirl.models.adapters import is_adapter_dir, lora_config, save_adapter, top_layers, with_adapters
from swirl.models.loading import load_base_model
from swirl.models.prompts import idm_prompt
from swirl.models.state_view import StateView
from swirl.models.vision import lora_target_modules
from swirl.paths import write_json_atomic
from swirl.sampling import load_world_model
from swirl.sft import sft_adapter
from swirl.wav.wav_config import WAVConfig
from swirl.wav.sparse_idm import SparseIDM, train_sparse_idm, try_predict
from swirl.wav.structured import StructuredModel, train_structured_model
from swirl.wav.world_models import LLMWorldModels, StructuredWorldModels, WorldModels

SFT_METRICS = "sft_metrics.json"  # an adapter's SFT metrics, beside its trainer's files
INVERSE_DIRS = {"sparse": "sparse_idm", "dense": "dense_idm", "llm": "idm"}  # where a stage keeps its inverse model


def round_seed(seed: int, round_index: int) -> int:
    """The seed of round ``round_index`` of a run with ``seed``: its selection (random's scores, sampling) and its
    models' training. Distinct for every round of a seed, the same on a rerun."""
    return seed * 1000 + round_index


def action_labels(env_ids: Any) -> list[str]:
    return list(dict.fromkeys(a for env_id in sorted(set(env_ids)) for a in action_texts(env_id)))


def train_structured(config: WAVConfig, states: Any, next_states: Any, actions: Any | None, out: Path,
                     init: Path | None, steps: int, vocabulary_states: Any, seed: int) -> dict[str, Any]:
    """A structured forward model (``actions`` given) or subgoal generator, saved to ``out`` (main process)."""
    if is_main_process():
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
    """SFT of one adapter: from scratch at ``sft_learning_rate`` or, in a round (``init`` given), continuing
    ``init`` at ``round_learning_rate`` where one is set.

    An adapter the stage already holds is kept, not trained again: saves are atomic, so it is whole, and the run's
    folder holds one set of settings, so it is what this call would train. A warm start killed after its hour of
    forward-model SFT resumes at the subgoal generator. The SFT metrics come back from ``trainer/<role>/`` with
    ``"reused": true``."""
    adapter, record = stage / role, stage / "trainer" / role / SFT_METRICS
    if is_adapter_dir(adapter):
        return (json.loads(record.read_text()) if record.exists() else {}) | {"reused": True}
    eval_rows = test.select(range(min(config.sft_eval_rows, test.num_rows)))  # 0 rows: no eval loss
    continuing = init is not None and config.round_learning_rate is not None
    learning_rate = config.round_learning_rate if continuing else config.sft_learning_rate
    metrics = sft_adapter(config.model, tokenizer, role, rows, eval_rows, adapter, init_adapter=init,
                          lora=(config.lora_r, config.lora_alpha, config.lora_dropout), dtype=config.dtype,
                          steps=steps, learning_rate=learning_rate, batch_size=config.sft_batch_size,
                          seed=seed, trainer_dir=record.parent, view=config.state_view,
                          lora_layers=config.lora_layers, group_by_length=config.sft_group_by_length,
                          tracking=config,
                          stage=f"{os.path.relpath(stage, config.output_dir)}/{role}")
    if is_main_process():
        write_json_atomic(record, metrics)
    wait_for_everyone()
    return metrics


def round_models(config: WAVConfig, tokenizer: Any, warm: Path, stage: Path, before: Path | None,
                 seed: int) -> WorldModels:
    """A round's world models (main process): ``stage``'s forward and inverse models, the warm start's subgoal
    generator and, for ``progress``, the forward model ``before`` the round's training."""
    inverse_dir = stage / INVERSE_DIRS[config.inverse_model]
    if config.backend == "structured":
        return StructuredWorldModels(StructuredModel.load(stage / "fwm"), StructuredModel.load(warm / "subgoal"),
                                     SparseIDM.load(inverse_dir), StructuredModel.load(before) if before else None,
                                     temperature=config.temperature, seed=seed)
    adapters = {"fwm": stage / "fwm", "subgoal": warm / "subgoal"}
    if before is not None:  # the previous round's fwm: read by the progress score alone, loaded for every method
        adapters["fwm_before"] = before
    if config.inverse_model == "llm":
        adapters["idm"] = inverse_dir
    model, sampler = load_world_model(config.model, tokenizer, adapters, sampler=config.sampler, dtype=config.dtype,
                                      seed=seed)
    structured = SparseIDM.load(inverse_dir) if config.inverse_model != "llm" else None
    if structured is not None:
        inverse = lambda states, next_states: try_predict(structured, states, next_states)  # noqa: E731
    else:
        inverse = llm_inverse(config, tokenizer, sampler)
    return LLMWorldModels(model, tokenizer, sampler, inverse, view=config.state_view, temperature=config.temperature,
                          top_p=config.top_p, max_state_tokens=config.max_state_tokens, sparse_idm=structured)


def llm_inverse(config: WAVConfig, tokenizer: Any, sampler: Any) -> Callable:
    """The ``idm`` adapter as an inverse model, with the run's state view and action length."""
    return adapter_inverse(config.state_view, tokenizer, sampler, config.max_action_tokens)


def adapter_inverse(view: StateView, tokenizer: Any, sampler: Any, max_action_tokens: int) -> Callable:
    """The ``idm`` adapter as an inverse model: greedy actions; ``None`` where s' does not parse (with ``diff`` the
    IDM reads diff(s, s'))."""

    def show(state: str, next_state: str) -> str | None:
        try:
            return view.answer(state, next_state)
        except StateParseError:
            return None

    def inverse(states, next_states):
        shown = [show(s, n) for s, n in zip(states, next_states)]
        valid = [i for i, text in enumerate(shown) if text is not None]
        answers = sampler.generate([idm_prompt(tokenizer, states[i], shown[i], view) for i in valid],
                                   adapter="idm", temperature=0, max_new_tokens=max_action_tokens)
        actions: list[str | None] = [None] * len(states)
        for i, answer in zip(valid, answers):
            actions[i] = answer[0]
        return actions
    return inverse


def save_initial_adapter(config: WAVConfig, out: Path) -> None:
    """The untrained LoRA (B = 0: exactly the base model)."""
    base = load_base_model(config.model, dtype=config.dtype)
    layers = top_layers(base, config.lora_layers) if config.lora_layers is not None else None
    initial = with_adapters(base, {"default": lora_config(config.lora_r, config.lora_alpha, config.lora_dropout,
                                                          lora_target_modules(base), layers)})
    save_adapter(initial, "default", out)
