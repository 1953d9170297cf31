"""The world models WAV verifies with, behind one interface, so its scores (:mod:`swirl.wav.scores`) and its
evaluation are written once for both backends (``WAVConfig.backend``):

* ``llm``: the LoRA adapters ``fwm``, ``fwm_before``, ``subgoal`` (and ``idm``) of one base model, through a
  sampler (:class:`LLMWorldModels`);
* ``structured``: small torch models over the codec's structured state, the kind of network the WAV paper runs
  its MiniGrid protocol with (:class:`StructuredWorldModels`, :mod:`swirl.wav.structured`).

Every state in and out is a full state text (with ``state_format: diff`` the LLM writes diffs; they are applied
to their state here, and one that does not apply becomes an empty text, which never parses).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np

from swirl.models.prompts import completion, fwm_prompt, subgoal_prompt
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import StateView, TEXT_VIEW
from swirl.sampling import STATE_STOP
from swirl.wav.sparse_idm import SparseIDM, try_predict

InverseModel = Callable[[Sequence[str], Sequence[str]], list[str | None]]


class WorldModels(Protocol):
    """What acquisition asks of a backend: the forward model f (now and before the last round), the inverse
    model h and the subgoal generator g, each on a batch."""

    def predict(self, states: Sequence[str], actions: Sequence[str]) -> list[str]:
        """f's most likely next state of each (state, action)."""

    def sample(self, states: Sequence[str], actions: Sequence[str], n: int) -> list[list[str]]:
        """``n`` next states drawn from f for each (state, action)."""

    def propose(self, states: Sequence[str], k: int) -> list[list[str]]:
        """Up to ``k`` candidate next states (subgoals) from g for each state."""

    def infer(self, states: Sequence[str], next_states: Sequence[str]) -> list[str | None]:
        """h's action for each (state, next state); ``None`` where it cannot answer (a state that does not parse)."""

    def nll(self, states: Sequence[str], actions: Sequence[str], targets: Sequence[str],
            before: bool = False) -> np.ndarray:
        """f's negative log-likelihood of each target next state (mean per token or per field); ``before``: the
        forward model as it was before the last round's training."""

    def masked_mismatch(self, states: Sequence[str], targets: Sequence[str], predictions: Sequence[str]) -> list[float]:
        """The ``masked`` verification loss: how far each prediction's step is from its target's on the sparse
        inverse model's kept features (:meth:`swirl.wav.sparse_idm.SparseIDM.masked_mismatch`)."""


class LLMWorldModels:
    """The ``llm`` backend: adapters of one base model, generated through ``sampler``. ``sparse_idm``: the sparse
    (or dense) inverse model whose mask the ``masked`` verification loss reads (``None`` with the ``idm`` adapter,
    which has no mask)."""

    def __init__(self, model: Any, tokenizer: Any, sampler: Any, inverse: InverseModel, *, view: StateView = TEXT_VIEW,
                 temperature: float = 0.7, top_p: float = 0.96, max_state_tokens: int = 256,
                 sparse_idm: SparseIDM | None = None):
        self.model, self.tokenizer, self.sampler, self.inverse = model, tokenizer, sampler, inverse
        self.sparse_idm = sparse_idm
        self.view, self.temperature, self.top_p, self.max_state_tokens = view, temperature, top_p, max_state_tokens
        self.stop = None if view.is_diff else STATE_STOP
        self.written: dict[tuple[str, str], str] = {}  # (state, action) -> a diff that did not apply, as written

    def prompts(self, states: Sequence[str], actions: Sequence[str]) -> list[str]:
        return [fwm_prompt(self.tokenizer, state, action, self.view) for state, action in zip(states, actions)]

    def full_states(self, states: Sequence[str], answers: Sequence[str]) -> list[str]:
        return [self.view.prediction(state, answer) for state, answer in zip(states, answers)]

    def predict(self, states: Sequence[str], actions: Sequence[str]) -> list[str]:
        answers = [drawn[0] for drawn in self.sampler.generate(
            self.prompts(states, actions), adapter="fwm", temperature=0, max_new_tokens=self.max_state_tokens,
            stop=self.stop)]
        predictions = self.full_states(states, answers)
        # a diff that does not apply has no full text to score: nll reads that answer as it was written. Any other
        # target is scored by its one canonical text, so the oracle's NLL of the truth does not depend on whether
        # f happened to predict it (and write it its own way) before.
        self.written.update(((s, a), answer) for s, a, p, answer in zip(states, actions, predictions, answers) if not p)
        return predictions

    def sample(self, states: Sequence[str], actions: Sequence[str], n: int) -> list[list[str]]:
        drawn = self.sampler.generate(self.prompts(states, actions), adapter="fwm", n=n, temperature=self.temperature,
                                      top_p=self.top_p, max_new_tokens=self.max_state_tokens, stop=self.stop)
        return [self.full_states([state] * len(answers), answers) for state, answers in zip(states, drawn)]

    def propose(self, states: Sequence[str], k: int) -> list[list[str]]:
        drawn = self.sampler.generate([subgoal_prompt(self.tokenizer, s, self.view) for s in states], adapter="subgoal",
                                      n=k, temperature=self.temperature, top_p=self.top_p,
                                      max_new_tokens=self.max_state_tokens, stop=self.stop)
        return [self.full_states([state] * len(answers), answers) for state, answers in zip(states, drawn)]

    def infer(self, states: Sequence[str], next_states: Sequence[str]) -> list[str | None]:
        return self.inverse(states, next_states)

    def nll(self, states: Sequence[str], actions: Sequence[str], targets: Sequence[str],
            before: bool = False) -> np.ndarray:
        answers = [self.written[(s, a)] if not t and (s, a) in self.written else self.view.answer(s, t)
                   for s, a, t in zip(states, actions, targets)]
        scores = log_likelihood(self.model, self.tokenizer, self.prompts(states, actions),
                                [completion(self.tokenizer, text) for text in answers],
                                adapter="fwm_before" if before else "fwm")
        return -scores.mean.float().cpu().numpy()

    def masked_mismatch(self, states: Sequence[str], targets: Sequence[str], predictions: Sequence[str]) -> list[float]:
        if self.sparse_idm is None:
            raise ValueError("score_loss masked needs a sparse or dense inverse model (inverse_model: sparse); the "
                             "idm adapter has no feature mask")
        return self.sparse_idm.masked_mismatch(states, targets, predictions)


class StructuredWorldModels:
    """The ``structured`` backend: :class:`swirl.wav.structured.StructuredModel` forward models and subgoal
    generator, and a sparse (or dense) inverse model; its NLL (``score_loss: nll``) is the mean per-field
    cross-entropy."""

    def __init__(self, fwm: Any, subgoal: Any, inverse: Any, fwm_before: Any = None, *, temperature: float = 1.0,
                 seed: int = 0):
        self.fwm, self.subgoal, self.inverse, self.fwm_before = fwm, subgoal, inverse, fwm_before
        self.temperature, self.seed = temperature, seed

    def predict(self, states: Sequence[str], actions: Sequence[str]) -> list[str]:
        return self.fwm.predict(states, actions)

    def sample(self, states: Sequence[str], actions: Sequence[str], n: int) -> list[list[str]]:
        return self.fwm.sample(states, actions, n, temperature=self.temperature, seed=self.seed)

    def propose(self, states: Sequence[str], k: int) -> list[list[str]]:
        return self.subgoal.propose(states, k)

    def infer(self, states: Sequence[str], next_states: Sequence[str]) -> list[str | None]:
        return try_predict(self.inverse, states, next_states)

    def nll(self, states: Sequence[str], actions: Sequence[str], targets: Sequence[str],
            before: bool = False) -> np.ndarray:
        model = self.fwm_before if before else self.fwm
        if model is None:
            raise ValueError("this backend holds no forward model from before the last round")
        return np.asarray(model.loss(states, actions, targets), dtype=float)

    def masked_mismatch(self, states: Sequence[str], targets: Sequence[str], predictions: Sequence[str]) -> list[float]:
        return self.inverse.masked_mismatch(states, targets, predictions)

