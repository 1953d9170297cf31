"""SWIRL's two rewards, as TRL reward functions ``f(prompts, completions, **columns) -> list[float]``.

Both score a sampled completion with the *other* role's adapter of the same base model (frozen, under
``no_grad``: :func:`swirl.models.scoring.log_likelihood`), as in DESIGN.md section 1:

* phase I, variational information maximisation (FWM is the policy, prompt (s, z), sample s^):
  ``r(s^) = clamp(mean_t log Q_idm(z_t | s, s^, z_<t), min=clip)``;
* phase II, ELBO maximisation (IDM is the policy, prompt (s, s'), sample z^):
  ``r(z^) = clamp(mean_t log P_fwm(s'_t | s, z^, s'_<t), min=clip)``.

Ground truth travels as dataset columns (``state``, ``latent_action``, ``next_state``). Unparseable
generated states are scored like any other text (the IDM sees them) and counted in ``parse_rate``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from swirl.errors import StateParseError
from swirl.envs.minigrid import text_to_state
from swirl.models.prompts import completion, fwm_prompt, idm_prompt, strip_completion
from swirl.models.scoring import log_likelihood


def parses(text: str, domain: str = "minigrid") -> bool:
    """Whether ``text`` is a valid state of ``domain`` (``minigrid`` or ``maniskill``)."""
    if domain == "maniskill":
        from swirl.envs.maniskill import text_to_state as parse
    else:
        parse = text_to_state
    try:
        parse(text)
    except StateParseError:
        return False
    return True


class LogLikelihoodReward:
    """Shared part of both rewards: score answers under the frozen scorer adapter, clamp from below."""

    default_adapter = ""

    def __init__(self, model: Any, tokenizer: Any, adapter: str | None = None, clip: float = -10.0,
                 token_budget: int = 16384, domain: str = "minigrid"):
        self.model, self.tokenizer, self.clip, self.token_budget = model, tokenizer, clip, token_budget
        self.adapter = adapter or self.default_adapter
        self.domain = domain  # what a parseable state is (logged as parse_rate)

    def clamped_mean_loglik(self, prompts: list[str], answers: Sequence[str]) -> list[float]:
        scored = log_likelihood(self.model, self.tokenizer, prompts, [completion(self.tokenizer, a) for a in answers],
                                adapter=self.adapter, token_budget=self.token_budget)
        return scored.mean.clamp(min=self.clip).tolist()


class IDMActionReward(LogLikelihoodReward):
    """Phase I: how well the frozen IDM recovers the latent action ``z`` from (s, sampled s^)."""

    __name__ = "idm_action_loglik"
    default_adapter = "idm"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], state: Sequence[str],
                 latent_action: Sequence[str], log_metric: Callable[[str, float], None] | None = None,
                 **_: Any) -> list[float]:
        sampled = [strip_completion(self.tokenizer, text) for text in completions]
        if log_metric is not None:
            log_metric("parse_rate", sum(parses(text, self.domain) for text in sampled) / max(1, len(sampled)))
        return self.clamped_mean_loglik([idm_prompt(self.tokenizer, s, s_hat) for s, s_hat in zip(state, sampled)],
                                        latent_action)


class FWMStateReward(LogLikelihoodReward):
    """Phase II: how likely the frozen FWM finds the real next state s' after (s, sampled action z^)."""

    __name__ = "fwm_state_loglik"
    default_adapter = "fwm"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], state: Sequence[str],
                 next_state: Sequence[str], **_: Any) -> list[float]:
        actions = [strip_completion(self.tokenizer, text) for text in completions]
        return self.clamped_mean_loglik([fwm_prompt(self.tokenizer, s, z_hat) for s, z_hat in zip(state, actions)],
                                        next_state)
