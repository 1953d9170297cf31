"""``lora_layers: K``: LoRA on the top K decoder layers only, so the backward pass stops at the lowest adapted layer."""

from __future__ import annotations

import json

import pytest
import torch

from swirl.config_fields import LoRAModelFields
from swirl.errors import SwirlError
from swirl.models.adapters import lora_config, save_adapter, top_layers, with_adapters
from swirl.models.loading import load_base_model
from swirl.models.vision import lora_target_modules


def adapted_layers(model, adapter: str = "default") -> set[str]:
    """The module paths (layer index included) holding ``adapter``'s LoRA A matrices."""
    return {name.split(".lora_A.")[0] for name, _ in model.named_parameters() if f".lora_A.{adapter}." in name}


def test_only_the_top_layers_hold_lora(base):
    layers = top_layers(base, 1)  # tiny-qwen2 has 2 decoder layers
    assert layers.indices == (1,) and layers.pattern == "layers"
    assert set(layers.linear) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    model = with_adapters(base, {"default": lora_config(r=4, layers=layers)})
    adapted = adapted_layers(model)
    assert len(adapted) == 7 and all(".layers.1." in name for name in adapted)
    assert not any(".layers.0." in name and "lora_" in name for name, _ in model.named_parameters())


def test_all_layers_is_plain_all_linear():
    every = adapted_layers(with_adapters(load_base_model("tiny-qwen2"), {"default": lora_config(r=4)}))
    top_2 = adapted_layers(with_adapters(load_base_model("tiny-qwen2"), {"default": lora_config(r=4, layers=top_layers(
        load_base_model("tiny-qwen2"), 2))}))
    assert every == top_2 and len(every) == 14


def test_the_layers_carry_over_to_a_loaded_adapter_and_to_grpo_s_ref_copy(base, tmp_path):
    """GRPO phases load adapters from their folders; TRL's ``ref`` adapter reuses ``default``'s config."""
    model = with_adapters(base, {"default": lora_config(r=4, layers=top_layers(base, 1))})
    save_adapter(model, "default", tmp_path / "fwm")
    config = json.loads((tmp_path / "fwm" / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1] and config["layers_pattern"] == "layers"
    loaded = with_adapters(load_base_model("tiny-qwen2"), {"default": tmp_path / "fwm", "idm": tmp_path / "fwm"})
    loaded.add_adapter("ref", loaded.peft_config["default"])  # what GRPOTrainer does with beta > 0
    for adapter in ("default", "idm", "ref"):
        assert adapted_layers(loaded, adapter) == adapted_layers(model)


def test_a_vlm_adapts_its_language_model_s_top_layers_only():
    vlm = load_base_model("tiny-qwen2-vl", device="cpu")
    layers = top_layers(vlm, 1)
    assert layers.indices == (1,) and layers.pattern == "layers"
    model = with_adapters(vlm, {"default": lora_config(r=4, target_modules=lora_target_modules(vlm), layers=layers)})
    adapted = adapted_layers(model)
    assert len(adapted) == 7 and all(".language_model.layers.1." in name for name in adapted)


@pytest.mark.parametrize("k", [0, 3])
def test_top_layers_rejects_k_outside_the_model(base, k):
    with pytest.raises(SwirlError, match=r"^lora_layers must be between 1 and 2, the model's number of decoder "):
        top_layers(base, k)


def test_configs_reject_bad_lora_layers(tmp_path):
    from swirl.sft import SwirlSFTConfig

    with pytest.raises(ValueError, match="^lora_layers must be at least 1"):
        SwirlSFTConfig(output_dir=str(tmp_path), dataset="data", lora_layers=0)
    with pytest.raises(ValueError, match="^lora_layers .* does not combine with lora_vision"):
        SwirlSFTConfig(output_dir=str(tmp_path), dataset="data", lora_layers=2, lora_vision=True)
    with pytest.raises(ValueError, match=r"^lora_layers must be at least 1 .*\(got 0\)"):
        LoRAModelFields(lora_layers=0).check_lora_layers()
    with pytest.raises(ValueError, match="^lora_layers .* does not combine with lora_vision"):
        LoRAModelFields(lora_layers=1, lora_vision=True).check_lora_layers()
    LoRAModelFields(lora_layers=4).check_lora_layers()


def test_an_sft_step_trains_the_top_layer_and_the_backward_pass_stops_there(small_dataset, tokenizer, tmp_path,
                                                                            monkeypatch):
    """One real TRL SFT step through ``sft_adapter``: the adapted weights move, and nothing below the adapted layer
    takes part in the backward pass (its output needs no gradient, its backward hook never fires)."""
    from safetensors.torch import load_file

    import swirl.sft as sft
    from swirl.data import load_dataset_dict

    seen: dict = {}
    run_sft = sft.run_sft

    def spy(model, *args, **kwargs):
        decoder = model.get_base_model().model
        fired = {"layer0": 0, "layer1": 0}
        needs_grad = {"embed": set(), "layer0": set(), "layer1": set()}

        def forward_hook(name):
            def hook(_module, _inputs, output):
                if torch.is_grad_enabled():  # training forwards only (evaluation runs under no_grad)
                    needs_grad[name].add((output[0] if isinstance(output, tuple) else output).requires_grad)
            return hook

        def backward_hook(name):
            def hook(_module, _grad_input, _grad_output):
                fired[name] += 1
            return hook

        handles = [decoder.embed_tokens.register_forward_hook(forward_hook("embed"))]
        for index in (0, 1):
            handles.append(decoder.layers[index].register_forward_hook(forward_hook(f"layer{index}")))
            handles.append(decoder.layers[index].register_full_backward_hook(backward_hook(f"layer{index}")))
        seen["before"] = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}
        try:
            metrics = run_sft(model, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        seen["after"] = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}
        seen.update(fired=fired, needs_grad=needs_grad)
        return metrics

    monkeypatch.setattr(sft, "run_sft", spy)
    data = load_dataset_dict(small_dataset)
    sft.sft_adapter("tiny-qwen2", tokenizer, "fwm", data["labelled"].select(range(4)), data["test"].select(range(2)),
                    tmp_path / "fwm", lora=(4, 8, 0.0), steps=1, learning_rate=1e-2, batch_size=4, lora_layers=1)

    assert seen["needs_grad"] == {"embed": {False}, "layer0": {False}, "layer1": {True}}
    assert seen["fired"]["layer0"] == 0 and seen["fired"]["layer1"] > 0
    before, after = seen["before"], seen["after"]
    assert before and all(".layers.1." in name for name in before)
    lora_b = [name for name in before if "lora_B" in name]  # B starts at zero: the first step moves every one
    assert len(lora_b) == 7 and all(not torch.equal(before[name], after[name]) for name in lora_b)
    saved = load_file(tmp_path / "fwm" / "adapter_model.safetensors")
    assert saved and all(".layers.1." in key for key in saved)
    assert json.loads((tmp_path / "fwm" / "adapter_config.json").read_text())["layers_to_transform"] == [1]
