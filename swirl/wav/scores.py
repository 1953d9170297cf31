"""Acquisition scores over a pool of candidate (state, action) pairs: WAV's verification score and the four
baselines. Higher means "label this first".

* ``wav`` (the cycle subgoal -> inverse -> forward): sample K subgoals ``s~ ~ g(.|s)`` with the ``subgoal``
  adapter, infer ``a~ = h(s, s~)`` with the inverse model, and score ``l(s~, s^)`` where ``s^ = FWM(s, a~)``:
  ``fields`` is the mismatch fraction of the parsed states (``s^`` greedy), ``nll`` is the FWM's
  teacher-forced NLL of ``s~`` given ``(s, a~)`` (no generation). A candidate ``(s, a)`` gets the highest
  score of the subgoals whose inferred action is ``a``; an action no subgoal leads to is never proposed
  (score ``-inf``: off the data manifold as far as the subgoal generator knows).
* ``random``: uniform scores.
* ``uncertainty``: disagreement of N sampled FWM predictions for ``(s, a)`` (mean pairwise field mismatch).
* ``progress``: learning progress, ``log P_now(s^ | s, a) - log P_before(s^ | s, a)`` for the current
  greedy prediction ``s^``: how much the last round of training moved the FWM at this candidate.
* ``oracle``: the FWM's true error on the candidate, ``l(s', s^)`` against the real next state ``s'``
  (executed in simulation for every candidate: the baseline that cheats, and the reference every other
  score is rank-correlated with).

:class:`PoolScorer` computes these lazily and caches what several of them share (the greedy FWM
predictions, the true next states), so a round computes each model call once.
"""

from __future__ import annotations

import math
from functools import cached_property
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

from swirl.evaluation.metrics import field_mismatch
from swirl.models.prompts import completion, fwm_prompt, subgoal_prompt
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import TEXT_VIEW, StateView
from swirl.sampling import STATE_STOP
from swirl.wav.candidates import Candidate, Simulator

InverseModel = Callable[[Sequence[str], Sequence[str]], list[str | None]]


def mean_pairwise_mismatch(samples: Sequence[str]) -> float:
    pairs = list(combinations(samples, 2))
    return sum(field_mismatch(a, b) for a, b in pairs) / len(pairs)


class PoolScorer:
    """The scores of one round's pool under one round's models; see the module docstring.

    ``model`` holds the adapters ``fwm`` (current), ``fwm_before`` (the previous round's, for ``progress``)
    and ``subgoal``; ``inverse`` maps (states, subgoals) to action texts (``None`` where it cannot). With
    ``view.state_format == "diff"`` the FWM and the subgoal generator write diffs: both are applied to their
    state before any comparison, so every score compares full states (an invalid diff mismatches fully).
    """

    def __init__(self, candidates: Sequence[Candidate], model: Any, tokenizer: Any, sampler: Any,
                 inverse: InverseModel | None, *, score_loss: str = "fields", subgoals: int = 4,
                 uncertainty_samples: int = 4, temperature: float = 0.7, top_p: float = 0.96,
                 max_state_tokens: int = 256, seed: int = 0, simulate: Callable[[Candidate], dict] | None = None,
                 view: StateView = TEXT_VIEW):
        self.candidates = list(candidates)
        self.model, self.tokenizer, self.sampler, self.inverse = model, tokenizer, sampler, inverse
        self.score_loss, self.num_subgoals, self.uncertainty_samples = score_loss, subgoals, uncertainty_samples
        self.temperature, self.top_p, self.max_state_tokens, self.seed = temperature, top_p, max_state_tokens, seed
        self.simulate = simulate or Simulator()
        self.view = view
        self.stop = None if view.is_diff else STATE_STOP
        self.details: dict[str, Any] = {}

    # ----- shared pieces
    def fwm_prompts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        return [fwm_prompt(self.tokenizer, state, action, self.view) for state, action in pairs]

    def full_states(self, states: Sequence[str], answers: Sequence[str]) -> list[str]:
        """Generated answers as full next states (a diff applied to its state; one that does not apply becomes a
        text that never parses)."""
        return [self.view.prediction(s, answer) for s, answer in zip(states, answers)]

    @cached_property
    def answers(self) -> list[str]:
        """The FWM's greedy answer for every candidate, as written (a full state or a diff)."""
        prompts = self.fwm_prompts([(c.state, c.action) for c in self.candidates])
        return [answers[0] for answers in self.sampler.generate(
            prompts, adapter="fwm", temperature=0, max_new_tokens=self.max_state_tokens, stop=self.stop)]

    @cached_property
    def predictions(self) -> list[str]:
        """Greedy FWM next state for every candidate (full texts)."""
        return self.full_states([c.state for c in self.candidates], self.answers)

    @cached_property
    def true_next_states(self) -> list[str]:
        return [self.simulate(candidate)["next_state"] for candidate in self.candidates]

    def fwm_nll(self, pairs: Sequence[tuple[str, str]], answers: Sequence[str], adapter: str = "fwm") -> np.ndarray:
        """Mean per-token NLL of ``answers`` (texts as the FWM writes them: full states or diffs) under the FWM
        given (state, action)."""
        targets = [completion(self.tokenizer, text) for text in answers]
        return -log_likelihood(self.model, self.tokenizer, self.fwm_prompts(pairs), targets, adapter=adapter).mean.float().cpu().numpy()

    # ----- the five scores
    def score(self, method: str) -> list[float]:
        return getattr(self, method)()

    def oracle(self) -> list[float]:
        truths = self.true_next_states
        if self.score_loss == "fields":
            return [field_mismatch(p, t) for p, t in zip(self.predictions, truths)]
        return self.fwm_nll([(c.state, c.action) for c in self.candidates],
                            [self.view.answer(c.state, truth) for c, truth in zip(self.candidates, truths)]).tolist()

    def random(self) -> list[float]:
        return np.random.default_rng(self.seed).random(len(self.candidates)).tolist()

    def uncertainty(self) -> list[float]:
        prompts = self.fwm_prompts([(c.state, c.action) for c in self.candidates])
        samples = self.sampler.generate(prompts, adapter="fwm", n=self.uncertainty_samples,
                                        temperature=self.temperature, top_p=self.top_p,
                                        max_new_tokens=self.max_state_tokens, stop=self.stop)
        return [mean_pairwise_mismatch(self.full_states([c.state] * len(answers), answers))
                for c, answers in zip(self.candidates, samples)]

    def progress(self) -> list[float]:
        pairs = [(c.state, c.action) for c in self.candidates]
        now = self.fwm_nll(pairs, self.answers, adapter="fwm")  # the answers as written: valid or not
        before = self.fwm_nll(pairs, self.answers, adapter="fwm_before")
        return (before - now).tolist()

    def wav(self) -> list[float]:
        states = list(dict.fromkeys(c.state for c in self.candidates))
        drawn = self.sampler.generate([subgoal_prompt(self.tokenizer, s, self.view) for s in states], adapter="subgoal",
                                      n=self.num_subgoals, temperature=self.temperature, top_p=self.top_p,
                                      max_new_tokens=self.max_state_tokens, stop=self.stop)
        pairs = [(state, subgoal) for state, subgoals in zip(states, drawn)
                 for subgoal in self.full_states([state] * len(subgoals), subgoals)]
        inferred = self.inverse([s for s, _ in pairs], [g for _, g in pairs])
        index = {(c.state, c.action): i for i, c in enumerate(self.candidates)}
        usable = [(pair, index[(pair[0], action)]) for pair, action in zip(pairs, inferred)
                  if action is not None and (pair[0], action) in index and (pair[1] or not self.view.is_diff)]
        if self.score_loss == "fields":
            losses = [field_mismatch(subgoal, self.predictions[i]) for (_, subgoal), i in usable]
        elif usable:
            losses = self.fwm_nll([(self.candidates[i].state, self.candidates[i].action) for _, i in usable],
                                  [self.view.answer(state, subgoal) for (state, subgoal), _ in usable]).tolist()
        else:
            losses = []
        scores = [-math.inf] * len(self.candidates)
        for (_, i), loss in zip(usable, losses):
            scores[i] = max(scores[i], loss)
        self.details = {"subgoals": len(pairs), "subgoals_with_action": len(usable),
                        "candidates_proposed": sum(s > -math.inf for s in scores)}
        return scores


def rank_correlations(scores: Sequence[float], reference: Sequence[float]) -> dict[str, float]:
    """Spearman and Kendall rank correlation of ``scores`` with ``reference`` (``-inf`` ranks last;
    NaN when either is constant)."""
    from scipy.stats import kendalltau, spearmanr

    values = np.asarray(scores, dtype=float)
    finite = values[np.isfinite(values)]
    values[~np.isfinite(values)] = (finite.min() - 1.0) if finite.size else 0.0
    if np.ptp(values) == 0 or np.ptp(np.asarray(reference, dtype=float)) == 0:
        return {"spearman": float("nan"), "kendall": float("nan")}
    return {"spearman": float(spearmanr(values, reference).statistic),
            "kendall": float(kendalltau(values, reference).statistic)}


def top_b(scores: Sequence[float], budget: int, seed: int = 0) -> list[int]:
    """Indices of the ``budget`` highest scores. Ties are broken in a seeded random order, so a method with
    nothing to say (e.g. WAV when no subgoal parses: every score ``-inf``) picks like ``random``, not the
    first states of the pool."""
    tie_break = np.random.default_rng(seed).permutation(len(scores))
    ranked = [-math.inf if math.isnan(score) else score for score in scores]
    order = sorted(range(len(scores)), key=lambda i: (-ranked[i], tie_break[i]))
    return order[:budget]
