"""Samplers: the hf backend for real; the vLLM backend through its one seam (vLLM and a GPU cannot run here)."""

from __future__ import annotations

import sys
import types

import pytest

from swirl.errors import SwirlError
from swirl.models.adapters import adapter_is_trainable, save_adapter
from swirl.models.prompts import fwm_prompt
from swirl.sampling import HFSampler, make_sampler
from swirl.sampling.hf import cut_at_stop
from swirl.sampling.vllm import LoRARegistry, VLLMSampler, import_vllm, sampling_kwargs


def prompts_for(tokenizer):
    return [fwm_prompt(tokenizer, "grid 3x3", action) for action in ("toggle", "drop", "turn left")]


def test_hf_sampler_shapes_and_seeding(world_model, tokenizer):
    prompts = prompts_for(tokenizer)
    first = HFSampler(world_model, tokenizer, seed=1).generate(prompts, adapter="idm", n=2, temperature=1.0,
                                                               max_new_tokens=12)
    again = HFSampler(world_model, tokenizer, seed=1).generate(prompts, adapter="idm", n=2, temperature=1.0,
                                                               max_new_tokens=12)
    other = HFSampler(world_model, tokenizer, seed=2).generate(prompts, adapter="idm", n=2, temperature=1.0,
                                                               max_new_tokens=12)
    assert len(first) == 3 and all(len(answers) == 2 for answers in first)
    assert first == again and first != other
    assert all("<|im_end|>" not in text and "<|endoftext|>" not in text for answers in first for text in answers)


def test_hf_sampler_greedy_is_deterministic_and_adapters_differ(world_model, tokenizer):
    sampler = HFSampler(world_model, tokenizer)
    prompts = prompts_for(tokenizer)
    fwm = sampler.generate(prompts, adapter="fwm", temperature=0, max_new_tokens=16)
    assert fwm == sampler.generate(prompts, adapter="fwm", temperature=0, max_new_tokens=16)
    assert fwm != sampler.generate(prompts, adapter="idm", temperature=0, max_new_tokens=16)


def test_hf_sampler_restores_the_model(world_model, tokenizer):
    world_model.train()
    HFSampler(world_model, tokenizer).generate(prompts_for(tokenizer), adapter="idm", max_new_tokens=4)
    assert world_model.training and world_model.active_adapter == "fwm" and adapter_is_trainable(world_model, "fwm")


def test_stop_strings_end_answers_and_are_kept():
    assert cut_at_stop("W W\nend\nW W", ["\nend"]) == "W W\nend"
    assert cut_at_stop("abc", ["\nend"]) == "abc"
    assert cut_at_stop("a;b.c", [".", ";"]) == "a;"


def test_hf_sampler_stops_at_a_stop_string(world_model, tokenizer):
    answers = HFSampler(world_model, tokenizer, seed=0).generate(prompts_for(tokenizer) * 4, adapter="idm",
                                                                 n=2, temperature=1.5, max_new_tokens=30, stop=["e"])
    texts = [text for group in answers for text in group]
    stopped = [text for text in texts if "e" in text]
    assert stopped and all(text.endswith("e") and text.count("e") == 1 for text in stopped)


def test_auto_picks_hf_without_vllm(world_model, tokenizer):
    assert isinstance(make_sampler("auto", world_model, tokenizer, base_model="tiny-qwen2"), HFSampler)
    with pytest.raises(ValueError, match="unknown sampler 'tgi'"):
        make_sampler("tgi", world_model, tokenizer)


def test_vllm_missing_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on a machine without vllm
    with pytest.raises(SwirlError, match=r"the vllm sampler needs vLLM \(pip install 'swirl-wm\[vllm\]', GPU only\); use sampler: hf"):
        import_vllm()


def test_lora_registry_gives_every_save_a_new_id(world_model, tmp_path):
    save_adapter(world_model, "fwm", tmp_path / "fwm-step1")
    save_adapter(world_model, "fwm", tmp_path / "fwm-step2")
    registry = LoRARegistry()
    name1, id1, path1 = registry.update("fwm", tmp_path / "fwm-step1")
    name2, id2, path2 = registry.update("fwm", tmp_path / "fwm-step2")
    assert (name1, id1) == ("fwm-v1", 1) and (name2, id2) == ("fwm-v2", 2)
    assert registry.request("fwm") == (name2, id2, str(tmp_path / "fwm-step2"))
    with pytest.raises(SwirlError, match="adapter 'idm' was never saved"):
        registry.request("idm")
    with pytest.raises(SwirlError, match="no saved LoRA adapter at"):
        registry.update("idm", tmp_path / "nothing")


def test_sampling_kwargs_match_the_hf_behaviour():
    kwargs = sampling_kwargs(4, 0.7, 0.96, 256, ["\nend"], seed=3)
    assert kwargs == {"n": 4, "temperature": 0.7, "top_p": 0.96, "max_tokens": 256, "stop": ["\nend"],
                      "include_stop_str_in_output": True, "skip_special_tokens": True, "seed": 3}
    assert sampling_kwargs(1, 0.0, 0.5, 8, None, None)["top_p"] == 1.0


class FakeVLLM(types.ModuleType):
    """The thinnest stand-in for vllm: records what swirl asks of it."""

    def __init__(self, tokenizer):
        super().__init__("vllm")
        self.calls = []
        fake = self

        class LLM:
            def __init__(self, **kwargs):
                fake.llm_kwargs = kwargs

            def get_tokenizer(self):
                return tokenizer

            def generate(self, prompts, params, lora_request=None, use_tqdm=True):
                fake.calls.append((list(prompts), params, lora_request))
                choice = types.SimpleNamespace(text=" toggle ")
                return [types.SimpleNamespace(outputs=[choice] * params["n"]) for _ in prompts]

        self.LLM = LLM
        self.SamplingParams = lambda **kwargs: kwargs
        lora = types.ModuleType("vllm.lora")
        request = types.ModuleType("vllm.lora.request")
        request.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
        lora.request = request
        self.lora = lora
        self.submodules = {"vllm.lora": lora, "vllm.lora.request": request}


def test_vllm_backend_loads_base_once_and_passes_adapters_as_lora_requests(world_model, tokenizer, tmp_path,
                                                                           monkeypatch):
    fake = FakeVLLM(tokenizer)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    for name, module in fake.submodules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    save_adapter(world_model, "fwm", tmp_path / "fwm")
    save_adapter(world_model, "idm", tmp_path / "idm")
    sampler = VLLMSampler("base-model", {"fwm": tmp_path / "fwm", "idm": tmp_path / "idm"}, seed=5, max_lora_rank=8)
    assert fake.llm_kwargs["model"] == "base-model" and fake.llm_kwargs["enable_lora"] is True
    assert fake.llm_kwargs["max_lora_rank"] == 8 and fake.llm_kwargs["max_loras"] == 2
    answers = sampler.generate(["p1", "p2"], adapter="idm", n=3, temperature=0.7, top_p=0.9, max_new_tokens=5)
    assert answers == [["toggle"] * 3, ["toggle"] * 3]
    requests, params, request = fake.calls[-1]
    assert request == ("idm-v2", 2, str(tmp_path / "idm")) and params["n"] == 3 and params["seed"] == 5
    assert requests == [{"prompt_token_ids": tokenizer(p, add_special_tokens=False)["input_ids"]} for p in ("p1", "p2")]
    save_adapter(world_model, "idm", tmp_path / "idm-step1")
    sampler.update_adapter("idm", tmp_path / "idm-step1")
    sampler.generate(["p"], adapter="idm")
    assert fake.calls[-1][2] == ("idm-v3", 3, str(tmp_path / "idm-step1"))  # adapter-only sync: new id, new folder
