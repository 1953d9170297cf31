"""World-model evaluation on a dataset split: FWM next-state exact match and parse rate, IDM action accuracy.

The loop calls :func:`evaluate_world_model` after every phase. Greedy decoding with the sampler from
:mod:`swirl.sampling` and the prompts from :mod:`swirl.models.prompts`, like training.
"""

from __future__ import annotations

from typing import Any

from swirl.models.prompts import fwm_prompt, idm_prompt
from swirl.sampling import STATE_STOP
from swirl.training.rewards import parses


def evaluate_world_model(sampler: Any, tokenizer: Any, rows: Any, fwm_adapter: str = "fwm", idm_adapter: str = "idm",
                         max_state_tokens: int = 256, max_action_tokens: int = 8) -> dict[str, float]:
    """``rows``: a labelled split (``state``, ``action``, ``next_state``). Returns rates in [0, 1]."""
    if rows.num_rows == 0:
        raise ValueError("cannot evaluate on an empty split")
    states, actions, next_states = rows["state"], rows["action"], rows["next_state"]
    predicted_states = [answers[0] for answers in sampler.generate(
        [fwm_prompt(tokenizer, s, a) for s, a in zip(states, actions)], adapter=fwm_adapter, temperature=0,
        max_new_tokens=max_state_tokens, stop=STATE_STOP)]
    predicted_actions = [answers[0] for answers in sampler.generate(
        [idm_prompt(tokenizer, s, n) for s, n in zip(states, next_states)], adapter=idm_adapter, temperature=0,
        max_new_tokens=max_action_tokens)]
    count = len(states)
    return {
        "rows": count,
        "fwm_exact_match": sum(p == n for p, n in zip(predicted_states, next_states)) / count,
        "fwm_parse_rate": sum(map(parses, predicted_states)) / count,
        "idm_accuracy": sum(p == a for p, a in zip(predicted_actions, actions)) / count,
    }
