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
from pathlib import Path
from typing import Any, Iterator, Mapping

from swirl.errors import SwirlError
from swirl.paths import atomic_dir


def lora_config(
    r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules: str | list[str] = "all-linear"
) -> Any:
    """A causal-LM ``peft.LoraConfig`` (``target_modules="all-linear"``: every linear layer but the LM head)."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM")


def is_adapter_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def with_adapters(base: Any, adapters: Mapping[str, Any]) -> Any:
    """Wrap ``base`` in a ``PeftModel`` holding the named adapters.

    Each value is either a ``LoraConfig`` (a fresh adapter) or a folder written by :func:`save_adapter`
    (loaded trainable). The first adapter is the active one.
    """
    from peft import PeftModel, get_peft_model

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
