"""Tokenisation parity: the scorer and the samplers see exactly the token ids TRL's trainers train on.

TRL encodes a string prompt with the tokenizer's special tokens (a Llama-style tokenizer adds a BOS); swirl's
``encode_prompts`` does the same, so training (SFT, GRPO), sampling (hf, vLLM) and scoring agree. Checked with
TRL's own code paths (SFTTrainer's dataset preparation and collator, GRPOTrainer's prompt tokenisation) on a
BOS-adding tokenizer built in code, one whose chat template also writes the BOS, and tiny-qwen2 (no BOS).
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from swirl.models.prompts import completion, encode_prompts, fwm_prompt, prompt_completion_dataset
from swirl.models.scoring import log_likelihood
from swirl.models.tiny import CHATML_TEMPLATE
from swirl.sampling.hf import HFSampler

STATES = ["grid 3x3\nW W W\nW > W\nW W W", "grid 3x3\nW W W\nW v W\nW W W"]
ACTIONS = ["turn right", "turn left"]
NEXT_STATES = [STATES[1], STATES[0]]
# Llama/Mistral/Gemma templates begin with the BOS themselves.
BOS_IN_TEMPLATE = "{{ bos_token }}" + CHATML_TEMPLATE


def bos_tokenizer(chat_template: str = CHATML_TEMPLATE):
    """A byte-level BPE tokenizer whose post-processor adds a BOS ``<s>`` (as Llama's does), ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = STATES + ACTIONS + ["You are a world model.", "State:\nAction: \nNext state?", "system\nuser\nassistant\n"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(texts * 5, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<s>", "<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    bos = backend.token_to_id("<s>")
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="<|im_end|>",
                                   pad_token="<pad>", chat_template=chat_template)


def make_tokenizer(kind: str):
    if kind == "tiny-qwen2":
        from swirl.models.loading import load_tokenizer

        return load_tokenizer("tiny-qwen2")
    return bos_tokenizer(BOS_IN_TEMPLATE if kind == "bos-in-template" else CHATML_TEMPLATE)


def tiny_lm(tokenizer):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    return Qwen2ForCausalLM(config).eval()


def examples(tokenizer) -> tuple[list[str], list[str]]:
    prompts = [fwm_prompt(tokenizer, state, action) for state, action in zip(STATES, ACTIONS)]
    return prompts, [completion(tokenizer, answer) for answer in NEXT_STATES]


def unpadded(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
    return [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]


def trl_sft_batch(tokenizer, model, tmp_path) -> dict[str, torch.Tensor]:
    """What TRL's SFTTrainer trains on for swirl's 2-row fwm dataset: its dataset preparation, then its collator."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = Dataset.from_dict({"state": STATES, "action": ACTIONS, "next_state": NEXT_STATES})
    data = prompt_completion_dataset(rows, "fwm", tokenizer).select_columns(["prompt", "completion"])
    args = SFTConfig(output_dir=str(tmp_path / "sft"), use_cpu=True, bf16=False, report_to="none",
                     per_device_train_batch_size=2)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    return trainer.data_collator([trainer.train_dataset[i] for i in range(2)])


def trl_grpo_prompt_ids(tokenizer, model, prompts, tmp_path) -> list[list[int]]:
    """The prompt ids TRL's GRPOTrainer samples completions from (its own ``_tokenize_prompts``)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False, report_to="none",
                      per_device_train_batch_size=2, num_generations=2, max_completion_length=4, beta=0.0)
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **_: [0.0] * len(completions), args=args,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer)
    prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
    return [list(ids) for ids in prompt_ids]


def scored_sequences(model, tokenizer, prompts, completions):
    """The (unpadded) ids the scorer feeds the model, its log-likelihoods, and how many tail tokens it scores."""
    seen: list[list[int]] = []

    def record(_module, _args, kwargs):
        seen.extend(unpadded(kwargs["input_ids"].cpu(), kwargs["attention_mask"].cpu()))

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        result = log_likelihood(model, tokenizer, prompts, completions)
    finally:
        handle.remove()
    return seen, result  # in the scorer's length-sorted order


@pytest.mark.parametrize("kind", ["bos", "bos-in-template", "tiny-qwen2"])
def test_scorer_and_sampler_see_the_ids_trl_trains_on(tmp_path, kind):
    tokenizer = make_tokenizer(kind)
    model = tiny_lm(tokenizer)
    prompts, completions = examples(tokenizer)

    batch = trl_sft_batch(tokenizer, tiny_lm(tokenizer), tmp_path)
    sft_ids = unpadded(batch["input_ids"], batch["attention_mask"])
    sft_completion_ids = [labels[labels != -100].tolist() for labels in batch["labels"]]
    grpo_prompt_ids = trl_grpo_prompt_ids(tokenizer, tiny_lm(tokenizer), prompts, tmp_path)

    # swirl's one encoder is TRL's GRPO prompt encoding, and TRL's SFT sequence is that prompt + the completion
    assert encode_prompts(tokenizer, prompts) == grpo_prompt_ids
    for ids, prompt, completion_ids in zip(sft_ids, grpo_prompt_ids, sft_completion_ids):
        assert ids == prompt + completion_ids

    # the scorer: the same sequences, scoring exactly TRL's completion tokens
    sequences, result = scored_sequences(model, tokenizer, prompts, completions)
    assert sorted(sequences) == sorted(sft_ids)
    assert result.num_tokens.tolist() == [len(ids) for ids in sft_completion_ids]
    # ... with the log-likelihood TRL's SFT loss sees on those labels (the model run on TRL's own batch)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    labels = batch["labels"][:, 1:]
    token_logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    trl_sums = torch.where(labels != -100, token_logp, 0.0).sum(-1)
    torch.testing.assert_close(result.sum, trl_sums, atol=1e-4, rtol=1e-5)

    # the hf sampler generates from the same prompt ids
    sampled: list[list[int]] = []
    generate = model.generate

    def spy(**kwargs):
        sampled.extend(unpadded(kwargs["input_ids"].cpu(), kwargs["attention_mask"].cpu()))
        return generate(**kwargs)

    model.generate = spy
    HFSampler(model, tokenizer).generate(prompts, n=2, max_new_tokens=2)
    assert sampled == grpo_prompt_ids

    bos = tokenizer.bos_token_id
    if kind == "bos":  # one BOS, in front
        assert all(ids[0] == bos and ids.count(bos) == 1 for ids in sft_ids)
    if kind == "tiny-qwen2":  # no special tokens added: unchanged from encoding without them
        assert grpo_prompt_ids == tokenizer(prompts, add_special_tokens=False)["input_ids"]


def test_vllm_sampler_sends_the_trl_prompt_ids(monkeypatch):
    """The vLLM backend passes token ids encoded by ``encode_prompts`` (vLLM itself would add its own BOS)."""
    from swirl.sampling.vllm import VLLMSampler

    tokenizer = bos_tokenizer()
    prompts, _ = examples(tokenizer)
    requests: list = []

    class FakeLLM:
        def get_tokenizer(self):
            return tokenizer

        def generate(self, batch, params, lora_request=None, use_tqdm=False):
            requests.extend(batch)
            return []

    class FakeVLLM:
        @staticmethod
        def SamplingParams(**kwargs):
            return kwargs

    sampler = VLLMSampler.__new__(VLLMSampler)
    sampler.vllm, sampler.llm, sampler.seed, sampler.calls = FakeVLLM(), FakeLLM(), 0, 0
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = object
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    sampler.generate(prompts, adapter=None, max_new_tokens=2)
    expected = tokenizer(prompts)["input_ids"]
    assert [request["prompt_token_ids"] for request in requests] == expected
    assert all(ids[0] == tokenizer.bos_token_id for ids in expected)
