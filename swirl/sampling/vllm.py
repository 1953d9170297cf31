"""The vLLM sampler (GPU): the base model is loaded once; each adapter is a ``LoRARequest`` on its folder.

After a training step the trainer saves the adapter and calls :meth:`VLLMSampler.update_adapter`; the new
folder gets a new LoRA id, so vLLM loads the new weights (adapter-only sync: base weights are never
merged or re-sent). vLLM is imported lazily, here only; everything that does not need vLLM itself
(:class:`LoRARegistry`, :func:`sampling_kwargs`) is plain Python and tested on CPU.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from swirl.errors import SwirlError
from swirl.models.prompts import encode_prompts


def import_vllm() -> Any:
    """``import vllm``, or one line saying what to do when it (or a GPU) is missing."""
    try:  # lazy: vllm is optional (GPU only) and torch heavy; nothing else here needs them
        import vllm
    except ImportError:
        raise SwirlError("the vllm sampler needs vLLM (pip install 'swirl-wm[vllm]', GPU only); use sampler: hf") from None
    import torch

    if not torch.cuda.is_available():
        raise SwirlError("the vllm sampler needs a CUDA GPU and none is visible; use sampler: hf")
    return vllm


class LoRARegistry:
    """Adapter name -> (LoRA request name, integer id, folder); every update gets a fresh id."""

    def __init__(self) -> None:
        self._next_id = 1
        self._requests: dict[str, tuple[str, int, str]] = {}

    def update(self, adapter: str, path: str | os.PathLike) -> tuple[str, int, str]:
        if not (os.path.isfile(os.path.join(path, "adapter_config.json"))):
            raise SwirlError(f"no saved LoRA adapter at {path} (expected adapter_config.json)")
        lora_id = self._next_id
        self._next_id += 1
        self._requests[adapter] = (f"{adapter}-v{lora_id}", lora_id, os.path.abspath(path))
        return self._requests[adapter]

    def request(self, adapter: str) -> tuple[str, int, str]:
        if adapter not in self._requests:
            raise SwirlError(f"adapter {adapter!r} was never saved for vLLM (known: {', '.join(self._requests) or 'none'})")
        return self._requests[adapter]

    def __len__(self) -> int:
        return len(self._requests)


def sampling_kwargs(n: int, temperature: float, top_p: float, max_new_tokens: int,
                    stop: Sequence[str] | None, seed: int | None) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments matching the hf sampler's behaviour (stop strings kept)."""
    return {
        "n": n,
        "temperature": temperature,
        "top_p": top_p if temperature > 0 else 1.0,
        "max_tokens": max_new_tokens,
        "stop": list(stop or []),
        "include_stop_str_in_output": True,
        "skip_special_tokens": True,
        "seed": seed,
    }


class VLLMSampler:
    """One ``vllm.LLM`` with LoRA enabled; adapters passed per call as ``LoRARequest``s."""

    def __init__(self, base_model: str, adapter_dirs: Mapping[str, str | os.PathLike], seed: int = 0,
                 max_lora_rank: int = 64, gpu_memory_utilization: float = 0.5, dtype: str = "auto",
                 **llm_kwargs: Any):
        self.vllm = import_vllm()
        self.seed = seed
        self.calls = 0
        self.registry = LoRARegistry()
        for adapter, path in adapter_dirs.items():
            self.registry.update(adapter, path)
        self.llm = self.vllm.LLM(
            model=base_model,
            enable_lora=True,
            max_lora_rank=max_lora_rank,
            max_loras=max(2, len(self.registry)),
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            seed=seed,
            **llm_kwargs,
        )

    def update_adapter(self, adapter: str, path: str | os.PathLike) -> None:
        """Point ``adapter`` at freshly saved weights (a new LoRA id, so vLLM reloads them)."""
        self.registry.update(adapter, path)

    def generate(self, prompts: Sequence[str], adapter: str | None = None, n: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 256, stop: Sequence[str] | None = None,
                 images: Sequence[Sequence[Any]] | None = None) -> list[list[str]]:
        from vllm.lora.request import LoRARequest  # lazy: vllm is optional (GPU only)

        request = LoRARequest(*self.registry.request(adapter)) if adapter else None
        params = self.vllm.SamplingParams(
            **sampling_kwargs(n, temperature, top_p, max_new_tokens, stop, self.seed + self.calls)
        )
        self.calls += 1
        # Token ids, encoded as TRL's trainers and the hf sampler encode prompts (encode_prompts: a BOS where the
        # tokenizer adds one), so vLLM samples from exactly the ids the adapters were trained on.
        if images is not None:  # a VLM: vLLM's own processor expands each image placeholder of the text prompt
            requests = [{"prompt": prompt, "multi_modal_data": {"image": list(row)}} if row else {"prompt": prompt}
                        for prompt, row in zip(prompts, images, strict=True)]
        else:
            token_ids = encode_prompts(self.llm.get_tokenizer(), list(prompts))
            requests = [{"prompt_token_ids": ids} for ids in token_ids]
        outputs = self.llm.generate(requests, params, lora_request=request, use_tqdm=False)
        return [[choice.text.strip() for choice in output.outputs] for output in outputs]
