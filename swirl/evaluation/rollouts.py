"""Evaluations that need the real environment for ground truth (through ``swirl.envs.minigrid.resimulate``).

* :func:`rollout_accuracy`: from a test state, the FWM is fed its own predictions for ``horizon`` steps
  along the recorded actions (as in WorldPrediction, T <= 6); exact match and field accuracy per horizon.
* :func:`action_following_score` (WAV): for a state and every pair of different actions whose true next
  states differ, how often the FWM's two predictions differ too. A model that ignores the action scores 0.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from swirl.evaluation.metrics import compare_prediction
from swirl.envs.minigrid import action_texts, make_env, resimulate, state_text_kind, state_to_text
from swirl.models.prompts import fwm_prompt
from swirl.models.state_view import TEXT_VIEW, StateView
from swirl.sampling import STATE_STOP


def known_actions(rows: Any) -> dict[tuple[str, int], list[int]]:
    """Per episode (env id, seed), the longest action sequence the rows reveal (prefix + own action)."""
    actions: dict[tuple[str, int], list[int]] = {}
    for env_id, seed, prefix, action in zip(rows["env_id"], rows["seed"], rows["action_prefix"], rows["action_id"]):
        sequence = list(prefix) + [action]
        if len(sequence) > len(actions.get((env_id, seed), [])):
            actions[(env_id, seed)] = sequence
    return actions


def _predict(sampler: Any, tokenizer: Any, states: list[str], actions: list[str], adapter: str,
             max_state_tokens: int, view: StateView = TEXT_VIEW) -> list[str]:
    """Greedy next states, always full texts: with ``state_format: diff`` each predicted diff is applied to its
    state (one that does not apply becomes an empty text, which never parses)."""
    prompts = [fwm_prompt(tokenizer, s, a, view) for s, a in zip(states, actions)]
    answers = [answers[0] for answers in sampler.generate(prompts, adapter=adapter, temperature=0,
                                                          max_new_tokens=max_state_tokens,
                                                          stop=None if view.is_diff else STATE_STOP)]
    return [view.prediction(s, answer) for s, answer in zip(states, answers)]


def _state_text(env: Any, rows: Any) -> str:
    """The env's state in the text the rows use (grid or objects)."""
    return state_to_text(env, state_text_kind(rows["state"][0]))


def rollout_accuracy(sampler: Any, tokenizer: Any, rows: Any, horizon: int = 6, max_starts: int = 32,
                     adapter: str = "fwm", max_state_tokens: int = 256,
                     view: StateView = TEXT_VIEW) -> list[dict[str, float]]:
    """Open-loop FWM rollouts of ``horizon`` steps from up to ``max_starts`` test states, taken from the envs in turn;
    one dict per step. With ``state_format: diff`` the predicted diffs are applied step by step."""
    by_env: dict[str, list[tuple]] = defaultdict(list)
    for (env_id, seed), sequence in sorted(known_actions(rows).items()):
        for step in range(0, len(sequence) - horizon + 1, horizon):
            by_env[env_id].append((env_id, seed, sequence[:step], sequence[step : step + horizon]))
    # round-robin over the envs, so that a few starts still cover every env (not the first env's episodes only)
    queues = [iter(found) for found in by_env.values()]
    starts = []
    while queues and len(starts) < max_starts:
        for queue in list(queues):
            start = next(queue, None)
            if start is None:
                queues.remove(queue)
            elif len(starts) < max_starts:
                starts.append(start)
    if not starts:
        raise ValueError(f"no episode in the split has {horizon} consecutive known actions")
    envs: dict[str, Any] = {}
    truths = []  # per start: the true states s_t .. s_t+horizon
    for env_id, seed, prefix, future in starts:
        env = resimulate(env_id, seed, prefix, env=envs.setdefault(env_id, make_env(env_id)))
        states = [_state_text(env, rows)]
        for action in future:
            env.step(action)
            states.append(_state_text(env, rows))
        truths.append(states)
    current = [states[0] for states in truths]
    results = []
    for step in range(horizon):
        words = [action_texts(env_id)[future[step]] for env_id, _, _, future in starts]
        predicted = _predict(sampler, tokenizer, current, words, adapter, max_state_tokens, view)
        counts = [compare_prediction(truth[step], guess, truth[step + 1]) for truth, guess in zip(truths, predicted)]
        results.append({
            "horizon": step + 1,
            "exact_match": sum(c["exact"] for c in counts) / len(counts),
            "field_accuracy": sum(c["fields_right"] for c in counts) / sum(c["fields"] for c in counts),
            "parse_rate": sum(c["parsed"] for c in counts) / len(counts),
        })
        current = predicted
    return results


def action_following_score(sampler: Any, tokenizer: Any, rows: Any, max_states: int = 16, adapter: str = "fwm",
                           max_state_tokens: int = 256, view: StateView = TEXT_VIEW) -> dict[str, float]:
    """Share of action pairs with different true outcomes for which the FWM also predicts different states."""
    envs: dict[str, Any] = {}
    states, words, truths, groups = [], [], [], defaultdict(list)
    for index in range(min(max_states, rows.num_rows)):
        env_id, seed, prefix = rows["env_id"][index], rows["seed"][index], rows["action_prefix"][index]
        env = envs.setdefault(env_id, make_env(env_id))
        vocabulary = action_texts(env_id)
        for action in range(len(vocabulary)):
            resimulate(env_id, seed, prefix, env=env)
            state = _state_text(env, rows)
            env.step(action)
            groups[index].append(len(states))
            states.append(state)
            words.append(vocabulary[action])
            truths.append(_state_text(env, rows))
    predicted = _predict(sampler, tokenizer, states, words, adapter, max_state_tokens, view)
    pairs = followed = 0
    for members in groups.values():
        for i, j in combinations(members, 2):
            if truths[i] != truths[j]:
                pairs += 1
                followed += predicted[i] != predicted[j]
    return {"action_following_score": followed / pairs if pairs else float("nan"), "pairs": pairs,
            "states": len(groups)}
