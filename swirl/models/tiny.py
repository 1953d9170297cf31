"""A tiny, randomly initialised Qwen2 (and Qwen2-VL) with a real (locally trained) tokenizer, for tests and CPU presets.

Nothing is downloaded: the byte-level BPE tokenizer is trained in a second on texts swirl itself produces
(MiniGrid states, action texts, the prompts), and it carries a ChatML chat template like SmolLM2's and
Qwen's, so every code path (chat templates, padding, EOS handling) is exercised as with a real model.
The folder it writes loads with plain ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer``; the
VLM's with ``AutoModelForImageTextToText`` / ``AutoProcessor``.
"""

from __future__ import annotations

import os
from pathlib import Path

from swirl.paths import atomic_dir

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def _training_texts() -> list[str]:
    """States of a few envs, every action text and the prompts: what the tiny model will read and write.
    Lines of fixed-precision numbers stand in for ManiSkill's states and actions (no ManiSkill needed)."""
    # lazy: torch/transformers are heavy, and the envs load gymnasium and minigrid
    import numpy as np

    from swirl.envs.minigrid import ACTION_TEXTS, WAV_ACTION_TEXTS, make_env, state_diff, state_to_text
    from swirl.models.prompts import DIFF_PROMPT_TEMPLATES, PROMPT_TEMPLATES, SYSTEM_PROMPT

    texts = list(ACTION_TEXTS) + list(WAV_ACTION_TEXTS) + list(PROMPT_TEMPLATES.values())
    texts += list(DIFF_PROMPT_TEMPLATES.values())
    texts += [SYSTEM_PROMPT, "system\nuser\nassistant\n"] * 20
    rng = np.random.default_rng(0)
    for env_id in ("swirl/WAV-KeyDelivery-Noisy-v0", "swirl/WAV-RandomPlay-14obj-v0", "MiniGrid-DoorKey-8x8-v0",
                   "MiniGrid-LockedRoom-v0", "MiniGrid-LavaGapS7-v0"):
        # the random-play room with the swap rule its corpus was first built with: the same tokenizer
        env = make_env(env_id, **({"box_toggle": "swap"} if "RandomPlay" in env_id else {}))
        for seed in range(3):
            env.reset(seed=seed)
            for _ in range(20):  # both state texts and their diffs
                before = [state_to_text(env, text) for text in ("grid", "objects")]
                env.step(int(rng.integers(7)))
                after = [state_to_text(env, text) for text in ("grid", "objects")]
                texts += before + [state_diff(s, n) for s, n in zip(before, after)]
    names = ("qpos", "qvel", "is_grasped", "tcp_pose", "obj_pose", "goal_pos", "tcp_to_obj_pos", "obj_to_goal_pos")
    for _ in range(100):
        texts.append("\n".join(f"{name} " + " ".join(f"{x:.3f}" for x in rng.uniform(-2, 2, 7)) for name in names))
        texts.append(" ".join(f"{x:.2f}" for x in rng.uniform(-1, 1, 4)))
    return texts


def build_tiny_tokenizer(vocab_size: int = 512, vision: bool = False):
    """The BPE tokenizer; with ``vision``, also Qwen2-VL's vision tokens and its chat template (the one TRL
    recognises, so its VLM code paths run as with the real model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + (VISION_TOKENS if vision else []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_texts(), trainer=trainer)
    if vision:
        from trl.chat_template_utils import qwen2_5_vl_chat_template as chat_template  # = Qwen2-VL's own
    else:
        chat_template = CHATML_TEMPLATE
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
        model_max_length=4096,
    )


def build_tiny_model(out_dir: str | os.PathLike, hidden_size: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Qwen2 (about 0.1M parameters besides embeddings) and its tokenizer to ``out_dir``.

    Written atomically, so concurrent builders never see a half-written model.
    """
    # lazy: torch/transformers are heavy, and the envs load gymnasium and minigrid
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with atomic_dir(out_dir) as staging:  # concurrent builders (pytest-xdist workers): first one wins
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return out_dir


TINY_VLM_MAX_PIXELS = 96 * 96  # a 128x128 MiniGrid render becomes 84x84 pixels: 9 image tokens


def build_tiny_vlm(out_dir: str | os.PathLike, hidden_size: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Qwen2-VL (about 0.18M parameters: a 2-layer language model, a 1-block vision tower) and its
    processor (image processor, tokenizer with the vision tokens, chat template) to ``out_dir``, atomically.

    Images are resized to at most ``TINY_VLM_MAX_PIXELS`` pixels, so each costs a handful of tokens on a CPU.
    """
    # lazy: torch/transformers are heavy, and the envs load gymnasium and minigrid
    import torch
    from transformers import (GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    tokenizer = build_tiny_tokenizer(vision=True)
    pixels = {"min_pixels": 28 * 28, "max_pixels": TINY_VLM_MAX_PIXELS}
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(**pixels),  # required, even unused
                                 chat_template=tokenizer.chat_template)
    heads = 4
    half = hidden_size // heads // 2  # M-RoPE splits half the head dim into time, height and width sections
    mrope_section = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    token_id = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section},
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None),
        vision_config=dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2, patch_size=14, temporal_patch_size=2,
                           spatial_merge_size=2, hidden_size=hidden_size),  # the merger's output: the text width
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with atomic_dir(out_dir) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
    return out_dir
