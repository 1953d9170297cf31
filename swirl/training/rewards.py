"""SWIRL's two rewards, as TRL reward functions ``f(prompts, completions, **columns) -> list[float]``.

Both score a sampled completion with the *other* role's adapter of the same base model (frozen, under
``no_grad``: :func:`swirl.models.scoring.log_likelihood`), as in DESIGN.md section 1:

* phase I, variational information maximisation (FWM is the policy, prompt (s, z), sample s^):
  ``r(s^) = clamp(mean_t log Q_idm(z_t | s, s^, z_<t), min=clip)``;
* phase II, ELBO maximisation (IDM is the policy, prompt (s, s'), sample z^):
  ``r(z^) = clamp(mean_t log P_fwm(s'_t | s, z^, s'_<t), min=clip)``.

Phase I never looks at the observed s' (only the IDM's z was read from it), so nothing stops the FWM from
writing the change that makes z most recognisable, even for a pair where z really did nothing.
:class:`ObservedNextStateReward` is the optional anchor (``phase1_anchor``): ``r(s^) = 1[s^ = s']``. Its
expectation under the policy is ``P_fwm(s' | s, z)``, the likelihood in the ELBO's reconstruction term
``E_q(z|s,s')[log P(s' | s, z)]`` (the term phase II maximises over the IDM), here maximised over the FWM from its
own samples, which is what a GRPO reward can do. Weighted in by TRL's ``reward_weights``.

Every reward records the (s, s') pairs it scored (``pairs_seen``): how many distinct state-only pairs a phase
really trained on is a measured number, not a setting.

Ground truth travels as dataset columns (``state``, ``latent_action``, ``next_state``). With text states
written in full, unparseable generated states are scored like any other text (the IDM sees them) and
counted in ``parse_rate``. With ``state_format: diff`` (``view.is_diff``) the FWM samples a diff, the IDM
reads that diff, and a sampled diff that does not parse or does not apply to s gets the ``clip`` reward
(counted against ``parse_rate``); phase II scores the TRUE diff(s, s') given the sampled action.

Image states (a VLM, ``state_view`` with images): the prompt's first image is the state s (TRL passes the
prompt's images as ``images``). Phase I shows the IDM the sampled next state as an image where the domain
can draw it (MiniGrid: parse with the codec, render with the dataset's renderer at the same scale); a sample
that does not parse cannot be drawn and gets the ``clip`` reward. Phase II's FWM sees the image of s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from swirl.errors import StateParseError
from swirl.envs.minigrid import render_state, text_to_state
from swirl.envs.state_format import next_state_answer
from swirl.models.prompts import completion, fwm_prompt, idm_prompt, strip_completion
from swirl.models.scoring import log_likelihood
from swirl.models.state_view import TEXT_VIEW, StateView


def draw_minigrid_state(text: str | None, like: Any) -> Any | None:
    """A (reconstructed) MiniGrid state as an image at the scale of ``like`` (the image of the prompt's state),
    or None when there is no valid state to draw."""
    if text is None:
        return None
    try:
        state = text_to_state(text)
    except StateParseError:
        return None
    return render_state(state, tile_size=max(1, like.width // state.width))


def completion_text(completion: Any) -> str:
    """A completion as TRL passes it: a string, or for conversational prompts the assistant message(s)."""
    return completion if isinstance(completion, str) else completion[0]["content"]


class PairRecorder:
    """Remembers the (s, s') pairs a reward was called on: the phase's training pairs, as TRL drew them. With a
    ``log`` file each new pair is also appended there (one JSON line), so that a phase resumed from a checkpoint
    still counts the pairs of its steps before the interruption."""

    def __init__(self, log: Path | None = None) -> None:
        self.pairs_seen: set[tuple[str, str]] = set()
        self.log = log

    def record(self, state: Sequence[str], next_state: Sequence[str] | None) -> None:
        if next_state is None:
            return
        new = [pair for pair in dict.fromkeys(zip(state, next_state)) if pair not in self.pairs_seen]
        self.pairs_seen.update(new)
        if self.log is not None and new:
            with open(self.log, "a") as file:
                file.writelines(json.dumps(pair) + "\n" for pair in new)


class LogLikelihoodReward(PairRecorder):
    """Shared part of both rewards: score answers under the frozen scorer adapter, clamp from below. A (prompt,
    answer) that occurs several times in a call (a group's samples often repeat) is scored once."""

    default_adapter = ""

    def __init__(self, model: Any, tokenizer: Any, adapter: str | None = None, clip: float = -10.0,
                 token_budget: int = 16384, view: StateView = TEXT_VIEW, pair_log: Path | None = None):
        super().__init__(pair_log)
        self.model, self.tokenizer, self.clip, self.token_budget = model, tokenizer, clip, token_budget
        self.adapter = adapter or self.default_adapter
        self.view = view  # how the scorer's prompts show states; its domain says what a valid state is
        self.scored_answers = self.requested_answers = 0  # the saving of scoring each distinct answer once

    def first_images(self, images: Sequence[Sequence[Any]] | None) -> list[list[Any]]:
        """The image of s for each prompt (its first image)."""
        if images is None:
            raise ValueError(f"state_modality {self.view.modality}: the reward needs the prompts' images (an "
                             f"`images` column in the GRPO dataset)")
        return [[row[0]] for row in images]

    def clamped_mean_loglik(self, prompts: list[str], answers: Sequence[str],
                            images: list[list[Any]] | None = None) -> list[float]:
        if not prompts:
            return []
        self.requested_answers += len(prompts)
        if images is not None:  # image prompts are not compared: each is scored as it comes
            return self.score(prompts, list(answers), images)
        keys = list(zip(prompts, answers))
        distinct = list(dict.fromkeys(keys))
        value = dict(zip(distinct, self.score([p for p, _ in distinct], [a for _, a in distinct], None)))
        return [value[key] for key in keys]

    def score(self, prompts: list[str], answers: list[str], images: list[list[Any]] | None) -> list[float]:
        self.scored_answers += len(prompts)
        scored = log_likelihood(self.model, self.tokenizer, prompts, [completion(self.tokenizer, a) for a in answers],
                                adapter=self.adapter, token_budget=self.token_budget, images=images)
        return scored.mean.clamp(min=self.clip).tolist()


class IDMActionReward(LogLikelihoodReward):
    """Phase I: how well the frozen IDM recovers the latent action ``z`` from (s, sampled s^)."""

    __name__ = "idm_action_loglik"
    default_adapter = "idm"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], state: Sequence[str],
                 latent_action: Sequence[str], log_metric: Callable[[str, float], None] | None = None,
                 images: Sequence[Sequence[Any]] | None = None, next_state: Sequence[str] | None = None,
                 **_: Any) -> list[float]:
        self.record(state, next_state)
        sampled = [strip_completion(self.tokenizer, completion_text(text)) for text in completions]
        full = [self.view.reconstruct(s, s_hat) for s, s_hat in zip(state, sampled)]  # None: not a valid state
        if log_metric is not None:
            log_metric("parse_rate", sum(text is not None for text in full) / max(1, len(sampled)))
        # the IDM reads a valid sample's canonical diff (a diff restating an unchanged pose is a no-op, not a move);
        # a full-state sample that does not parse is read as written
        shown = [self.view.answer(s, text) if text is not None else s_hat for s, s_hat, text in zip(state, sampled, full)]
        prompts_for_idm = [idm_prompt(self.tokenizer, s, s_hat, self.view) for s, s_hat in zip(state, shown)]
        state_images = self.first_images(images) if self.view.has_images else None
        drawn: list[Any] = []
        if self.view.shows_image("next_state"):  # the IDM sees s^ drawn: only a valid state can be drawn
            drawn = [draw_minigrid_state(text, row[0]) for text, row in zip(full, state_images)]
            scorable = [i for i, image in enumerate(drawn) if image is not None]
        else:  # a full-text sample is read as it is, valid or not; a diff must apply to s
            scorable = [i for i, text in enumerate(full) if text is not None or not self.view.is_diff]
        rewards = [self.clip] * len(sampled)  # an invalid diff or an undrawable state gets the floor
        images_for_idm = None
        if state_images is not None:
            images_for_idm = [state_images[i] + ([drawn[i]] if drawn else []) for i in scorable]
        scored = self.clamped_mean_loglik([prompts_for_idm[i] for i in scorable], [latent_action[i] for i in scorable],
                                          images_for_idm)
        for i, reward in zip(scorable, scored):
            rewards[i] = reward
        return rewards


class FWMStateReward(LogLikelihoodReward):
    """Phase II: how likely the frozen FWM finds the real next state s' after (s, sampled action z^)."""

    __name__ = "fwm_state_loglik"
    default_adapter = "fwm"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], state: Sequence[str],
                 next_state: Sequence[str], images: Sequence[Sequence[Any]] | None = None, **_: Any) -> list[float]:
        self.record(state, next_state)
        actions = [strip_completion(self.tokenizer, completion_text(text)) for text in completions]
        state_images = self.first_images(images) if self.view.has_images else None
        # s', or diff(s, s'): once per prompt, not once per sample of its group
        shown = {pair: self.view.answer(*pair) for pair in set(zip(state, next_state))}
        answers = [shown[pair] for pair in zip(state, next_state)]
        return self.clamped_mean_loglik([fwm_prompt(self.tokenizer, s, z_hat, self.view)
                                         for s, z_hat in zip(state, actions)], answers, state_images)


class ObservedNextStateReward(PairRecorder):
    """Phase I's optional anchor: 1 when a sampled next state is the observed s', else 0 (a sample that is not a
    valid next state included). ``E[r] = P_fwm(s' | s, z)``: the ELBO's reconstruction term, as a reward.

    >>> from swirl.models.state_view import state_view
    >>> reward = ObservedNextStateReward(tokenizer=None, view=state_view("text", "minigrid", "diff"))
    >>> s = "room 4x4\\nagent 1,1 facing right\\ncarrying none\\nend"
    >>> moved = s.replace("1,1", "2,1")
    >>> reward([None] * 3, ["agent 2,1 facing right", "agent 1,1 facing down", "not a diff"], state=[s] * 3,
    ...        next_state=[moved] * 3)
    [1.0, 0.0, 0.0]
    """

    __name__ = "observed_next_state"

    def __init__(self, tokenizer: Any, view: StateView = TEXT_VIEW):
        super().__init__()
        self.tokenizer, self.view = tokenizer, view

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], state: Sequence[str],
                 next_state: Sequence[str], **_: Any) -> list[float]:
        self.record(state, next_state)
        # the observed change, once per pair (a group shares it); samples are compared by their canonical diff
        observed = {pair: next_state_answer(*pair, "diff", self.view.domain) for pair in set(zip(state, next_state))}
        rewards = []
        for s, s_next, text in zip(state, next_state, completions):
            answer = completion_text(text)
            sampled = self.view.reconstruct(s, answer if self.tokenizer is None else strip_completion(self.tokenizer, answer))
            same = sampled is not None and next_state_answer(s, sampled, "diff", self.view.domain) == observed[(s, s_next)]
            rewards.append(float(same))
        return rewards
