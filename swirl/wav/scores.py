"""Acquisition scores over a pool of candidate (state, action) pairs: WAV's verification score and the four
baselines. Higher means "label this first".

* ``wav`` (the cycle subgoal -> inverse -> forward): draw K subgoals ``s~ ~ g(.|s)`` from the subgoal
  generator, infer ``a~ = h(s, s~)`` with the inverse model, and score ``l(s~, s^)`` where ``s^ = FWM(s, a~)``:
  ``fields`` is the mismatch fraction of the parsed states (``s^`` greedy), ``nll`` is the FWM's NLL of ``s~``
  given ``(s, a~)`` (teacher-forced per token for the LLM, the per-field cross-entropy for the structured
  model; no generation), ``masked`` is the mismatch of the steps ``s -> s~`` and ``s -> s^`` on the sparse
  inverse model's kept features ``M`` (what actions change; noisy floor tiles left out). A candidate ``(s, a)`` gets the highest
  score of the subgoals whose inferred action is ``a``; an action no subgoal leads to is never proposed
  (score ``-inf``: off the data manifold as far as the subgoal generator knows).
* ``random``: uniform scores.
* ``uncertainty``: disagreement of N sampled FWM predictions for ``(s, a)`` (mean pairwise field mismatch).
* ``progress``: learning progress, ``log P_now(s^ | s, a) - log P_before(s^ | s, a)`` for the current
  greedy prediction ``s^``: how much the last round of training moved the FWM at this candidate.
* ``oracle``: the FWM's true error on the candidate, ``l(s', s^)`` against the real next state ``s'``
  (executed in simulation for every candidate: the baseline that cheats, and the reference every other
  score is rank-correlated with).

:class:`PoolScorer` computes these through the world-model interface (:mod:`swirl.wav.world_models`, either
backend), lazily, and caches what several of them share (the greedy FWM predictions, the true next states), so a
round computes each model call once.
"""

from __future__ import annotations

import math
from functools import cached_property
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

from swirl.evaluation.metrics import field_mismatch
from swirl.wav.candidates import Candidate, Simulator
from swirl.wav.world_models import WorldModels


def mean_pairwise_mismatch(samples: Sequence[str]) -> float:
    pairs = list(combinations(samples, 2))
    return sum(field_mismatch(a, b) for a, b in pairs) / len(pairs)


class PoolScorer:
    """The scores of one round's pool under one round's world models (either backend, :mod:`swirl.wav.world_models`);
    see the module docstring. ``score_loss`` is the verification loss ``l(s~, s^)``: ``fields`` (the mismatch
    fraction with f's greedy prediction), ``nll`` (f's NLL of the target: per token for ``llm``, the per-field
    cross-entropy for ``structured``) or ``masked`` (the mismatch with f's greedy step on the sparse inverse model's
    kept features)."""

    def __init__(self, candidates: Sequence[Candidate], models: WorldModels, *, score_loss: str = "fields",
                 subgoals: int = 4, uncertainty_samples: int = 4, seed: int = 0,
                 simulate: Callable[[Candidate], dict] | None = None):
        self.candidates, self.models = list(candidates), models
        self.score_loss, self.num_subgoals, self.uncertainty_samples = score_loss, subgoals, uncertainty_samples
        self.seed = seed
        self.simulate = simulate or Simulator()
        self.details: dict[str, Any] = {}

    # ----- shared pieces
    @cached_property
    def predictions(self) -> list[str]:
        """f's greedy next state for every candidate."""
        return self.models.predict([c.state for c in self.candidates], [c.action for c in self.candidates])

    @cached_property
    def true_next_states(self) -> list[str]:
        return [self.simulate(candidate)["next_state"] for candidate in self.candidates]

    @cached_property
    def true_losses(self) -> list[float]:
        """``l(s', f(s, a))`` against every candidate's true next state: the oracle's score, and the yardstick of every
        method's picks (a round asks for it twice with the oracle method: it is computed once)."""
        return self.verification_loss(range(len(self.candidates)), self.true_next_states)

    def verification_loss(self, indices: Sequence[int], targets: Sequence[str]) -> list[float]:
        """``l(target, f(s, a))`` for the candidates at ``indices``."""
        if self.score_loss == "fields":
            return [field_mismatch(target, self.predictions[i]) for i, target in zip(indices, targets)]
        if not indices:
            return []
        chosen = [self.candidates[i] for i in indices]
        if self.score_loss == "masked":
            return self.models.masked_mismatch([c.state for c in chosen], targets, [self.predictions[i] for i in indices])
        return self.models.nll([c.state for c in chosen], [c.action for c in chosen], targets).tolist()

    # ----- the five scores
    def score(self, method: str) -> list[float]:
        return getattr(self, method)()

    def oracle(self) -> list[float]:
        return self.true_losses

    def random(self) -> list[float]:
        return np.random.default_rng(self.seed).random(len(self.candidates)).tolist()

    def uncertainty(self) -> list[float]:
        samples = self.models.sample([c.state for c in self.candidates], [c.action for c in self.candidates],
                                     self.uncertainty_samples)
        return [mean_pairwise_mismatch(drawn) for drawn in samples]

    def progress(self) -> list[float]:
        states, actions = [c.state for c in self.candidates], [c.action for c in self.candidates]
        now = self.models.nll(states, actions, self.predictions)
        before = self.models.nll(states, actions, self.predictions, before=True)
        return (before - now).tolist()

    @cached_property
    def pool_states(self) -> list[str]:
        """The pool's distinct states, in the order of their first candidate: what the subgoal generator is asked."""
        return list(dict.fromkeys(c.state for c in self.candidates))

    def wav(self, proposals: Sequence[Sequence[str]] | None = None) -> list[float]:
        """WAV's score. ``proposals``: the subgoals of each of :attr:`pool_states` (default: ``subgoals`` drawn from
        the subgoal generator); a caller that draws many once can score their prefixes, i.e. WAV with fewer subgoals."""
        states = self.pool_states
        if proposals is None:
            proposals = self.models.propose(states, self.num_subgoals)
        elif len(proposals) != len(states):
            raise ValueError(f"wav needs one list of subgoals per pool state: got {len(proposals)} for {len(states)}")
        pairs = [(state, subgoal) for state, subgoals in zip(states, proposals) for subgoal in subgoals]
        inferred = self.models.infer([s for s, _ in pairs], [g for _, g in pairs])
        index = {(c.state, c.action): i for i, c in enumerate(self.candidates)}
        usable = [(subgoal, index[(state, action)]) for (state, subgoal), action in zip(pairs, inferred)
                  if action is not None and (state, action) in index and subgoal]  # "": a diff that did not apply
        losses = self.verification_loss([i for _, i in usable], [subgoal for subgoal, _ in usable])
        scores = [-math.inf] * len(self.candidates)
        for (_, i), loss in zip(usable, losses):
            scores[i] = max(scores[i], loss)
        self.details = {"subgoals": len(pairs), "subgoals_with_action": len(usable),
                        "candidates_proposed": sum(s > -math.inf for s in scores)}
        return scores


def rank_correlations(scores: Sequence[float], reference: Sequence[float],
                      scored_only: bool = False) -> dict[str, float]:
    """Spearman and Kendall rank correlation of ``scores`` with ``reference`` (NaN when either is constant). A
    score of ``-inf`` (a candidate WAV does not propose) ranks last, or, with ``scored_only``, is left out: the
    correlation over the candidates the method scores."""
    # lazy: scipy only for the rank correlations
    from scipy.stats import kendalltau, spearmanr

    values, reference = np.asarray(scores, dtype=float), np.asarray(reference, dtype=float)
    finite = np.isfinite(values)
    if scored_only:
        values, reference = values[finite], reference[finite]
    elif finite.any():
        values[~finite] = values[finite].min() - 1.0
    else:
        values[:] = 0.0
    if values.size < 2 or np.ptp(values) == 0 or np.ptp(reference) == 0:
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
