"""World-model evaluation on a dataset split: every FWM and IDM metric of :mod:`eval.metrics`, overall and per env.

The loop calls :func:`evaluate_world_model` after every stage. Predictions are greedy, made with the
sampler from :mod:`swirl.sampling` and the prompts from :mod:`swirl.models.prompts`, exactly as in
training; the FWM's teacher-forced NLL of the true next state uses the reward scorer.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from eval.metrics import (OTHER, best_constant_accuracy, best_constant_equivalent_accuracy, equivalent_accuracy,
                          fwm_metrics, identifiable_share, idm_metrics, noop_share, vector_fwm_metrics,
                          vector_idm_metrics)
from swirl.data import domain_of
from swirl.envs.minigrid import ACTION_TEXTS
from swirl.models.prompts import completion, images_for_row, prompt_for_row, target_for_row
from swirl.models.scoring import log_likelihood
from swirl.models.vision import STATE_MODALITIES, TEXT_VIEW, StateView, state_view
from swirl.sampling import STATE_STOP

ACTION_LABELS = ACTION_TEXTS + ("switch",)
HEADLINE = ("fwm_exact_match", "fwm_changed_accuracy", "fwm_field_accuracy", "fwm_parse_rate", "idm_accuracy",
            "idm_equivalent_accuracy")
DOMAINS = ("minigrid", "maniskill")  # discrete grid states and actions; continuous states and actions
HEADLINES = {"minigrid": HEADLINE,
             "maniskill": ("fwm_parse_rate", "fwm_exact_match", "fwm_mse", "fwm_copy_mse", "idm_parse_rate",
                           "idm_action_mse", "idm_zero_action_mse")}


def evaluate_world_model(model: Any, tokenizer: Any, sampler: Any, rows: Any, fwm_adapter: str = "fwm",
                         idm_adapter: str = "idm", max_state_tokens: int = 256, max_action_tokens: int = 8,
                         inverse_model: Callable[[list[str], list[str]], list[str | None]] | None = None,
                         domain: str = "minigrid", view: StateView = TEXT_VIEW,
                         roles: tuple[str, ...] = ("fwm", "idm")) -> dict[str, Any]:
    """``rows``: a labelled split (``state``, ``action``, ``next_state``, ``env_id``).

    The IDM evaluated is the ``idm_adapter`` of ``model``, or ``inverse_model(states, next_states)`` when
    given (e.g. WAV's sparse IDM; ``None`` answers count as wrong). With image states (``view``), the
    prompts show the rows' ``image`` / ``next_image`` and ``tokenizer`` is the VLM's processor.

    Returns the overall metrics as flat ``fwm_*`` / ``idm_*`` keys, plus ``per_env`` (the same per env id). For
    ``domain="minigrid"`` (:func:`eval.metrics.fwm_metrics`, discrete actions) also ``fwm_per_action`` (FWM
    metrics per true action), ``idm_per_action`` and ``idm_confusion``, and where the rows can be re-simulated
    (``seed``, ``action_prefix`` columns) ``identifiable_share``, ``noop_share`` (of the rows) and
    ``idm_equivalent_accuracy`` (an answer counts when stepping it reproduces s'; overall, per env and, as
    ``idm_equivalent_per_action``, per true action); for ``"maniskill"`` the metrics are
    :func:`eval.metrics.vector_fwm_metrics` and :func:`eval.metrics.vector_idm_metrics` (MSEs after parsing).

    ``roles`` limits the work to one half, ``("fwm",)`` or ``("idm",)``, and the result to its keys: a SWIRL phase
    trains one adapter, so the loop evaluates that one and carries the other half over (:func:`carry_over`).
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    if not roles or set(roles) - {"fwm", "idm"}:
        raise ValueError(f"roles must be some of fwm, idm (got {', '.join(roles) or 'none'})")
    if rows.num_rows == 0:
        raise ValueError("cannot evaluate on an empty split")
    states, actions, next_states, env_ids = rows["state"], rows["action"], rows["next_state"], rows["env_id"]
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
        predicted_actions = [action or OTHER for action in inverse_model(states, next_states)]
    elif "idm" in roles:
        predicted_actions = [answers[0] for answers in sampler.generate(
            [prompt_for_row(tokenizer, "idm", row, view) for row in listed], adapter=idm_adapter, temperature=0,
            max_new_tokens=max_action_tokens, images=images("idm"))]

    equivalent = None  # the actions that reproduce each row's s' (swirl.envs.identifiability), computed once
    if domain == "minigrid" and {"seed", "action_prefix"} <= set(rows.column_names):
        from swirl.envs.identifiability import equivalent_actions_for_rows

        equivalent = equivalent_actions_for_rows(rows)

    def summarise(indices: list[int]) -> dict[str, float]:
        pick = lambda values: [values[i] for i in indices]  # noqa: E731
        result: dict[str, float] = {"rows": len(indices)}
        if predicted_states is not None:
            metrics = vector_fwm_metrics if domain == "maniskill" else fwm_metrics
            fwm = metrics(pick(states), pick(predicted_states), pick(next_states))
            result |= {f"fwm_{key}": value for key, value in fwm.items()} | {"fwm_nll": float(nll[indices].mean())}
        if predicted_actions is not None and domain == "maniskill":
            idm = vector_idm_metrics(pick(predicted_actions), pick(actions))
            result |= {f"idm_{key}": value for key, value in idm.items()}
        elif predicted_actions is not None:
            result["idm_accuracy"] = idm_metrics(pick(predicted_actions), pick(actions), ACTION_LABELS)["accuracy"]
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
    result = {**summarise(everything),
              "per_env": {env_id: summarise(indices) for env_id, indices in sorted(by_env.items())}}
    if domain == "maniskill":
        return result
    if predicted_states is not None:
        result["fwm_per_action"] = {action: {key: value for key, value in summarise(indices).items()
                                             if key.startswith("fwm_") or key == "rows"}
                                    for action, indices in sorted(by_action.items())}
    if predicted_actions is not None:
        idm = idm_metrics(predicted_actions, actions, ACTION_LABELS)
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


def main(argv: list[str] | None = None) -> None:
    """``python -m eval.world_model --adapters RUN/iter_1/phase2 --dataset DATA [--split test] --out DIR``."""
    import argparse
    import json
    from pathlib import Path

    from swirl.data import check_state_images, convert_state_texts, load_dataset_dict
    from swirl.envs.minigrid import STATE_TEXTS
    from swirl.envs.state_format import STATE_FORMATS
    from swirl.models.adapters import with_adapters
    from swirl.models.vision import require_vlm
    from swirl.models.loading import load_base_model, load_tokenizer
    from swirl.paths import find_run_config, json_safe, write_text_atomic
    from swirl.sampling import make_sampler

    parser = argparse.ArgumentParser(prog="python -m eval.world_model", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="base model (Hub id, folder or built-in name)")
    parser.add_argument("--adapters", required=True, help="folder holding the fwm/ and idm/ adapters (a stage of a run)")
    parser.add_argument("--dataset", required=True, help="dataset folder from `swirl data minigrid` or "
                        "`swirl data maniskill` (the metrics follow the dataset's kind)")
    parser.add_argument("--split", default="test", help="split to evaluate (needs actions: labelled or test)")
    parser.add_argument("--rows", type=int, default=256, help="evaluate at most this many rows (seeded sample)")
    parser.add_argument("--sampler", default="auto", help="auto, hf or vllm")
    parser.add_argument("--max-state-tokens", type=int, default=256, help="max new tokens of a predicted state")
    parser.add_argument("--max-action-tokens", type=int, default=8, help="max new tokens of a predicted action")
    parser.add_argument("--state-modality", choices=STATE_MODALITIES, default=None,
                        help="how prompts show states (default: the run's state_modality, else text; image needs a VLM "
                        "and a dataset with images; rollouts and the AFS then are skipped)")
    parser.add_argument("--state-format", choices=STATE_FORMATS, default=None,
                        help="how the FWM writes next states: full or diff (default: the run's, read from the "
                        "swirl_config.json at or above --adapters; else full)")
    parser.add_argument("--state-text", choices=STATE_TEXTS, default=None,
                        help="MiniGrid state text shown to the adapters: grid or objects (default: the run's; else the "
                        "dataset's)")
    parser.add_argument("--rollout-horizon", type=int, default=6, help="open-loop rollout length (0: skip rollouts; "
                        "MiniGrid only)")
    parser.add_argument("--rollout-starts", type=int, default=16, help="rollouts from at most this many test states")
    parser.add_argument("--afs-states", type=int, default=8, help="states for the Action Following Score (0: skip; "
                        "MiniGrid only)")
    parser.add_argument("--out", required=True, help="output folder for eval.json, eval.md and the plots")
    args = parser.parse_args(argv)
    adapters = Path(args.adapters)
    run = find_run_config(adapters) or {}
    state_format = args.state_format or run.get("state_format", "full")
    state_text = args.state_text or run.get("state_text")
    args.state_modality = args.state_modality or run.get("state_modality", "text")
    splits = load_dataset_dict(args.dataset)
    if state_text is not None:  # MiniGrid splits only; others are left as they are
        splits = convert_state_texts(splits, state_text)
    rows = splits[args.split]
    rows = rows.shuffle(seed=0, keep_in_memory=True).select(range(min(args.rows, rows.num_rows)))
    tokenizer = load_tokenizer(args.model)
    model = with_adapters(load_base_model(args.model), {"fwm": adapters / "fwm", "idm": adapters / "idm"})
    sampler = make_sampler(args.sampler, model, tokenizer, base_model=args.model,
                           adapter_dirs={role: str(adapters / role) for role in ("fwm", "idm")})
    domain = domain_of(rows)
    view = state_view(args.state_modality, domain, state_format)
    if view.has_images:
        require_vlm(view, tokenizer, args.model)
        check_state_images(load_dataset_dict(args.dataset), args.dataset, (args.split,))
    result = evaluate_world_model(model, tokenizer, sampler, rows, max_state_tokens=args.max_state_tokens,
                                  max_action_tokens=args.max_action_tokens, domain=domain, view=view)
    out = Path(args.out)
    full_split = splits[args.split]  # rollouts need whole episodes' actions
    if domain != "minigrid" or view.has_images:
        args.rollout_horizon = args.afs_states = 0  # both replay MiniGrid actions in the real env, on text states
    if args.rollout_horizon > 0:
        from eval.plots import plot_horizon
        from eval.rollouts import rollout_accuracy

        result["rollouts"] = rollout_accuracy(sampler, tokenizer, full_split, horizon=args.rollout_horizon,
                                              max_starts=args.rollout_starts, max_state_tokens=args.max_state_tokens,
                                              view=view)
        plot_horizon(result["rollouts"], out / "rollout_accuracy.png")
    if args.afs_states > 0:
        from eval.rollouts import action_following_score

        result["action_following"] = action_following_score(sampler, tokenizer, rows, max_states=args.afs_states,
                                                             max_state_tokens=args.max_state_tokens, view=view)
    if "idm_confusion" in result:
        from eval.plots import plot_confusion

        plot_confusion(result["idm_confusion"], out / "idm_confusion.png")
    write_text_atomic(out / "eval.json", json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
    per_env = [{"stage": env_id, **metrics} for env_id, metrics in result["per_env"].items()]
    table = markdown_table([{"stage": "overall", **result}, *per_env], HEADLINES[domain]).replace("| stage |", "| env |", 1)
    write_text_atomic(out / "eval.md", table + "\n")
    print(table)


if __name__ == "__main__":
    from swirl.cli import run_or_exit

    raise SystemExit(run_or_exit(main))
