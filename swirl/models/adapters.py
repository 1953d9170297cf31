"""One base model, several named LoRA adapters (``fwm``, ``idm``, later ``subgoal`` and phase references).

Every role is a LoRA adapter on the same base weights, switched with peft's ``set_adapter``; nothing ever
loads a second copy of the base. Each adapter saves on its own in the standard PEFT layout
(``adapter_config.json`` + ``adapter_model.safetensors``), so a user can load our FWM with plain
``PeftModel.from_pretrained(base, "out/fwm")``.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from swirl.errors import SwirlError
from swirl.paths import atomic_dir


@dataclass(frozen=True)
class DecoderLayers:
    """The decoder layers a LoRA adapter is restricted to (``lora_layers``): their indices, the name of the
    model's layer list (peft's ``layers_pattern``, e.g. ``layers``) and the names of the linear layers inside one
    (what ``"all-linear"`` adapts there)."""

    indices: tuple[int, ...]
    pattern: str
    linear: tuple[str, ...]


def top_layers(model: Any, k: int) -> DecoderLayers:
    """The top ``k`` decoder layers (indices ``n-k .. n-1``) of the base ``model``; a VLM's are its language model's.

    LoRA on these only makes a training step cheaper: nothing below them needs a gradient, so the backward pass
    stops at the lowest adapted layer (unless gradient checkpointing makes TRL/peft require grads on the inputs).
    """
    # lazy: torch, transformers, peft and safetensors are heavy; importing swirl.models stays light
    import torch
    from transformers.pytorch_utils import Conv1D

    n = model.config.get_text_config().num_hidden_layers
    if not 1 <= k <= n:
        raise SwirlError(f"lora_layers must be between 1 and {n}, the model's number of decoder layers (got {k!r})")
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, torch.nn.ModuleList)
             and len(module) == n and "visual" not in name and "vision" not in name]
    if not found:
        raise SwirlError(f"cannot find the {n} decoder layers of {type(model).__name__} to put lora_layers on; "
                         f"leave lora_layers unset to adapt every layer")
    name, layers = found[0]
    linear = sorted({path.rsplit(".", 1)[-1] for path, module in layers.named_modules()
                     if isinstance(module, (torch.nn.Linear, Conv1D))})
    return DecoderLayers(tuple(range(n - k, n)), name.rsplit(".", 1)[-1], tuple(linear))


def lora_config(
    r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: str | list[str] = "all-linear",
    layers: DecoderLayers | None = None,
) -> Any:
    """A causal-LM ``peft.LoraConfig`` (``target_modules="all-linear"``: every linear layer but the LM head).

    ``layers`` (from :func:`top_layers`) restricts the adapter to those decoder layers: peft's
    ``layers_to_transform`` with the model's ``layers_pattern``. peft takes these with a list of module names
    only, so ``"all-linear"`` becomes the names of a decoder layer's linear layers; a regex target (a VLM's
    language model, :data:`~swirl.models.vision.LANGUAGE_MODEL_LINEAR`) gets the layer indices written into it.
    Both are saved in ``adapter_config.json``, so an adapter loaded from its folder keeps its layers.
    """
    from peft import LoraConfig  # lazy: peft is heavy

    options: dict[str, Any] = {}
    if layers is not None:
        if target_modules in ("all-linear", ["all-linear"]):
            target_modules = list(layers.linear)
        if isinstance(target_modules, str):  # peft full-matches a regex: keep the keys inside the chosen layers
            indices = "|".join(str(index) for index in layers.indices)
            target_modules = rf"(?=.*\b{layers.pattern}\.({indices})\.)(?:{target_modules})"
        else:
            options = {"layers_to_transform": list(layers.indices), "layers_pattern": layers.pattern}
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                      task_type="CAUSAL_LM", **options)


def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def with_adapters(base: Any, adapters: Mapping[str, Any]) -> Any:
    """Wrap ``base`` in a ``PeftModel`` holding the named adapters.

    Each value is either a ``LoraConfig`` (a fresh adapter) or a folder written by :func:`save_adapter`
    (loaded trainable). The first adapter is the active one.
    """
    from peft import PeftModel, get_peft_model  # lazy: peft is heavy

    if not adapters:
        raise ValueError("with_adapters needs at least one adapter")
    model = None
    for name, source in adapters.items():
        from_dir = isinstance(source, (str, os.PathLike))
        if from_dir and not is_adapter_dir(source):
            raise SwirlError(f"no LoRA adapter at {source} (expected adapter_config.json there)")
        if model is None:
            if from_dir:
                model = PeftModel.from_pretrained(base, str(source), adapter_name=name, is_trainable=True)
            else:
                model = get_peft_model(base, copy.deepcopy(source), adapter_name=name)
        elif from_dir:
            model.load_adapter(str(source), adapter_name=name, is_trainable=True)
        else:
            model.add_adapter(name, copy.deepcopy(source))
    model.set_adapter(next(iter(adapters)))
    return model


def save_adapter(model: Any, adapter: str, out_dir: str | os.PathLike) -> Path:
    """Save one adapter, alone, in the standard PEFT layout at ``out_dir`` (atomically replacing it)."""
    # lazy: peft and safetensors.torch (torch) are heavy
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    if adapter not in model.peft_config:
        raise ValueError(f"the model has no adapter {adapter!r} (has {', '.join(model.peft_config)})")
    with atomic_dir(out_dir, replace=True) as staging:
        config = copy.deepcopy(model.peft_config[adapter])
        config.inference_mode = True
        config.save_pretrained(staging)
        weights = get_peft_model_state_dict(model, adapter_name=adapter)
        save_file({key: value.detach().contiguous().cpu() for key, value in weights.items()},
                  staging / "adapter_model.safetensors", metadata={"format": "pt"})
    return Path(out_dir)


def adapter_is_trainable(model: Any, adapter: str) -> bool:
    """Whether ``adapter``'s weights require grad. peft sets this per adapter as a whole, so the first LoRA
    tensor of the adapter answers it (no walk over the base's parameters: this runs on every scorer call)."""
    marker = f".{adapter}."
    return next((parameter.requires_grad for name, parameter in model.named_parameters() if marker in name), False)


@contextmanager
def use_adapter(model: Any, adapter: str) -> Iterator[Any]:
    """Make ``adapter`` active (frozen) for the block; restore the previous adapter and its trainability.

    peft's ``set_adapter`` also flips ``requires_grad``; a scorer that switches adapters inside a training
    step must leave the policy exactly as it found it.
    """
    previous = model.active_adapter
    if adapter == previous:
        yield model
        return
    if adapter not in model.peft_config:
        raise ValueError(f"the model has no adapter {adapter!r} (has {', '.join(model.peft_config)})")
    was_trainable = adapter_is_trainable(model, previous)
    try:
        model.set_adapter(adapter, inference_mode=True)
        yield model
    finally:
        model.set_adapter(previous, inference_mode=not was_trainable)
