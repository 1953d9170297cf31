"""The VLM path: the tiny Qwen2-VL, image prompts, scoring and sampling with images, LoRA on the language model
only, SFT and both SWIRL rewards on image states, and the whole loop on MiniGrid renders."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import launch_recipe, random_lora
from swirl.data import load_dataset_dict
from swirl.envs.minigrid import render_state, text_to_state
from swirl.errors import DatasetError, SwirlError
from swirl.models.adapters import lora_config, with_adapters
from swirl.models.prompts import (completion, fwm_prompt, idm_prompt, images_for_row, prompt_for_row,
                                  prompt_messages, user_content)
from swirl.models.scoring import log_likelihood
from swirl.models.vision import LANGUAGE_MODEL_LINEAR, lora_target_modules, text_tokenizer
from swirl.models.state_view import StateView, state_view
from swirl.sampling.hf import HFSampler
from swirl.training.swirl_config import SwirlConfig
from swirl.training.rewards import FWMStateReward, IDMActionReward

REPO = Path(__file__).resolve().parent.parent
IMAGE = StateView("image")
BOTH = StateView("image+text")


@pytest.fixture(scope="session")
def processor():
    from swirl.models.loading import load_tokenizer

    return load_tokenizer("tiny-qwen2-vl")


@pytest.fixture
def vlm():
    from swirl.models.loading import load_base_model

    return load_base_model("tiny-qwen2-vl", device="cpu")


@pytest.fixture
def vlm_world_model(vlm):
    """The tiny VLM with two LoRA adapters on its language model whose B matrices start random."""
    lora = random_lora(target_modules=lora_target_modules(vlm), dropout=0.0)
    torch.manual_seed(0)
    return with_adapters(vlm, {"fwm": lora, "idm": lora})


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory):
    """MiniGrid transitions with renders of both states (16-pixel tiles: 128x128 for the 8x8 task)."""
    from swirl.builders.minigrid_dataset import build_minigrid_dataset
    from swirl.data import save_dataset_dict

    dataset = build_minigrid_dataset(["swirl/WAV-KeyDelivery-v0"], episodes=4, max_steps=8, policy="expert",
                                     epsilon=0.3, test_episodes=2, images=True, seed=5, progress=False)
    return save_dataset_dict(dataset, tmp_path_factory.mktemp("data") / "keydelivery-images")


def noise(height: int, width: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def visual_parameters(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if ".visual." in name}


# ------------------------------------------------------------------------------------------ the model
def test_tiny_vlm_loads_as_a_vlm_with_a_left_padding_processor(processor, vlm):
    assert type(vlm).__name__ == "Qwen2VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2VLProcessor" and text_tokenizer(processor).padding_side == "left"
    assert text_tokenizer(processor).eos_token == "<|im_end|>"
    # a 128x128 render is resized to 84x84: 3x3 merged patches, so 9 image tokens replace its one placeholder
    prompt = fwm_prompt(processor, "s", "toggle", IMAGE)
    encoded = processor(text=[prompt], images=[noise(128, 128, 0)], return_tensors="pt")
    plain = text_tokenizer(processor)(prompt, add_special_tokens=False)["input_ids"]
    assert encoded["input_ids"].shape[1] == len(plain) + 8
    assert int((encoded["input_ids"] == vlm.config.image_token_id).sum()) == 9
    assert encoded["image_grid_thw"].tolist() == [[1, 6, 6]]


def test_text_models_keep_their_tokenizer_and_all_linear_lora(tokenizer, base):
    assert type(tokenizer).__name__ != "Qwen2VLProcessor" and text_tokenizer(tokenizer) is tokenizer
    assert lora_target_modules(base) == "all-linear"


def test_lora_adapts_the_language_model_only_unless_asked(vlm):
    model = with_adapters(vlm, {"fwm": lora_config(r=4, target_modules=lora_target_modules(vlm))})
    adapted = [name for name, _ in model.named_parameters() if "lora_A" in name]
    assert len(adapted) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(".language_model.layers." in name for name in adapted)
    assert not any(p.requires_grad for name, p in model.named_parameters() if ".visual." in name)
    assert lora_target_modules(vlm) == LANGUAGE_MODEL_LINEAR and lora_target_modules(vlm, vision_tower=True) == "all-linear"


def test_lora_vision_also_adapts_the_vision_tower():
    from swirl.models.loading import load_base_model

    vlm = load_base_model("tiny-qwen2-vl", device="cpu")
    model = with_adapters(vlm, {"fwm": lora_config(r=4, target_modules=lora_target_modules(vlm, vision_tower=True))})
    assert any(".visual." in name and "lora_A" in name for name, _ in model.named_parameters())


# ------------------------------------------------------------------------------------------ prompts
def test_image_prompts_put_one_image_part_per_state_in_template_order(processor):
    parts = user_content("idm", IMAGE, state="S", next_state="N")
    assert parts == [{"type": "text", "text": "State:\n"}, {"type": "image"}, {"type": "text", "text": "\nNext state:\n"},
                     {"type": "image"}, {"type": "text", "text": "\nAction?"}]
    both = user_content("fwm", BOTH, state="S", action="toggle")
    assert both == [{"type": "text", "text": "State:\n"}, {"type": "image"},
                    {"type": "text", "text": "\nS\nAction: toggle\nNext state?"}]
    # a ManiSkill next state cannot be drawn from its text: it stays text
    maniskill = user_content("idm", state_view("image", "maniskill"), state="S", next_state="N")
    assert [part["type"] for part in maniskill] == ["text", "image", "text"] and "Next state:\nN" in maniskill[2]["text"]
    # TRL renders the conversation with the processor: the very prompt swirl scores and samples with
    rendered = processor.apply_chat_template(prompt_messages("idm", IMAGE, state="S", next_state="N"),
                                             tokenize=False, add_generation_prompt=True)
    assert rendered == idm_prompt(processor, "S", "N", IMAGE) and rendered.count("<|image_pad|>") == 2
    assert "S" not in rendered.split("user")[1].replace("State", "").replace("Which", "")  # image only: no state text
    assert idm_prompt(processor, "S", "N") == idm_prompt(text_tokenizer(processor), "S", "N")  # text view: unchanged


def test_rows_give_their_images_in_placeholder_order(image_dataset):
    row = load_dataset_dict(image_dataset)["labelled"][0]
    assert images_for_row("fwm", row, IMAGE) == [row["image"]]
    assert images_for_row("idm", row, IMAGE) == [row["image"], row["next_image"]]
    assert images_for_row("idm", row, state_view("image", "maniskill")) == [row["image"]]
    assert images_for_row("idm", row) == []
    assert row["image"].size == (128, 128)


def test_sft_trains_on_exactly_the_tokens_swirl_scores(processor, vlm, image_dataset, tmp_path):
    from trl import SFTTrainer

    from swirl.sft import SwirlSFTConfig, sft_examples

    rows = load_dataset_dict(image_dataset)["labelled"].select(range(3))
    examples = sft_examples(rows, "idm", processor, IMAGE)
    assert examples.column_names == ["prompt", "completion", "images"]
    assert examples[0]["prompt"] == prompt_for_row(processor, "idm", rows[0], IMAGE)
    assert examples[0]["completion"] == completion(processor, rows[0]["action"]) and len(examples[0]["images"]) == 2
    config = SwirlSFTConfig(output_dir=str(tmp_path), dataset="(rows in memory)", model="tiny-qwen2-vl",
                            state_modality="image", per_device_train_batch_size=3, max_length=None)
    trainer = SFTTrainer(model=vlm, args=config, train_dataset=examples, processing_class=processor)
    batch = next(iter(trainer.get_train_dataloader()))
    trained = [text_tokenizer(processor).decode(ids[labels != -100]) for ids, labels in zip(batch["input_ids"],
                                                                                           batch["labels"])]
    assert sorted(trained) == sorted(completion(processor, action) for action in rows["action"])  # EOS, nothing after
    assert int((batch["input_ids"] == vlm.config.image_token_id).sum()) == 3 * 2 * 9  # 2 images of 9 tokens per row


def test_image_prompts_need_a_vlm_processor(tokenizer):
    with pytest.raises(ValueError, match="state_modality image needs a vision-language model's processor"):
        fwm_prompt(tokenizer, "s", "toggle", IMAGE)


# ------------------------------------------------------------------------------------------ scoring and sampling
def test_scoring_with_images_is_the_same_batched_as_one_by_one(processor, vlm):
    prompts = [fwm_prompt(processor, "s", "turn left", IMAGE), idm_prompt(processor, "a", "b", IMAGE),
               fwm_prompt(processor, "a longer state text", "x", BOTH), idm_prompt(processor, "s", "n", BOTH)]
    images = [[noise(128, 128, 1)], [noise(96, 160, 2), noise(64, 64, 3)], [noise(128, 128, 4)],
              [noise(128, 128, 1), noise(128, 128, 4)]]
    completions = [completion(processor, text) for text in ("turn left", "a", "some longer answer text", "b")]
    batched = log_likelihood(vlm, processor, prompts, completions, images=images)
    one_by_one = torch.cat([log_likelihood(vlm, processor, [p], [c], images=[i]).sum
                            for p, c, i in zip(prompts, completions, images)])
    torch.testing.assert_close(batched.sum, one_by_one, atol=1e-4, rtol=0)
    other_image = log_likelihood(vlm, processor, prompts[:1], completions[:1], images=[[noise(128, 128, 9)]])
    assert other_image.sum.item() != pytest.approx(batched.sum[0].item(), abs=1e-6)  # the image is seen
    assert batched.num_tokens.tolist() == [len(text_tokenizer(processor)(c)["input_ids"]) for c in completions]


def test_scoring_with_images_rejects_bad_calls(processor, tokenizer, vlm):
    prompt = fwm_prompt(processor, "s", "x", IMAGE)
    with pytest.raises(ValueError, match="scoring with images needs the VLM's processor as the tokenizer"):
        log_likelihood(vlm, tokenizer, [prompt], ["a"], images=[[noise(64, 64, 0)]])
    with pytest.raises(ValueError, match="the prompt has 1 image placeholders but 2 images were given"):
        log_likelihood(vlm, processor, [prompt], ["a"], images=[[noise(64, 64, 0), noise(64, 64, 1)]])
    with pytest.raises(ValueError, match="1 prompts but 2 image lists"):
        log_likelihood(vlm, processor, [prompt], ["a"], images=[[], []])


def test_hf_sampler_with_images_is_seeded_and_batch_independent(processor, vlm_world_model):
    prompts = [fwm_prompt(processor, "s", "toggle", IMAGE), idm_prompt(processor, "a", "b", IMAGE)]
    images = [[noise(128, 128, 1)], [noise(128, 128, 2), noise(128, 128, 3)]]
    greedy = HFSampler(vlm_world_model, processor).generate(prompts, adapter="idm", temperature=0, max_new_tokens=6,
                                                            images=images)
    alone = [HFSampler(vlm_world_model, processor).generate([p], adapter="idm", temperature=0, max_new_tokens=6,
                                                            images=[i])[0] for p, i in zip(prompts, images)]
    assert greedy == alone
    draw = lambda: HFSampler(vlm_world_model, processor, seed=3).generate(  # noqa: E731
        prompts, adapter="fwm", n=3, temperature=1.0, max_new_tokens=6, images=images)
    first = draw()
    assert first == draw() and [len(answers) for answers in first] == [3, 3]
    assert vlm_world_model.active_adapter == "fwm"


# ------------------------------------------------------------------------------------------ SFT and rewards
def test_sft_on_image_states_trains_lora_and_leaves_the_vision_tower(processor, vlm, image_dataset, tmp_path):
    from swirl.sft import SwirlSFTConfig, run_sft, sft_examples

    data = load_dataset_dict(image_dataset)
    model = with_adapters(vlm, {"default": lora_config(r=4, alpha=8, target_modules=lora_target_modules(vlm))})
    vision_before = visual_parameters(model)
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    config = SwirlSFTConfig(output_dir=str(tmp_path), dataset="(rows in memory)", model="tiny-qwen2-vl",
                            state_modality="image", max_steps=3, per_device_train_batch_size=4, learning_rate=1e-2,
                            logging_steps=1, disable_tqdm=True, max_length=None)
    metrics = run_sft(model, processor, sft_examples(data["labelled"], "fwm", processor, IMAGE),
                      sft_examples(data["test"].select(range(4)), "fwm", processor, IMAGE), config)
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    after = dict(model.named_parameters())
    assert all(torch.equal(before, after[name]) for name, before in vision_before.items())
    assert all(not torch.equal(before, after[name]) for name, before in lora_before.items())  # A and B after 3 steps


def test_phase1_reward_shows_the_idm_the_drawn_sample_and_floors_undrawable_ones(processor, vlm_world_model,
                                                                                 image_dataset):
    rows = load_dataset_dict(image_dataset)["state_only"].select(range(3))
    sampled = [rows[0]["next_state"], rows[1]["next_state"], "not a state"]
    actions = ["toggle", "move forward", "drop"]
    # the renderer draws a parsed state exactly as the dataset's image of it
    assert np.array_equal(np.asarray(render_state(text_to_state(rows[0]["next_state"]), 16)),
                          np.asarray(rows[0]["next_image"]))
    logged = {}
    reward = IDMActionReward(vlm_world_model, processor, clip=-10.0, view=IMAGE)
    rewards = reward(prompts=["p"] * 3, completions=[[{"role": "assistant", "content": s}] for s in sampled],
                     state=rows["state"], latent_action=actions, images=[[row["image"]] for row in rows],
                     log_metric=logged.__setitem__)
    expected = log_likelihood(vlm_world_model, processor,
                              [idm_prompt(processor, rows[i]["state"], sampled[i], IMAGE) for i in (0, 1)],
                              [completion(processor, a) for a in actions[:2]], adapter="idm",
                              images=[[rows[i]["image"], rows[i]["next_image"]] for i in (0, 1)]).mean
    assert rewards[:2] == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-5)
    assert rewards[2] == -10.0 and logged == {"parse_rate": pytest.approx(2 / 3)}


def test_phase1_reward_with_diffs_draws_the_reconstructed_state(processor, vlm_world_model, image_dataset):
    from swirl.envs.minigrid_text import state_diff

    view = state_view("image+text", "minigrid", "diff")  # the IDM sees s^ drawn and the sampled diff as text
    rows = load_dataset_dict(image_dataset)["state_only"].select(range(2))
    diffs = [state_diff(rows[0]["state"], rows[0]["next_state"]), "agent 99,1 facing up"]
    rewards = IDMActionReward(vlm_world_model, processor, view=view)(
        prompts=["p", "p"], completions=diffs, state=rows["state"], latent_action=["toggle", "drop"],
        images=[[row["image"]] for row in rows])
    expected = log_likelihood(vlm_world_model, processor, [idm_prompt(processor, rows[0]["state"], diffs[0], view)],
                              [completion(processor, "toggle")], adapter="idm",
                              images=[[rows[0]["image"], rows[0]["next_image"]]]).mean
    assert rewards == pytest.approx([float(expected.clamp(min=-10)[0]), -10.0], abs=1e-5)


def test_phase1_reward_reads_an_undrawable_domain_s_next_state_as_text(processor, vlm_world_model, image_dataset):
    view = state_view("image", "maniskill")  # ManiSkill: the sampled next state stays text, nothing is floored
    rows = load_dataset_dict(image_dataset)["state_only"].select(range(2))
    sampled = [rows[0]["next_state"], "not a state"]
    rewards = IDMActionReward(vlm_world_model, processor, view=view)(
        prompts=["p", "p"], completions=sampled, state=rows["state"], latent_action=["toggle", "drop"],
        images=[[row["image"]] for row in rows])
    expected = log_likelihood(vlm_world_model, processor,
                              [idm_prompt(processor, s, n, view) for s, n in zip(rows["state"], sampled)],
                              [completion(processor, a) for a in ("toggle", "drop")], adapter="idm",
                              images=[[row["image"]] for row in rows]).mean
    assert rewards == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-5) and rewards[1] > -10


def test_phase2_reward_shows_the_fwm_the_image_of_the_state(processor, vlm_world_model, image_dataset):
    rows = load_dataset_dict(image_dataset)["state_only"].select(range(2))
    rewards = FWMStateReward(vlm_world_model, processor, view=IMAGE)(
        prompts=["p", "p"], completions=[[{"role": "assistant", "content": "toggle<|im_end|>"}],
                                         [{"role": "assistant", "content": "drop"}]],
        state=rows["state"], next_state=rows["next_state"],
        images=[[row["image"], row["next_image"]] for row in rows])
    expected = log_likelihood(vlm_world_model, processor, [fwm_prompt(processor, rows[0]["state"], "toggle", IMAGE),
                                                           fwm_prompt(processor, rows[1]["state"], "drop", IMAGE)],
                              [completion(processor, row["next_state"]) for row in rows], adapter="fwm",
                              images=[[row["image"]] for row in rows]).mean
    assert rewards == pytest.approx(expected.clamp(min=-10).tolist(), abs=1e-5)


def test_phase_datasets_carry_conversations_and_their_images(processor, vlm_world_model, image_dataset):
    from swirl.training.phases import annotate_latent_actions, phase2_dataset

    pairs = load_dataset_dict(image_dataset)["state_only"].select(range(4)).select_columns(
        ["state", "next_state", "image", "next_image"])
    config = SwirlConfig(model="tiny-qwen2-vl", state_modality="image", annotation_min_logprob=-1e9,
                         max_action_tokens=4)
    kept, stats = annotate_latent_actions(vlm_world_model, processor, HFSampler(vlm_world_model, processor), pairs,
                                          config)
    assert stats["annotated_pairs"] == 4 and kept.num_rows == stats["kept_pairs"]
    for row in kept:
        assert len(row["images"]) == 1 and row["prompt"][1]["content"][1]["type"] == "image"
    phase2 = phase2_dataset(processor, pairs, config.state_view)
    assert [len(row["images"]) for row in phase2] == [2] * 4
    assert np.array_equal(np.asarray(phase2[0]["images"][1]), np.asarray(pairs[0]["next_image"]))


# ------------------------------------------------------------------------------------------ errors
def test_config_rejects_bad_modalities():
    with pytest.raises(ValueError, match=r"state_modality must be one of text, image, image\+text \(got 'video'\)"):
        SwirlConfig(state_modality="video")
    with pytest.raises(ValueError, match="acquisition works on text states only"):
        SwirlConfig(state_modality="image", acquisition="wav")
    with pytest.raises(ValueError, match="lora_vision needs image states"):
        SwirlConfig(lora_vision=True)
    with pytest.raises(ValueError, match="lora_vision does not work with sampler vllm"):
        SwirlConfig(lora_vision=True, state_modality="image", sampler="vllm")


def test_image_rewards_without_images_say_what_is_missing(processor, vlm_world_model):
    with pytest.raises(ValueError, match="the reward needs the prompts' images \\(an `images` column"):
        FWMStateReward(vlm_world_model, processor, view=IMAGE)(prompts=["p"], completions=["toggle"], state=["s"],
                                                               next_state=["n"])


def test_image_runs_need_a_vlm_and_a_dataset_with_images(small_dataset, image_dataset, tmp_path):
    from swirl.training.loop import run_swirl

    with pytest.raises(SwirlError, match="state_modality image needs a vision-language model .* tiny-qwen2 is text-only"):
        run_swirl(SwirlConfig(model="tiny-qwen2", state_modality="image", dataset=str(image_dataset),
                              output_dir=str(tmp_path / "a")))
    with pytest.raises(DatasetError, match=r"split 'labelled' has no state images \(no image, next_image column\)"):
        run_swirl(SwirlConfig(model="tiny-qwen2-vl", state_modality="image", dataset=str(small_dataset),
                              output_dir=str(tmp_path / "b")))
    assert not (tmp_path / "a" / "warmstart").exists() and not (tmp_path / "b" / "warmstart").exists()


# ------------------------------------------------------------------------------------------ vLLM seam
def test_vllm_sampler_sends_images_as_multimodal_data(processor, monkeypatch, tmp_path):
    from swirl.sampling import make_sampler

    calls = {}

    class LLM:
        def __init__(self, **kwargs):
            calls["llm"] = kwargs

        def generate(self, requests, params, lora_request=None, use_tqdm=True):
            calls["requests"] = requests
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=" toggle")]) for _ in requests]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, lambda **kwargs: kwargs
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda *args: args
    for name, module in (("vllm", fake), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    (tmp_path / "idm").mkdir()
    (tmp_path / "idm" / "adapter_config.json").write_text("{}")
    sampler = make_sampler("vllm", None, processor, base_model="Qwen/Qwen2.5-VL-3B-Instruct",
                           adapter_dirs={"idm": str(tmp_path / "idm")})
    assert calls["llm"]["limit_mm_per_prompt"] == {"image": 2}  # an IDM prompt shows two states
    images = [[noise(64, 64, 0), noise(64, 64, 1)]]
    prompt = idm_prompt(processor, "s", "n", IMAGE)
    assert sampler.generate([prompt], adapter="idm", images=images) == [["toggle"]]
    assert calls["requests"] == [{"prompt": prompt, "multi_modal_data": {"image": images[0]}}]


# ------------------------------------------------------------------------------------------ the loop
def test_swirl_recipe_runs_one_iteration_on_minigrid_images(tmp_path):
    out = tmp_path / "run"
    result = launch_recipe("swirl_minigrid.py", "minigrid/vlm-tiny.yaml", out)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["warmstart", "iter_1/phase1", "iter_1/phase2"]
    data = load_dataset_dict(out / "data")
    assert all(0 <= line["fwm_parse_rate"] <= 1 and line["rows"] == min(8, data["test"].num_rows) for line in lines)
    warm = json.loads((out / "warmstart" / "metrics.json").read_text())["training"]
    assert all(warm[role]["eval_loss_after"] < warm[role]["eval_loss_before"] for role in ("fwm", "idm"))
    phase1 = json.loads((out / "iter_1" / "phase1" / "metrics.json").read_text())["training"]
    assert phase1["annotated_pairs"] == 8 and phase1["steps"] == 2 and 0 <= phase1["last_step"]["parse_rate"] <= 1

    def weights(stage: str, role: str) -> dict:
        return load_file(out / stage / role / "adapter_model.safetensors")

    for stage, role in (("iter_1/phase1", "fwm"), ("iter_1/phase2", "idm")):  # each phase trained its policy
        before, after = weights("warmstart" if stage.endswith("1") else "iter_1/phase1", role), weights(stage, role)
        assert any(not torch.equal(before[k], after[k]) for k in before)
        assert all(".language_model.layers." in k for k in after)  # no adapter weight on the vision tower
    assert data["labelled"][0]["image"].size == (128, 128)
    assert "state_modality: image" in (out / "hub" / "README.md").read_text()
    evaluated = subprocess.run([sys.executable, "-m", "swirl.cli", "eval", "--model", "tiny-qwen2-vl", "--adapters",
                                str(out / "iter_1" / "phase2"), "--dataset", str(out / "data"), "--rows", "3",
                                "--state-modality", "image", "--max-state-tokens", "16", "--out", str(tmp_path / "eval")],
                               capture_output=True, text=True, timeout=600, cwd=REPO)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["rows"] == 3 and "rollouts" not in report and "idm_confusion" in report
