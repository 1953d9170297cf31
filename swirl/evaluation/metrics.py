"""World-model metrics on texts: pure functions, no model. Used by :mod:`swirl.evaluation.world_model` and the loop.

FWM (predicted next state vs true next state, given the previous state):

* ``exact_match``: the parsed prediction equals the true state (an unparseable prediction is wrong);
* ``parse_rate``: share of predictions that parse;
* ``field_accuracy``: share of fields right over all states, a field being one grid cell, the agent's
  position, its direction, or the carried object (unparseable or wrong-size predictions get none right);
* ``changed_accuracy``: the same, counted only on the fields that differ between s and s' (copying the
  input scores 0 there by construction; ``copy_field_accuracy`` is that baseline's ``field_accuracy``);
* ``bleu`` (sacreBLEU, corpus level) and ``rouge_l`` (rouge-score, mean F1) of the text, both on
  whitespace tokens, i.e. on cells, as the SWIRL paper reports for text worlds.

IDM: ``accuracy``, per-action accuracy and the confusion matrix (rows: true action, columns: predicted;
anything outside the known actions is counted in an ``other`` column); ``equivalent_accuracy``, where any
action that reproduces s' counts (several do where the true one is not identifiable, e.g. every action that
does nothing). Split shares: ``identifiable_share`` (exactly one action explains the transition) and
``noop_share`` (s' == s).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer

from swirl.envs.maniskill_text import state_schema
from swirl.envs.maniskill_text import text_to_action as vector_text_to_action
from swirl.envs.maniskill_text import text_to_state as vector_text_to_state
from swirl.envs.minigrid import MiniGridState, action_texts, text_to_action, text_to_state
from swirl.errors import ActionParseError, StateParseError

OTHER = "other"


def state_fields(state: MiniGridState) -> list[Any]:
    """Every cell, then the agent's position, its direction and the carried object."""
    return [*state.cells, state.agent_pos, state.agent_dir, state.carrying]


def try_parse(text: str) -> MiniGridState | None:
    try:
        return text_to_state(text)
    except StateParseError:
        return None


def field_mismatch(text: str, other: str) -> float:
    """Share of fields (cells, agent position and direction, carried object) on which two states differ;
    1.0 when either does not parse or their grids differ in size. WAV's ``fields`` verification loss."""
    first, second = try_parse(text), try_parse(other)
    if first is None or second is None or (first.width, first.height) != (second.width, second.height):
        return 1.0
    pairs = list(zip(state_fields(first), state_fields(second)))
    return sum(a != b for a, b in pairs) / len(pairs)


StateFields = Callable[[str], tuple[Any, list]]  # a discrete family's text -> (shape, fields): Domain.state_fields


def minigrid_state_fields(text: str) -> tuple[tuple[int, int], list[Any]]:
    """A MiniGrid text's room size and :func:`state_fields` (the default ``Domain.state_fields``)."""
    state = text_to_state(text)
    return (state.width, state.height), state_fields(state)


def compare_prediction(state: str, predicted: str, true_next: str, fields: StateFields | None = None) -> dict[str, int]:
    """Counts for one FWM prediction: exact, parsed, fields right/total, changed fields right/total. ``fields``:
    the family's text -> (shape, fields) (``Domain.state_fields``; default MiniGrid's)."""
    fields = fields or minigrid_state_fields
    (_, before), (shape, true_fields) = fields(state), fields(true_next)
    changed = [i for i, (a, b) in enumerate(zip(before, true_fields)) if a != b]
    try:
        guess = fields(predicted)
    except StateParseError:
        guess = None
    guess_fields = guess[1] if guess is not None and guess[0] == shape else [object()] * len(true_fields)
    return {
        "exact": int(guess == (shape, true_fields)),
        "parsed": int(guess is not None),
        "fields_right": sum(g == t for g, t in zip(guess_fields, true_fields)),
        "fields": len(true_fields),
        "changed_right": sum(guess_fields[i] == true_fields[i] for i in changed),
        "changed": len(changed),
    }


def _whitespace_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    class Whitespace:
        @staticmethod
        def tokenize(text: str) -> list[str]:
            return text.split()

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Whitespace())
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    return sum(scores) / len(scores)


def fwm_metrics(states: Sequence[str], predictions: Sequence[str], next_states: Sequence[str],
                text_metrics: bool = True, fields: StateFields | None = None) -> dict[str, float]:
    """Aggregate FWM metrics (micro-averaged over fields); see the module doc. ``text_metrics=False`` leaves out
    BLEU and ROUGE-L (most of the cost on thousands of rows, and no news once the fields are scored). ``fields``:
    the domain's ``state_fields`` (default MiniGrid's)."""
    if not states:
        raise ValueError("cannot evaluate an empty set of predictions")
    if not len(states) == len(predictions) == len(next_states):
        raise ValueError(f"lengths differ: {len(states)} states, {len(predictions)} predictions, {len(next_states)} next states")
    totals: Counter = Counter()
    copy: Counter = Counter()
    for state, predicted, true_next in zip(states, predictions, next_states):
        totals.update(compare_prediction(state, predicted, true_next, fields))
        copy.update(compare_prediction(state, state, true_next, fields))
    count = len(states)
    return {
        "exact_match": totals["exact"] / count,
        "parse_rate": totals["parsed"] / count,
        "field_accuracy": totals["fields_right"] / totals["fields"],
        "changed_accuracy": totals["changed_right"] / totals["changed"] if totals["changed"] else float("nan"),
        "changed_fields": totals["changed"],
        "copy_field_accuracy": copy["fields_right"] / copy["fields"],
        "copy_exact_match": copy["exact"] / count,
    } | ({"bleu": sacrebleu.corpus_bleu(list(predictions), [list(next_states)], tokenize="none").score / 100,
          "rouge_l": _whitespace_rouge_l(predictions, next_states)} if text_metrics else {})


def idm_metrics(predictions: Sequence[str], actions: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-action accuracy and the confusion matrix over ``labels`` (+ ``other``)."""
    if not actions:
        raise ValueError("cannot evaluate an empty set of predictions")
    columns = list(labels) + [OTHER]
    confusion = {true: {column: 0 for column in columns} for true in labels}
    for predicted, true in zip(predictions, actions):
        row = confusion.setdefault(true, {column: 0 for column in columns})
        row[predicted if predicted in row and predicted != OTHER else OTHER] += 1
    per_action = {
        action: row[action] / sum(row.values()) for action, row in confusion.items() if sum(row.values())
    }
    return {
        "accuracy": sum(p == a for p, a in zip(predictions, actions)) / len(actions),
        "per_action": per_action,
        "confusion": confusion,
    }


def predicted_action_id(text: str | None, env_id: str | None = None) -> int | None:
    """The action index a predicted action text names, or None when it names none: unparseable, or (given
    ``env_id``) not in that env's vocabulary (``done`` in a WAV task, ``switch`` in stock MiniGrid)."""
    if text is None:
        return None
    try:
        action = text_to_action(text)
    except ActionParseError:
        return None
    if env_id is not None and " ".join(text.lower().split()) not in action_texts(env_id):
        return None
    return action


def equivalent_accuracy(predictions: Sequence[str | None], equivalent: Sequence[Sequence[int]],
                        env_ids: Sequence[str] | None = None) -> float:
    """IDM accuracy where an answer counts when it is *one of* the row's equivalent actions, i.e. stepping it
    from ``s`` reproduces ``s'`` (:func:`swirl.envs.identifiability.equivalent_actions`); unparseable or
    unknown answers are wrong. Exact accuracy punishes ``drop`` for a ``pick up`` that did nothing; this does
    not. ``env_ids`` (per row) checks each answer against its env's action texts (``switch`` vs ``done``).

    >>> equivalent_accuracy(["drop", "turn left", "jump"], [[3, 4, 5, 6], [1], [2]])
    0.3333333333333333
    """
    if not predictions:
        raise ValueError("cannot evaluate an empty set of predictions")
    if len(predictions) != len(equivalent) or (env_ids is not None and len(env_ids) != len(predictions)):
        raise ValueError(f"lengths differ: {len(predictions)} predictions, {len(equivalent)} equivalent-action lists")
    env_ids = env_ids if env_ids is not None else [None] * len(predictions)
    right = sum(predicted_action_id(text, env_id) in set(actions)
                for text, actions, env_id in zip(predictions, equivalent, env_ids))
    return right / len(predictions)


def identifiable_share(equivalent: Sequence[Sequence[int]]) -> float:
    """Share of transitions that exactly one action explains (the only ones an IDM can get right by more
    than a guess among equivalent actions)."""
    if not equivalent:
        raise ValueError("cannot evaluate an empty set of transitions")
    return sum(len(actions) == 1 for actions in equivalent) / len(equivalent)


def noop_share(states: Sequence[str], next_states: Sequence[str]) -> float:
    """Share of transitions whose next state equals the state (compared parsed, so any lossless state text
    works): steps that changed nothing, from which no action can be read."""
    if not states:
        raise ValueError("cannot evaluate an empty set of transitions")
    if len(states) != len(next_states):
        raise ValueError(f"lengths differ: {len(states)} states, {len(next_states)} next states")
    return sum(text_to_state(s) == text_to_state(n) for s, n in zip(states, next_states)) / len(states)


# ------------------------------------------------------------------------ continuous states (ManiSkill)
def _parse_vector_state(text: str, schema: dict[str, int]) -> dict[str, Any] | None:
    try:
        return vector_text_to_state(text, schema)
    except StateParseError:
        return None


def vector_fwm_metrics(states: Sequence[str], predictions: Sequence[str], next_states: Sequence[str]) -> dict[str, Any]:
    """FWM metrics on continuous (ManiSkill) state texts, after parsing:

    * ``parse_rate``: predictions that parse with exactly the true state's fields and sizes;
    * ``exact_match``: every value equal at the text's precision (unparsed predictions are wrong);
    * ``mse``: mean squared error over every value of the parsed predictions, ``field_mse`` the same per field;
    * ``copy_mse`` / ``copy_field_mse``: the same for predicting s' = s (the baseline a model must beat).

    MSEs are over parsed predictions only (None when nothing parsed); read them with ``parse_rate``.
    """
    if not states:
        raise ValueError("cannot evaluate an empty set of predictions")
    if not len(states) == len(predictions) == len(next_states):
        raise ValueError(f"lengths differ: {len(states)} states, {len(predictions)} predictions, {len(next_states)} next states")
    errors: dict[str, list] = {}
    copy_errors: dict[str, list] = {}
    parsed = exact = 0
    for state, predicted, true_next in zip(states, predictions, next_states):
        truth = vector_text_to_state(true_next)
        before = vector_text_to_state(state, state_schema(truth))
        guess = _parse_vector_state(predicted, state_schema(truth))
        for name, values in truth.items():
            copy_errors.setdefault(name, []).extend((before[name] - values) ** 2)
        if guess is None:
            continue
        parsed += 1
        exact += all(np.array_equal(guess[name], values) for name, values in truth.items())
        for name, values in truth.items():
            errors.setdefault(name, []).extend((guess[name] - values) ** 2)

    def mean(values_by_field: dict[str, list]) -> float | None:
        values = [v for values in values_by_field.values() for v in values]
        return float(np.mean(values)) if values else None

    return {
        "parse_rate": parsed / len(states),
        "exact_match": exact / len(states),
        "mse": mean(errors),
        "copy_mse": mean(copy_errors),
        "field_mse": {name: float(np.mean(values)) for name, values in errors.items()},
        "copy_field_mse": {name: float(np.mean(values)) for name, values in copy_errors.items()},
    }


def vector_idm_metrics(predictions: Sequence[str], actions: Sequence[str]) -> dict[str, Any]:
    """IDM metrics on continuous action texts: ``parse_rate`` (the true action's length, numbers),
    ``action_mse`` over the parsed predictions (None when none parsed), ``zero_action_mse`` (the baseline of
    always answering zeros) and ``action_exact_match`` (equal at the text's precision)."""
    if not actions:
        raise ValueError("cannot evaluate an empty set of predictions")
    errors, zero_errors, parsed, exact = [], [], 0, 0
    for predicted, true in zip(predictions, actions):
        truth = np.array([float(v) for v in true.split()])
        zero_errors.extend(truth ** 2)
        try:
            guess = vector_text_to_action(predicted, truth.size, low=-np.inf, high=np.inf).astype(np.float64)
        except ValueError:
            continue
        parsed += 1
        exact += bool(np.array_equal(np.round(guess, 6), np.round(truth, 6)))
        errors.extend((guess - truth) ** 2)
    return {
        "parse_rate": parsed / len(actions),
        "action_mse": float(np.mean(errors)) if errors else None,
        "zero_action_mse": float(np.mean(zero_errors)),
        "action_exact_match": exact / len(actions),
    }


def best_constant_accuracy(actions: Sequence[str]) -> float:
    """The IDM baseline: the accuracy of always answering the rows' most frequent action (the best any constant
    answer can do on these rows)."""
    if not actions:
        raise ValueError("cannot evaluate an empty set of actions")
    return Counter(actions).most_common(1)[0][1] / len(actions)


def best_constant_equivalent_accuracy(equivalent: Sequence[Sequence[int]]) -> float:
    """:func:`best_constant_accuracy` counted like :func:`equivalent_accuracy`: the share of rows that the best
    single action id reproduces."""
    if not equivalent:
        raise ValueError("cannot evaluate an empty set of rows")
    counts = Counter(action for actions in equivalent for action in set(actions))
    return max(counts.values(), default=0) / len(equivalent)
