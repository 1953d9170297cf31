"""World-model evaluation on a dataset split: every FWM and IDM metric of :mod:`swirl.evaluation.metrics`, overall
and per env.

The loop calls :func:`evaluate_world_model` after every stage; ``swirl eval`` calls :func:`evaluate_saved_stage`.
Predictions are greedy, made with the sampler from :mod:`swirl.sampling` and the prompts from
:mod:`swirl.models.prompts`, exactly as in training; the FWM's teacher-forced NLL of the true next state uses the
reward scorer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from swirl.data import check_state_images, convert_state_texts, domain_of, load_dataset_dict
from swirl.envs.domain import DEFAULT_DOMAIN, get_domain
from swirl.evaluation.metrics import (OTHER, best_constant_accuracy, best_constant_equivalent_accuracy,
                                      equivalent_accuracy, fwm_metrics, identifiable_share, idm_metrics, noop_share,
                                      vector_fwm_metrics, vector_idm_metrics)
from swirl.evaluation.plots import plot_confusion, plot_horizon
from swirl.evaluation.rollouts import action_following_score, rollout_accuracy
from swirl.evaluation.tables import markdown_table
from swirl.models.loading import load_tokenizer
from swirl.models.prompts import completion, images_for_row, prompt_for_row, target_for_row
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import StateView, TEXT_VIEW, state_view
from swirl.models.vision import require_vlm
from swirl.paths import find_run_config, json_safe, write_text_atomic
from swirl.sampling import STATE_STOP, load_world_model


def evaluate_world_model(model: Any, tokenizer: Any, sampler: Any, rows: Any, fwm_adapter: str = "fwm",
                         idm_adapter: str = "idm", max_state_tokens: int = 256, max_action_tokens: int = 8,
                         inverse_model: Callable[[list[str], list[str]], list[str | None]] | None = None,
                         domain: str = DEFAULT_DOMAIN, view: StateView = TEXT_VIEW,
                         roles: tuple[str, ...] = ("fwm", "idm")) -> dict[str, Any]:
    """``rows``: a labelled split (``state``, ``action``, ``next_state``, ``env_id``).

    The IDM evaluated is the ``idm_adapter`` of ``model``, or ``inverse_model(states, next_states)`` when
    given (e.g. WAV's sparse IDM; ``None`` answers count as wrong). With image states (``view``), the
    prompts show the rows' ``image`` / ``next_image`` and ``tokenizer`` is the VLM's processor.

    Returns the overall metrics as flat ``fwm_*`` / ``idm_*`` keys, plus ``per_env`` (the same per env id). For a
    domain of discrete actions (MiniGrid: :func:`swirl.evaluation.metrics.fwm_metrics`) also ``fwm_per_action`` (FWM
    metrics per true action), ``idm_per_action`` and ``idm_confusion``, and where the rows can be re-simulated
    (``seed``, ``action_prefix`` columns) ``identifiable_share``, ``noop_share`` (of the rows) and
    ``idm_equivalent_accuracy`` (an answer counts when stepping it reproduces s'; overall, per env and, as
    ``idm_equivalent_per_action``, per true action); for a continuous one (ManiSkill) the metrics are
    :func:`swirl.evaluation.metrics.vector_fwm_metrics` and :func:`swirl.evaluation.metrics.vector_idm_metrics` (MSEs after parsing).

    ``roles`` limits the work to one half, ``("fwm",)`` or ``("idm",)``, and the result to its keys: a SWIRL phase
    trains one adapter, so the loop evaluates that one and carries the other half over (:func:`carry_over`).
    """
    get_domain(domain)  # an unknown one fails here, before any generation
    if not roles or set(roles) - {"fwm", "idm"}:
        raise ValueError(f"roles must be some of fwm, idm (got {', '.join(roles) or 'none'})")
    if rows.num_rows == 0:
        raise ValueError("cannot evaluate on an empty split")
    states, actions, next_states = rows["state"], rows["action"], rows["next_state"]
    listed = list(rows) if view.has_images else [{"state": s, "action": a, "next_state": n}
                                                 for s, a, n in zip(states, actions, next_states)]

    def images(role: str) -> list[list[Any]] | None:
        return [images_for_row(role, row, view) for row in listed] if view.has_images else None

    predicted_states = predicted_actions = nll = None
    if "fwm" in roles:
        fwm_prompts = [prompt_for_row(tokenizer, "fwm", row, view) for row in listed]
        answers = [answers[0] for answers in sampler.generate(
            fwm_prompts, adapter=fwm_adapter, temperature=0, max_new_tokens=max_state_tokens,
            stop=None if view.is_diff else STATE_STOP, images=images("fwm"))]
        # metrics compare full states: a diff is applied to s first (one that does not apply counts as unparseable)
        predicted_states = [view.prediction(s, answer) for s, answer in zip(states, answers)]
        nll = -log_likelihood(model, tokenizer, fwm_prompts,
                              [completion(tokenizer, target_for_row("fwm", row, view)) for row in listed],
                              adapter=fwm_adapter, images=images("fwm")).mean
    if "idm" in roles and inverse_model is not None:
        predicted_actions = inverse_model(states, next_states)  # None (no answer) counts as OTHER below
    elif "idm" in roles:
        predicted_actions = [answers[0] for answers in sampler.generate(
            [prompt_for_row(tokenizer, "idm", row, view) for row in listed], adapter=idm_adapter, temperature=0,
            max_new_tokens=max_action_tokens, images=images("idm"))]

    return world_model_metrics(rows, predicted_states, nll, predicted_actions, domain)


def world_model_metrics(rows: Any, predicted_states: Sequence[str] | None, nll: Any, predicted_actions: Sequence[str] | None,
                        domain: str = DEFAULT_DOMAIN, equivalent: list[list[int]] | None = None,
                        breakdowns: bool = True) -> dict[str, Any]:
    """:func:`evaluate_world_model`'s metrics of given predictions on ``rows``: ``predicted_states`` (full next
    states) and ``nll`` (the FWM's NLL of each true next state, an array), ``predicted_actions`` (``None`` or
    ``OTHER`` where the IDM had no answer); either half may be ``None``. ``equivalent``: the rows' equivalent
    actions when the caller has them already (computed here otherwise, where the rows can be re-simulated).
    ``breakdowns=False`` leaves out everything per env and per action and the text metrics (BLEU, ROUGE-L): the
    flat overall metrics of the fields only, quick on thousands of rows."""
    states, actions, next_states, env_ids = rows["state"], rows["action"], rows["next_state"], rows["env_id"]
    if predicted_actions is not None:
        predicted_actions = [action or OTHER for action in predicted_actions]
    family = get_domain(domain)
    resimulable = family.equivalent_actions_for_rows is not None and {"seed", "action_prefix"} <= set(rows.column_names)
    if equivalent is None and resimulable:
        equivalent = family.equivalent_actions_for_rows(rows)  # the actions that reproduce each row's s'

    def summarise(indices: list[int]) -> dict[str, float]:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        result: dict[str, float] = {"rows": len(indices)}
        if predicted_states is not None:
            fwm = (vector_fwm_metrics(pick(states), pick(predicted_states), pick(next_states))
                   if family.continuous else
                   fwm_metrics(pick(states), pick(predicted_states), pick(next_states), text_metrics=breakdowns,
                               fields=family.state_fields))
            result |= {f"fwm_{key}": value for key, value in fwm.items()} | {"fwm_nll": float(nll[indices].mean())}
        if predicted_actions is not None and family.continuous:
            idm = vector_idm_metrics(pick(predicted_actions), pick(actions))
            result |= {f"idm_{key}": value for key, value in idm.items()}
        elif predicted_actions is not None:
            result["idm_accuracy"] = idm_metrics(pick(predicted_actions), pick(actions), family.action_texts)["accuracy"]
            result["idm_constant_accuracy"] = best_constant_accuracy(pick(actions))
            if equivalent is not None:
                result["idm_equivalent_accuracy"] = equivalent_accuracy(pick(predicted_actions), pick(equivalent),
                                                                        pick(env_ids))
                result["idm_constant_equivalent_accuracy"] = best_constant_equivalent_accuracy(pick(equivalent))
        if equivalent is not None:
            result |= {"identifiable_share": identifiable_share(pick(equivalent)),
                       "noop_share": noop_share(pick(states), pick(next_states))}
        return result

    by_env: dict[str, list[int]] = defaultdict(list)
    by_action: dict[str, list[int]] = defaultdict(list)
    for index, (env_id, action) in enumerate(zip(env_ids, actions)):
        by_env[env_id].append(index)
        by_action[action].append(index)
    everything = list(range(len(states)))
    if not breakdowns:
        return summarise(everything)
    result = {**summarise(everything),
              "per_env": {env_id: summarise(indices) for env_id, indices in sorted(by_env.items())}}
    if family.continuous:
        return result
    if predicted_states is not None:
        result["fwm_per_action"] = {action: {key: value for key, value in summarise(indices).items()
                                             if key.startswith("fwm_") or key == "rows"}
                                    for action, indices in sorted(by_action.items())}
    if predicted_actions is not None:
        idm = idm_metrics(predicted_actions, actions, family.action_texts)
        result |= {"idm_per_action": idm["per_action"], "idm_confusion": idm["confusion"]}
        if equivalent is not None:
            result["idm_equivalent_per_action"] = {
                action: equivalent_accuracy([predicted_actions[i] for i in indices], [equivalent[i] for i in indices],
                                            [env_ids[i] for i in indices])
                for action, indices in sorted(by_action.items())}
    return result


def carry_over(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """An evaluation of one role (``new``) completed with the other role's metrics from ``previous``, the stage
    before, whose adapter for that role is the same: nested dicts (``per_env``) merge key by key, ``new`` wins."""
    merged = dict(previous)
    for key, value in new.items():
        both_dicts = isinstance(value, dict) and isinstance(previous.get(key), dict)
        merged[key] = carry_over(previous[key], value) if both_dicts else value
    return merged


def evaluate_saved_stage(adapters: str | Path, dataset: str | Path, out: str | Path, *, model: str = "smollm2-135m",
                         split: str = "test", rows: int = 256, sampler: str = "auto", max_state_tokens: int = 256,
                         max_action_tokens: int = 8, state_modality: str | None = None,
                         state_format: str | None = None, state_text: str | None = None,
                         state_front_cell: bool | None = None, rollout_horizon: int = 6,
                         rollout_starts: int = 16, afs_states: int = 8) -> tuple[dict[str, Any], str]:
    """What ``swirl eval`` does: evaluate a stage's saved ``fwm/`` and ``idm/`` adapters on ``rows`` seeded rows of a
    dataset split, add open-loop rollouts and the Action Following Score (MiniGrid text states), and write
    ``eval.json``, ``eval.md`` and the plots under ``out``. Returns the result and its markdown table.

    ``state_modality``, ``state_format`` and ``state_text`` default to the run's (its ``swirl_config.json`` at or
    above ``adapters``), else text, full and the dataset's own text; ``state_front_cell`` to the run's, else False.
    """
    adapters, out = Path(adapters), Path(out)
    run = find_run_config(adapters) or {}
    state_format = state_format or run.get("state_format", "full")
    state_text = state_text or run.get("state_text")
    state_modality = state_modality or run.get("state_modality", "text")
    state_front_cell = bool(run.get("state_front_cell", False)) if state_front_cell is None else state_front_cell
    splits = load_dataset_dict(dataset)
    if state_text is not None:  # MiniGrid splits only; others are left as they are
        splits = convert_state_texts(splits, state_text)
    full_split = splits[split]  # rollouts need whole episodes' actions
    test = full_split.shuffle(seed=0, keep_in_memory=True).select(range(min(rows, full_split.num_rows)))
    tokenizer = load_tokenizer(model)
    world_model, generator = load_world_model(model, tokenizer, {role: adapters / role for role in ("fwm", "idm")},
                                              sampler=sampler)
    domain = domain_of(test)
    view = state_view(state_modality, domain, state_format, state_front_cell)
    if view.has_images:
        require_vlm(view, tokenizer, model)
        check_state_images(load_dataset_dict(dataset), dataset, (split,))
    result = evaluate_world_model(world_model, tokenizer, generator, test, max_state_tokens=max_state_tokens,
                                  max_action_tokens=max_action_tokens, domain=domain, view=view)
    if not get_domain(domain).replays_actions or view.has_images:
        rollout_horizon = afs_states = 0  # both replay MiniGrid actions in the real env, on text states
    if rollout_horizon > 0:
        result["rollouts"] = rollout_accuracy(generator, tokenizer, full_split, horizon=rollout_horizon,
                                              max_starts=rollout_starts, max_state_tokens=max_state_tokens, view=view)
        plot_horizon(result["rollouts"], out / "rollout_accuracy.png")
    if afs_states > 0:
        result["action_following"] = action_following_score(generator, tokenizer, test, max_states=afs_states,
                                                             max_state_tokens=max_state_tokens, view=view)
    if "idm_confusion" in result:
        plot_confusion(result["idm_confusion"], out / "idm_confusion.png")
    write_text_atomic(out / "eval.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    per_env = [{"stage": env_id, **metrics} for env_id, metrics in result["per_env"].items()]
    table = markdown_table([{"stage": "overall", **result}, *per_env], get_domain(domain).headline_metrics).replace("| stage |", "| env |", 1)
    write_text_atomic(out / "eval.md", table + "\n")
    return result, table
