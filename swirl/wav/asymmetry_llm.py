"""The asymmetry sweep's ``llm`` backend: a forward and an inverse model that are LoRA adapters of one language model.

Why: the structured forward model (:mod:`swirl.wav.structured`) predicts each cell from the agent's neighbourhood,
so it never sees the objects it does not have to change, and the paper's dimensionality term cannot show up with it.
A language model reads the whole state text: its forward model must copy (or, with diffs, leave out) every object
and write the changed ones, while its inverse model reads diff(s, s') and names one action. This is the pair
WAV's LLM backend verifies with (``backend: llm``, ``state_format: diff``, ``inverse_model: llm``), trained here
the way the structured cell trains its models: the same rows, the same fixed number of SFT steps for each model, the
same test rows.

Each cell trains the ``fwm`` and ``idm`` adapters from scratch (:func:`swirl.sft.sft_adapter`) in a scratch
folder, predicts greedily (the forward model's diff applied to s; one that does not apply counts as a wrong
prediction) and deletes the folder: the sweep keeps numbers, not adapters.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swirl.config_fields import LoRAModelFields
from swirl.envs.domain import MINIGRID
from swirl.models.loading import load_tokenizer
from swirl.models.state_view import state_view
from swirl.sampling import load_world_model
from swirl.sft import sft_adapter
from swirl.wav.round_models import adapter_inverse
from swirl.wav.world_models import LLMWorldModels

# what every llm cell's numbers depend on, beside the sweep's data settings
LLM_CELL_SETTINGS = ("model", "lora_r", "lora_alpha", "lora_dropout", "lora_layers", "llm_steps", "llm_inverse_steps",
                     "llm_learning_rate", "llm_batch_size", "max_state_tokens", "max_action_tokens")


@dataclass
class LLMCellFields(LoRAModelFields):
    """How an ``llm`` cell trains and decodes (the defaults are ``wav-protocol-llm``'s, with more steps)."""

    lora_layers: int | None = field(default=8, metadata={"help": "llm backend: LoRA on the top K decoder layers "
                                                                 "only (None: all)."})
    llm_steps: int = field(default=120, metadata={"help": "llm backend: SFT steps of the forward model (x "
                                                          "llm_batch_size rows: 4.8 epochs of 200 labels, 2.4 of "
                                                          "400)."})
    llm_inverse_steps: int = field(default=120, metadata={"help": "llm backend: SFT steps of the inverse model (as "
                                                                  "many as the forward model's: the same compute; "
                                                                  "at 40 steps it was still underfit, 44% on 200 "
                                                                  "labels)."})
    llm_learning_rate: float = field(default=2e-3, metadata={"help": "llm backend: SFT learning rate."})
    llm_batch_size: int = field(default=8, metadata={"help": "llm backend: SFT batch size."})
    max_state_tokens: int = field(default=96, metadata={"help": "llm backend: max new tokens of a predicted diff "
                                                                "(a room's diffs with 8 noisy tiles run to ~60)."})
    max_action_tokens: int = field(default=8, metadata={"help": "llm backend: max new tokens of an inferred "
                                                                "action."})


def llm_predictions(train: Any, test: Any, seed: int, settings: LLMCellFields,
                    scratch_dir: str | Path | None = None) -> tuple[list[str], list[str | None], dict[str, Any]]:
    """Train ``fwm`` and ``idm`` on ``train`` and return, for ``test``, the predicted next states, the inferred
    actions (``None``: s' did not parse) and facts: each stage's seconds, the share of diffs that did not apply."""
    view = state_view("text", MINIGRID.name, "diff")
    tokenizer = load_tokenizer(settings.model)
    lora = (settings.lora_r, settings.lora_alpha, settings.lora_dropout)
    no_eval = test.select([])
    folder = Path(tempfile.mkdtemp(prefix="asymmetry-llm-", dir=scratch_dir))
    try:
        facts: dict[str, Any] = {}
        for role, steps in (("fwm", settings.llm_steps), ("idm", settings.llm_inverse_steps)):
            metrics = sft_adapter(settings.model, tokenizer, role, train, no_eval, folder / role, lora=lora,
                                  dtype=settings.dtype, steps=steps,
                                  learning_rate=settings.llm_learning_rate, batch_size=settings.llm_batch_size,
                                  seed=seed, trainer_dir=folder / "trainer" / role, view=view,
                                  lora_layers=settings.lora_layers)
            facts[f"{role}_sft_seconds"] = metrics["wall_time_s"]
        model, sampler = load_world_model(settings.model, tokenizer, {"fwm": folder / "fwm", "idm": folder / "idm"},
                                          sampler="hf", dtype=settings.dtype, seed=seed)
        inverse = adapter_inverse(view, tokenizer, sampler, settings.max_action_tokens)
        world = LLMWorldModels(model, tokenizer, sampler, inverse, view=view,
                               max_state_tokens=settings.max_state_tokens)
        start = time.perf_counter()
        predicted_states = world.predict(test["state"], test["action"])
        predicted_actions = world.infer(test["state"], test["next_state"])
        facts["predict_seconds"] = time.perf_counter() - start
        facts["fwm_unapplied"] = sum(not text for text in predicted_states) / len(predicted_states)
        return predicted_states, predicted_actions, facts
    finally:
        shutil.rmtree(folder, ignore_errors=True)
