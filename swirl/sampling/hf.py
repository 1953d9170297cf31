"""The Hugging Face sampler: ``model.generate`` with the requested adapter active (CPU or GPU)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Sequence

import torch

from swirl.models.adapters import use_adapter
from swirl.models.prompts import encode_prompts
from swirl.models.scoring import model_device
from swirl.models.vision import is_processor, is_vision_config, text_tokenizer, vision_token_ids
from swirl.progress import bar


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` right after the earliest stop string (kept), if any occurs."""
    ends = [text.index(s) + len(s) for s in stop or () if s in text]
    return text[: min(ends)] if ends else text


class HFSampler:
    """Batched, seeded sampling with ``transformers``; restores the model's adapter and mode afterwards.

    Each call draws from its own seed (``seed``, ``seed + 1``, ...) inside a forked RNG, so sampling is
    reproducible and does not disturb the training RNG. ``tokenizer`` is a VLM's processor when prompts come
    with images.
    """

    def __init__(self, model: Any, tokenizer: Any, seed: int = 0, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.seed = seed
        self.batch_size = batch_size
        self.calls = 0

    @torch.no_grad()
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
    ) -> list[list[str]]:
        model, processor = self.model, self.tokenizer
        tokenizer = text_tokenizer(processor)
        if images is not None and not is_processor(processor):
            raise ValueError("sampling with images needs the VLM's processor as the tokenizer")
        if images is not None and len(images) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(images)} image lists")
        device = model_device(model)
        seed = self.seed + self.calls
        self.calls += 1
        sampling = temperature > 0
        options = dict(
            do_sample=sampling,
            num_return_sequences=n,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        if sampling:
            options |= {"temperature": temperature, "top_p": top_p, "top_k": 0}
        if stop:
            options |= {"stop_strings": list(stop), "tokenizer": tokenizer}
        if is_vision_config(model.config):
            options |= {"suppress_tokens": vision_token_ids(model.config)}
        was_training = model.training
        model.eval()
        answers: list[list[str]] = []
        devices = [device] if device.type == "cuda" else []
        # a bar when the prompts take several batches (evaluation, annotation, pool scoring)
        progress = bar(desc=f"generating ({adapter or 'base'})", total=len(prompts), unit="prompt") \
            if len(prompts) > self.batch_size else None
        try:
            with use_adapter(model, adapter) if adapter else nullcontext(), torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                for start in range(0, len(prompts), self.batch_size):
                    batch = list(prompts[start : start + self.batch_size])
                    if images is None:  # the prompt ids TRL's GRPO samples from (a BOS where the tokenizer adds one)
                        encoded = tokenizer.pad({"input_ids": encode_prompts(tokenizer, batch)}, padding=True,
                                                padding_side="left", return_tensors="pt").to(device)
                    else:  # the processor expands each image placeholder and adds the pixels
                        batch_images = [list(row) for row in images[start : start + self.batch_size]]
                        encoded = processor(text=batch, images=batch_images if any(batch_images) else None,
                                            add_special_tokens=False, padding=True, padding_side="left",
                                            return_tensors="pt").to(device)
                    output = model.generate(**encoded, **options)
                    texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
                    texts = [cut_at_stop(text, stop).strip() for text in texts]
                    answers.extend(texts[i * n : (i + 1) * n] for i in range(len(batch)))
                    if progress is not None:
                        progress.update(len(batch))
        finally:
            model.train(was_training)
            if progress is not None:
                progress.close()
        return answers
