"""Samplers: draw completions (next states, actions, subgoals) from a named adapter.

Every backend has the same call::

    sampler.generate(prompts, adapter="fwm", n=4, temperature=0.7, top_p=0.96, max_new_tokens=256,
                     stop=["\\nend"], images=None) -> list[list[str]]   # n answers per prompt

Answers come back without the EOS token; a ``stop`` string ends an answer and is kept in it (a state
ends with its ``end`` line). Backends: ``hf`` (transformers ``generate``, CPU or GPU) and ``vllm`` (GPU;
loads the base once, adapters as ``LoRARequest``s). ``auto`` picks vllm when it is installed and a GPU
is visible, hf otherwise. With a VLM, ``images`` gives each prompt its images (in placeholder order).
"""

from __future__ import annotations

import importlib.util
from typing import Any, Mapping, Protocol, Sequence

from swirl.models.adapters import with_adapters
from swirl.models.loading import load_base_model
from swirl.models.vision import is_processor
from swirl.sampling.hf import HFSampler
from swirl.sampling.vllm import VLLMSampler

SAMPLERS = ("auto", "hf", "vllm")
STATE_STOP = ["\nend"]  # a serialised state's last line


class Sampler(Protocol):
    def generate(
        self,
        prompts: Sequence[str],
        adapter: str | None = None,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: Sequence[str] | None = None,
        images: Sequence[Sequence[Any]] | None = None,
    ) -> list[list[str]]: ...


def vllm_usable() -> bool:
    import torch  # lazy: torch is heavy

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def make_sampler(
    kind: str,
    model: Any,
    tokenizer: Any,
    base_model: str | None = None,
    adapter_dirs: Mapping[str, str] | None = None,
    seed: int = 0,
    **vllm_kwargs: Any,
) -> Sampler:
    """Build the ``kind`` sampler (``auto``, ``hf`` or ``vllm``) for a PeftModel and its tokenizer.

    The vllm backend needs the base model's name or folder and the saved adapter folders.
    """
    if kind not in SAMPLERS:
        raise ValueError(f"unknown sampler {kind!r}; choose one of {', '.join(SAMPLERS)}")
    if kind == "auto":
        kind = "vllm" if vllm_usable() and base_model is not None else "hf"
    if kind == "hf":
        return HFSampler(model, tokenizer, seed=seed)
    if base_model is None:
        raise ValueError("the vllm sampler needs base_model (the base model's name or folder)")
    if is_processor(tokenizer):  # an IDM prompt shows two states
        vllm_kwargs.setdefault("limit_mm_per_prompt", {"image": 2})
    return VLLMSampler(base_model, adapter_dirs or {}, seed=seed, **vllm_kwargs)


def load_world_model(base_model: str, tokenizer: Any, adapter_dirs: Mapping[str, Any], *, sampler: str = "auto",
                     dtype: str = "auto", seed: int = 0) -> tuple[Any, Sampler]:
    """The base model with the saved adapters ``{name: folder}`` loaded under their names, and a sampler over them.

    The one place that assembles a world model for inference: the loop (each stage's evaluation and phase I's
    annotation), WAV's rounds and ``swirl eval`` all load through here, so the hf and vllm backends see the
    same adapters under the same names.
    """
    model = with_adapters(load_base_model(base_model, dtype=dtype), dict(adapter_dirs))
    return model, make_sampler(sampler, model, tokenizer, base_model=base_model,
                               adapter_dirs={name: str(path) for name, path in adapter_dirs.items()}, seed=seed)
