"""The one definition of every prompt and completion: SFT, GRPO, scoring, sampling and eval all call these,
so what a model is trained on cannot drift from what it is scored or sampled with.

A prompt is a plain string: the chat template applied to a short system message and the role's question,
ending with the assistant's turn opener. A completion is the answer followed by the tokenizer's EOS
(``<|im_end|>`` for ChatML models), so "turn" never scores like a prefix of "turn left" and samplers
know where an answer ends.

With a VLM, a :class:`~swirl.models.state_view.StateView` can show states as images: the question's
``{state}`` / ``{next_state}`` become ``{"type": "image"}`` parts of the user message (followed by the
state's text for ``image+text``), the rendered prompt holds one image placeholder per image, and the
images travel beside the prompt, in the template's order. The default view is text: prompts unchanged.
"""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Any

from swirl.models.state_view import TEXT_VIEW, StateView
from swirl.models.vision import is_processor, text_tokenizer

ROLES = ("fwm", "idm", "subgoal")
# Short on purpose: every prompt token is paid G times per GRPO step and once per scored sample.
SYSTEM_PROMPT = "You are a world model."
PROMPT_TEMPLATES = {
    # forward world model P(s' | s, a)
    "fwm": "State:\n{state}\nAction: {action}\nNext state?",
    # inverse dynamics model Q(a | s, s')
    "idm": "State:\n{state}\nNext state:\n{next_state}\nAction?",
    # subgoal generator g(s' | s) (WAV)
    "subgoal": "State:\n{state}\nNext state?",
}
# With state_format: diff the next state is written (and read) as its change from the state.
DIFF_PROMPT_TEMPLATES = {
    "fwm": "State:\n{state}\nAction: {action}\nChange?",
    "idm": "State:\n{state}\nChange:\n{next_state}\nAction?",
    "subgoal": "State:\n{state}\nChange?",
}
TARGET_COLUMN = {"fwm": "next_state", "idm": "action", "subgoal": "next_state"}
PROMPT_FIELDS = {role: tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)
                 for role, template in PROMPT_TEMPLATES.items()}  # e.g. idm: ("state", "next_state")


def template(role: str, view: StateView = TEXT_VIEW) -> str:
    """``role``'s question template for the view's state format."""
    _check_role(role)
    return (DIFF_PROMPT_TEMPLATES if view.is_diff else PROMPT_TEMPLATES)[role]


def _check_role(role: str) -> None:
    if role not in PROMPT_TEMPLATES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")


def user_content(role: str, view: StateView = TEXT_VIEW, **fields: str) -> str | list[dict[str, Any]]:
    """``role``'s question: a string for text states; with images, a list of text and image parts."""
    question = template(role, view)
    if view.front_cell and "state" in fields:
        fields = {**fields, "state": view.shown_state(fields["state"])}
    if not view.has_images:
        return question.format(**fields)
    parts: list[dict[str, Any]] = []

    def add_text(text: str) -> None:
        if parts and parts[-1]["type"] == "text":
            parts[-1]["text"] += text
        elif text:
            parts.append({"type": "text", "text": text})

    for literal, name, _, _ in string.Formatter().parse(question):
        add_text(literal)
        if name is None:
            continue
        if view.shows_image(name):
            parts.append({"type": "image"})
        if view.shows_text(name):
            add_text(("\n" if view.shows_image(name) else "") + fields[name])
    return parts


def prompt_messages(role: str, view: StateView = TEXT_VIEW, **fields: str) -> list[dict[str, Any]]:
    """The conversation a prompt renders: the system message and ``role``'s question (TRL's conversational
    prompt format, which its trainers need for images)."""
    content = user_content(role, view, **fields)
    system: str | list[dict[str, Any]] = SYSTEM_PROMPT
    if view.has_images:
        system = [{"type": "text", "text": SYSTEM_PROMPT}]
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def build_prompt(tokenizer: Any, role: str, view: StateView = TEXT_VIEW, **fields: str) -> str:
    """Render ``role``'s question with the chat template (plain text if there is none). A VLM's processor
    renders with its own template: the one TRL's trainers render the same conversation with."""
    if view.has_images and not is_processor(tokenizer):
        raise ValueError(f"state_modality {view.modality} needs a vision-language model's processor, not a text "
                         f"tokenizer (use a VLM such as tiny-qwen2-vl, or state_modality text)")
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt_messages(role, view, **fields), tokenize=False,
                                             add_generation_prompt=True)
    return f"{SYSTEM_PROMPT}\n\n{user_content(role, replace(view, modality='text'), **fields)}\nAnswer:\n"


def fwm_prompt(tokenizer: Any, state: str, action: str, view: StateView = TEXT_VIEW) -> str:
    return build_prompt(tokenizer, "fwm", view, state=state, action=action)


def idm_prompt(tokenizer: Any, state: str, next_state: str, view: StateView = TEXT_VIEW) -> str:
    return build_prompt(tokenizer, "idm", view, state=state, next_state=next_state)


def subgoal_prompt(tokenizer: Any, state: str, view: StateView = TEXT_VIEW) -> str:
    return build_prompt(tokenizer, "subgoal", view, state=state)


def end_of_answer(tokenizer: Any) -> str:
    """The string that closes every completion (the tokenizer's EOS)."""
    tokenizer = text_tokenizer(tokenizer)
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no eos_token; set one so completions have an end")
    return tokenizer.eos_token


def completion(tokenizer: Any, answer: str) -> str:
    """An answer as the model is trained to write it: the text, then EOS."""
    return answer + end_of_answer(tokenizer)


def strip_completion(tokenizer: Any, text: str) -> str:
    """A generated completion back to the bare answer (EOS and surrounding whitespace removed)."""
    return text.split(end_of_answer(tokenizer), 1)[0].strip()


def row_fields(role: str, row: dict, view: StateView = TEXT_VIEW) -> dict[str, str]:
    """The texts a dataset row (columns ``state``, ``action``, ``next_state``) fills ``role``'s question with;
    with ``state_format: diff`` the ``next_state`` field shows ``diff(state, next_state)``."""
    _check_role(role)
    fields = {name: row[name] for name in PROMPT_FIELDS[role]}
    if "next_state" in fields and view.is_diff:
        fields["next_state"] = view.answer(row["state"], row["next_state"])
    return fields


def target_for_row(role: str, row: dict, view: StateView = TEXT_VIEW) -> str:
    """What ``role`` answers for a row: the action (idm), or the next state in the view's format."""
    _check_role(role)
    if TARGET_COLUMN[role] == "action":
        return row["action"]
    return view.answer(row["state"], row["next_state"])


def prompt_for_row(tokenizer: Any, role: str, row: dict, view: StateView = TEXT_VIEW) -> str:
    """The prompt of a dataset row (columns ``state``, ``action``, ``next_state``) for ``role``."""
    return build_prompt(tokenizer, role, view, **row_fields(role, row, view))


def images_for_row(role: str, row: dict, view: StateView = TEXT_VIEW) -> list[Any]:
    """The images of a row's ``role`` prompt, in placeholder order (none for text states)."""
    _check_role(role)
    return view.images(PROMPT_FIELDS[role], row)


def trl_prompt_for_row(tokenizer: Any, role: str, row: dict, view: StateView = TEXT_VIEW) -> str | list[dict[str, Any]]:
    """:func:`trl_prompt` of a dataset row (its fields as :func:`row_fields` gives them)."""
    return trl_prompt(tokenizer, role, view, **row_fields(role, row, view))


def trl_prompt(tokenizer: Any, role: str, view: StateView = TEXT_VIEW, **fields: str) -> str | list[dict[str, Any]]:
    """A prompt as TRL's GRPO takes it: the rendered string for text states, the conversation for images
    (GRPO requires conversational prompts with images; it renders them with the processor's chat template,
    as :func:`build_prompt` does, so it is the same prompt, placeholders included)."""
    return prompt_messages(role, view, **fields) if view.has_images else build_prompt(tokenizer, role, view, **fields)


def prompt_completion_dataset(dataset: Any, role: str, tokenizer: Any, view: StateView = TEXT_VIEW):
    """A transitions ``Dataset`` as TRL's prompt-completion format for ``role`` (other columns kept), plus an
    ``images`` column with image states. Prompts stay rendered strings, so TRL's SFT (its vision collator
    too) trains on exactly the tokens swirl scores: the completion ends at EOS, with nothing after it."""
    def to_example(row: dict) -> dict:
        example = {"prompt": prompt_for_row(tokenizer, role, row, view),
                   "completion": completion(tokenizer, target_for_row(role, row, view))}
        return example | ({"images": images_for_row(role, row, view)} if view.has_images else {})

    return dataset.map(to_example, desc=f"{role} prompts", keep_in_memory=True)  # no cache files in the data folder


def encode_prompts(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """Token ids of rendered text prompts exactly as TRL's trainers encode them, for the samplers and the scorer.

    TRL tokenises a string prompt with the tokenizer's own call, special tokens included: ``GRPOTrainer``
    (``_tokenize_prompts``: ``processing_class(text=prompts)``) and ``SFTTrainer`` for prompt-completion text
    (``data_utils._tokenize``: ``processing_class(text=prompt)``). So a tokenizer that adds a BOS (Llama,
    Mistral, Gemma) gets it here as in training; a ChatML one (Qwen, SmolLM2, tiny-qwen2) adds nothing. A chat
    template that writes the BOS into the text gives two BOS, in TRL and here alike: parity first (what is
    sampled and scored is what was trained). Image prompts go through the processor with no special tokens
    instead, as TRL's vision collator does (:func:`~swirl.models.vision.encode_with_images`).
    """
    return text_tokenizer(tokenizer)(text=list(prompts))["input_ids"]
