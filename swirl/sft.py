"""Supervised fine-tuning of one role's LoRA adapter on transition rows (TRL's SFTTrainer): SWIRL's warm start
(:mod:`swirl.training.warm_start`) and every WAV round (:mod:`swirl.wav.acquisition`) train through it, so it sits
below both.

* ``fwm``: prompt (state, action) -> completion next state;
* ``idm``: prompt (state, next state) -> completion action;
* ``subgoal``: prompt (state) -> completion next state (WAV's subgoal generator; state-only data works too).

With a VLM and ``state_modality: image`` (or ``image+text``), prompts show states as images (the dataset's
``image`` / ``next_image`` columns) and TRL's vision collator feeds them through the processor.

Loss is on the completion only (TRL does this for prompt-completion data). Only the LoRA parameters train;
the base weights are untouched. The adapter is saved alone, in the standard PEFT layout, at
``<output_dir>/<role>/``, with ``metrics.json`` (eval loss on ``test`` before and after) beside it.

    swirl sft --role fwm --dataset data/minigrid --model smollm2-135m --output_dir runs/sft
    accelerate launch -m swirl.sft --role idm --dataset data/minigrid --output_dir runs/sft
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from trl import SFTConfig, SFTTrainer

from swirl.config_fields import LoRAModelFields, parse_config
from swirl.data import check_state_images, convert_state_texts, domain_of, load_dataset_dict
from swirl.envs.minigrid_text import STATE_TEXTS
from swirl.envs.state_format import check_state_format
from swirl.errors import SwirlError
from swirl.models.adapters import lora_config, save_adapter, top_layers, with_adapters
from swirl.models.loading import load_base_model, load_tokenizer
from swirl.models.prompts import ROLES, prompt_completion_dataset
from swirl.models.state_view import STATE_MODALITIES, StateView, TEXT_VIEW, state_view
from swirl.models.vision import lora_target_modules, require_vlm
from swirl.progress import disable_progress_bars, use_stage_bar
from swirl.tracking import route_tensorboard, tensorboard_dir, trainer_tracking

SPLIT_FOR_ROLE = {"fwm": "labelled", "idm": "labelled", "subgoal": "state_only"}


@dataclass
class SwirlSFTConfig(SFTConfig):
    """TRL's ``SFTConfig`` plus what swirl needs to pick the data, the model and the adapter.

    Defaults differ from TRL's where a CPU run needs it: no gradient checkpointing, no bf16 without a
    GPU (both switched automatically).
    """

    role: str = field(default="fwm", metadata={"help": "adapter to train: fwm, idm or subgoal."})
    dataset: str | None = field(default=None, metadata={"help": "dataset folder written by `swirl data minigrid` or "
                                                                  "`swirl data maniskill`."})
    model: str = field(
        default="smollm2-135m",
        metadata={"help": "base model: a Hub id, a local folder, or a built-in name (smollm2-135m, tiny-qwen2)."},
    )
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16."})
    init_adapter: str | None = field(
        default=None, metadata={"help": "start from this saved adapter folder instead of a fresh LoRA."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "modules to adapt; 'all-linear' means every linear layer except the LM head (of a VLM's "
                          "language model only, unless lora_vision)."},
    )
    lora_vision: bool = field(default=False, metadata={"help": "VLMs: also adapt the vision tower with 'all-linear'."})
    lora_layers: int | None = field(default=None, metadata={"help": "LoRA on the top K decoder layers only (None: "
                                                                    "all); the backward pass stops at the lowest "
                                                                    "adapted layer, so a step is cheaper. A fresh "
                                                                    "LoRA's; init_adapter keeps its own."})
    state_modality: str = field(default="text", metadata={"help": "how prompts show states: text, image or "
                                                                   "image+text (image needs a VLM and a dataset "
                                                                   "built with --images)."})
    state_format: str = field(default="full", metadata={"help": "full (the fwm/subgoal adapter writes the whole next "
                                                                 "state) or diff (only what changes; the idm reads the "
                                                                 "change)."})
    state_front_cell: bool = field(default=False, metadata={"help": "MiniGrid: follow the state in every prompt with the "
                                                                    "cell the agent faces ('front 3,1 red key'; text "
                                                                    "states only). Evaluate with the same setting."})
    state_text: str | None = field(default=None, metadata={"help": "MiniGrid: grid or objects (default: the "
                                                                    "dataset's own text)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "use at most this many training rows."})
    max_eval_samples: int | None = field(default=256, metadata={"help": "evaluate on at most this many test rows."})
    activation_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory (GPU runs; "
                                                                           "transformers' new name of "
                                                                           "gradient_checkpointing)."})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 mixed precision; default: on when a GPU supports it."})
    logging_steps: float = field(default=10, metadata={"help": "log every this many steps."})
    save_strategy: str = field(default="no", metadata={"help": "trainer checkpoints; the adapter is always saved."})

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.dataset is None:
            raise ValueError("dataset is required: the folder written by `swirl data minigrid` or `swirl data maniskill`")
        LoRAModelFields.check_lora_layers(self)  # the same fields, the same checks
        if self.state_modality not in STATE_MODALITIES:
            raise ValueError(f"state_modality must be one of {', '.join(STATE_MODALITIES)}, got {self.state_modality!r}")
        check_state_format(self.state_format)
        if self.state_text is not None and self.state_text not in STATE_TEXTS:
            raise ValueError(f"state_text must be one of {', '.join(STATE_TEXTS)} (got {self.state_text!r})")
        if not torch.cuda.is_available():
            self.use_cpu = True
            self.bf16 = False
            self.activation_checkpointing = False
        elif self.bf16 is None:
            self.bf16 = torch.cuda.is_bf16_supported()
        super().__post_init__()


def sft_datasets(config: SwirlSFTConfig, tokenizer: Any) -> tuple[Any, Any]:
    """Train (``labelled``; ``state_only`` for subgoal) and eval (``test``) sets in prompt-completion form."""
    data = load_dataset_dict(config.dataset)
    if config.state_text is not None:  # MiniGrid splits only; others are left as they are
        data = convert_state_texts(data, config.state_text)
    train, test = data[SPLIT_FOR_ROLE[config.role]], data["test"]
    view = state_view(config.state_modality, domain_of(train), config.state_format, config.state_front_cell)
    if view.has_images:
        require_vlm(view, tokenizer, config.model)
        check_state_images(data, config.dataset, (SPLIT_FOR_ROLE[config.role], "test"))
    if config.max_train_samples is not None:
        train = train.shuffle(seed=config.seed, keep_in_memory=True).select(range(min(config.max_train_samples, train.num_rows)))
    if config.max_eval_samples is not None:
        test = test.shuffle(seed=config.seed, keep_in_memory=True).select(range(min(config.max_eval_samples, test.num_rows)))
    if train.num_rows == 0:
        raise SwirlError(f"{config.dataset}: the {SPLIT_FOR_ROLE[config.role]} split is empty, nothing to train on")
    return sft_examples(train, config.role, tokenizer, view), sft_examples(test, config.role, tokenizer, view)


def sft_examples(rows: Any, role: str, tokenizer: Any, view: StateView = TEXT_VIEW) -> Any:
    """Transition rows as TRL's prompt-completion examples for ``role`` (only those columns, and ``images``)."""
    columns = ["prompt", "completion"] + (["images"] if view.has_images else [])
    return prompt_completion_dataset(rows, role, tokenizer, view).select_columns(columns)


def run_sft(model: Any, tokenizer: Any, train: Any, test: Any | None, config: SwirlSFTConfig,
            tensorboard: Path | None = None) -> dict[str, Any]:
    """Train the adapter named ``default`` of the PeftModel ``model`` on prompt-completion ``train`` (TensorBoard
    events, with ``report_to: tensorboard``, in ``tensorboard`` if given).

    Returns eval loss on ``test`` before (NaN under DeepSpeed) and after (both NaN when ``test`` is None or empty),
    and the wall time. The loop's warm start calls this with the model it already holds; :func:`train_sft` is the
    stand-alone entry point.
    """
    evaluates = test is not None and test.num_rows > 0
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, eval_dataset=test if evaluates else None,
                         processing_class=tokenizer)
    use_stage_bar(trainer, f"SFT {config.role}")
    if tensorboard is not None:
        route_tensorboard(trainer, tensorboard)
    start = time.perf_counter()
    # Under DeepSpeed, evaluating before training starts ZeRO inference, which only stage 3 supports.
    can_evaluate_first = evaluates and not trainer.is_deepspeed_enabled
    before = trainer.evaluate()["eval_loss"] if can_evaluate_first else float("nan")
    train_start = time.perf_counter()
    trainer.train()
    train_time = time.perf_counter() - train_start
    after = trainer.evaluate()["eval_loss"] if evaluates else float("nan")
    return {
        "role": config.role,
        "model": config.model,
        "train_rows": train.num_rows,
        "eval_rows": test.num_rows if evaluates else 0,
        "eval_loss_before": before,
        "eval_loss_after": after,
        "wall_time_s": time.perf_counter() - start,
        "train_time_s": train_time,  # the optimiser steps alone (no evaluation)
        "is_main_process": trainer.accelerator.is_main_process,
    }


def train_and_save(config: SwirlSFTConfig, tokenizer: Any, train: Any, test: Any | None, adapter_dir: str | Path,
                   tensorboard: Path | None = None) -> dict[str, Any]:
    """SFT ``config.init_adapter`` (or a fresh LoRA of the config's shape) as TRL's ``default`` adapter on the base,
    then save it at ``adapter_dir`` on the main process; the metrics of :func:`run_sft`."""
    base = load_base_model(config.model, dtype=config.dtype, device="cpu", trust_remote_code=config.trust_remote_code)
    target = config.lora_target_modules
    if target == ["all-linear"]:
        target = lora_target_modules(base, config.lora_vision)
    layers = top_layers(base, config.lora_layers) if config.lora_layers is not None else None  # checks K <= n
    adapter = config.init_adapter or lora_config(config.lora_r, config.lora_alpha, config.lora_dropout, target, layers)
    model = with_adapters(base, {"default": adapter})  # TRL trains the adapter named "default"
    if config.state_modality != "text":
        config.max_length = None  # cutting a prompt's image tokens would break its forward pass
    metrics = run_sft(model, tokenizer, train, test, config, tensorboard)
    if metrics["is_main_process"]:
        save_adapter(model, "default", adapter_dir)
    return metrics


def sft_adapter(model_name: str, tokenizer: Any, role: str, train_rows: Any, eval_rows: Any, adapter_dir: str | Path,
                *, init_adapter: str | Path | None = None, lora: tuple[int, int, float] = (16, 32, 0.05),
                dtype: str = "auto", steps: int = 100, learning_rate: float = 2e-4, batch_size: int = 8,
                seed: int = 0, trainer_dir: str | Path | None = None, view: StateView = TEXT_VIEW,
                lora_vision: bool = False, lora_layers: int | None = None, group_by_length: bool = False,
                tracking: Any = None, stage: str = "sft") -> dict[str, Any]:
    """SFT one role's adapter on transition rows held in memory and save it at ``adapter_dir`` (main process).

    The in-process entry point for loops that train the same role again and again (SWIRL's warm start,
    every WAV acquisition round): ``init_adapter`` continues from a saved adapter, else a fresh LoRA
    ``(r, alpha, dropout)`` is trained (on the top ``lora_layers`` decoder layers only, if set).
    ``group_by_length`` batches rows of similar length together (transformers' ``group_by_length`` sampling): less
    padding, so cheaper steps where row lengths vary a lot (WAV's noisy room), at the price of batches that mix
    fewer kinds of rows. With
    ``tracking`` (the run's config: ``report_to``, ``run_name``, ``project``) the trainer reports to the run's
    trackers as ``<run_name>/<stage>``. Every process of a distributed run must call it.
    """
    if train_rows.num_rows == 0:
        raise SwirlError(f"no rows to train the {role} adapter on")
    trainer_dir = Path(trainer_dir) if trainer_dir is not None else Path(adapter_dir).parent / "trainer" / role
    r, alpha, dropout = lora
    config = SwirlSFTConfig(output_dir=str(trainer_dir), role=role, dataset="(rows in memory)", model=model_name,
                            dtype=dtype, init_adapter=str(init_adapter) if init_adapter is not None else None,
                            lora_r=r, lora_alpha=alpha, lora_dropout=dropout, max_steps=steps,
                            learning_rate=learning_rate, per_device_train_batch_size=batch_size,
                            logging_steps=max(1, steps // 5), seed=seed, disable_tqdm=True,
                            state_modality=view.modality, state_format=view.state_format,
                            state_front_cell=view.front_cell, lora_vision=lora_vision,
                            lora_layers=lora_layers,
                            train_sampling_strategy="group_by_length" if group_by_length else "random",
                            **(trainer_tracking(tracking, stage) if tracking is not None else {"report_to": "none"}))
    evaluation = sft_examples(eval_rows, role, tokenizer, view) if eval_rows.num_rows else None  # 0 rows: no eval loss
    metrics = train_and_save(config, tokenizer, sft_examples(train_rows, role, tokenizer, view), evaluation,
                             adapter_dir, tensorboard_dir(tracking, stage) if tracking is not None else None)
    metrics.pop("is_main_process")
    return metrics


def train_sft(config: SwirlSFTConfig) -> dict[str, Any]:
    """Load the model and data, run SFT for ``config.role``, save the adapter at ``<output_dir>/<role>``."""
    if config.disable_tqdm:
        disable_progress_bars()
    tokenizer = load_tokenizer(config.model, trust_remote_code=config.trust_remote_code)
    train, test = sft_datasets(config, tokenizer)
    out = Path(config.output_dir) / config.role
    metrics = train_and_save(config, tokenizer, train, test, out)
    if metrics.pop("is_main_process"):
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"{config.role}: eval loss {metrics['eval_loss_before']:.4f} -> {metrics['eval_loss_after']:.4f}; "
              f"adapter saved to {out}")
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    train_sft(parse_config(SwirlSFTConfig, argv, description=__doc__.split("\n\n")[0], prog="swirl sft"))


if __name__ == "__main__":
    from swirl.errors import run_or_exit

    sys.exit(run_or_exit(main, sys.argv[1:]))
