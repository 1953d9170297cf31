"""What a world model writes for a next state: the ``full`` state text, or only its ``diff`` from the state.

A MiniGrid transition changes 1-3 of a state's ~50 tokens. Asked for the full next state, a small model first
learns to copy its input, and a mean-token log-likelihood of the whole text hardly depends on the action.
With ``state_format: diff`` the FWM writes only the change (``apply_diff(s, diff(s, s')) == s'``, lossless),
the IDM reads ``(s, diff(s, s'))`` and the subgoal generator writes a change too. That is a
reparametrisation of s' given s: the diff is a deterministic, invertible function of s' for a fixed s, so
``Q(a | s, diff(s, s'))`` is the same model class as ``Q(a | s, s')`` and the SWIRL equations are unchanged.
Metrics are always computed on the reconstructed full state, so numbers compare across formats.

Each codec owns its diff text (``swirl.envs.minigrid``: changed cells / lines; ``swirl.envs.maniskill``:
per-field deltas at the text's precision); this module only takes the domain's codec from its registry record.
"""

from __future__ import annotations

from swirl.envs.domain import DEFAULT_DOMAIN, get_domain
from swirl.errors import StateParseError

STATE_FORMATS = ("full", "diff")


def check_state_format(state_format: str) -> None:
    if state_format not in STATE_FORMATS:
        raise ValueError(f"state_format must be one of {', '.join(STATE_FORMATS)}, got {state_format!r}")


def next_state_answer(state: str, next_state: str, state_format: str = "full", domain: str = DEFAULT_DOMAIN) -> str:
    """What the model writes for ``next_state`` after ``state``: the text itself, or the diff."""
    check_state_format(state_format)
    return next_state if state_format == "full" else get_domain(domain).codec.state_diff(state, next_state)


def next_state_from_answer(state: str, answer: str, state_format: str = "full", domain: str = DEFAULT_DOMAIN) -> str:
    """The full next-state text a model's answer stands for; ``StateParseError`` when it does not parse (or, a
    diff, does not apply to ``state``)."""
    check_state_format(state_format)
    parsed = get_domain(domain).codec
    if state_format == "diff":
        return parsed.apply_diff(state, answer)
    parsed.text_to_state(answer)
    return answer


def reconstruct(state: str, answer: str, state_format: str = "full", domain: str = DEFAULT_DOMAIN) -> str | None:
    """:func:`next_state_from_answer`, or None for an answer that is not a valid next state."""
    try:
        return next_state_from_answer(state, answer, state_format, domain)
    except StateParseError:
        return None
