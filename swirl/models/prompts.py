"""The one definition of every prompt and completion: SFT, GRPO, scoring, sampling and eval all call these,
so what a model is trained on cannot drift from what it is scored or sampled with.

A prompt is a plain string: the chat template applied to a short system message and the role's question,
ending with the assistant's turn opener. A completion is the answer followed by the tokenizer's EOS
(``<|im_end|>`` for ChatML models), so "turn" never scores like a prefix of "turn left" and samplers
know where an answer ends.
"""

from __future__ import annotations

from typing import Any

ROLES = ("fwm", "idm", "subgoal")
SYSTEM_PROMPT = "You are a world model of an environment."
PROMPT_TEMPLATES = {
    # forward world model P(s' | s, a)
    "fwm": "State:\n{state}\nAction: {action}\nWhat is the next state?",
    # inverse dynamics model Q(a | s, s')
    "idm": "State:\n{state}\nNext state:\n{next_state}\nWhich action leads from the state to the next state?",
    # subgoal generator g(s' | s) (WAV)
    "subgoal": "State:\n{state}\nWhat could the next state be?",
}
TARGET_COLUMN = {"fwm": "next_state", "idm": "action", "subgoal": "next_state"}


def build_prompt(tokenizer: Any, role: str, **fields: str) -> str:
    """Render ``role``'s question with the tokenizer's chat template (plain text if it has none)."""
    if role not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    question = PROMPT_TEMPLATES[role].format(**fields)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{SYSTEM_PROMPT}\n\n{question}\nAnswer:\n"


def fwm_prompt(tokenizer: Any, state: str, action: str) -> str:
    return build_prompt(tokenizer, "fwm", state=state, action=action)


def idm_prompt(tokenizer: Any, state: str, next_state: str) -> str:
    return build_prompt(tokenizer, "idm", state=state, next_state=next_state)


def subgoal_prompt(tokenizer: Any, state: str) -> str:
    return build_prompt(tokenizer, "subgoal", state=state)


def end_of_answer(tokenizer: Any) -> str:
    """The string that closes every completion (the tokenizer's EOS)."""
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos_token; set one so completions have an end")
    return tokenizer.eos_token


def completion(tokenizer: Any, answer: str) -> str:
    """An answer as the model is trained to write it: the text, then EOS."""
    return answer + end_of_answer(tokenizer)


def strip_completion(tokenizer: Any, text: str) -> str:
    """A generated completion back to the bare answer (EOS and surrounding whitespace removed)."""
    return text.split(end_of_answer(tokenizer), 1)[0].strip()


def prompt_for_row(tokenizer: Any, role: str, row: dict) -> str:
    """The prompt of a dataset row (columns ``state``, ``action``, ``next_state``) for ``role``."""
    if role == "fwm":
        return fwm_prompt(tokenizer, row["state"], row["action"])
    if role == "idm":
        return idm_prompt(tokenizer, row["state"], row["next_state"])
    return subgoal_prompt(tokenizer, row["state"])


def prompt_completion_dataset(dataset: Any, role: str, tokenizer: Any):
    """A transitions ``Dataset`` as TRL's prompt-completion format for ``role`` (other columns kept)."""
    target = TARGET_COLUMN[role]

    def to_example(row: dict) -> dict:
        return {"prompt": prompt_for_row(tokenizer, role, row), "completion": completion(tokenizer, row[target])}

    return dataset.map(to_example, desc=f"{role} prompts", keep_in_memory=True)  # no cache files in the data folder
