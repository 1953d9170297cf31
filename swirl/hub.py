"""Hugging Face Hub helpers: fail fast, in one line, before any work when the Hub cannot be used."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from huggingface_hub import HfApi, get_token

from swirl.envs.domain import DEFAULT_DOMAIN, get_domain
from swirl.errors import HubUnavailableError
from swirl.evaluation.tables import markdown_table
from swirl.models.loading import is_vision_model
from swirl.paths import RUN_CONFIG, atomic_dir


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def ensure_hub_reachable(timeout: float = 5.0, need_token: bool = True) -> None:
    """Raise :class:`HubUnavailableError` unless the Hub answers and (optionally) a token is configured.

    Called before a job that ends with a push, so an offline machine learns it at once rather than after
    hours of work. Any HTTP answer (even an error status) counts as reachable.
    """
    what_to_do = "run without --push-to-hub (results are saved locally) and push later from a connected machine"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HubUnavailableError(f"HF_HUB_OFFLINE is set, so nothing can be pushed; {what_to_do}")
    endpoint = hub_endpoint()
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        pass  # the server answered
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise HubUnavailableError(f"cannot reach the Hugging Face Hub at {endpoint} ({reason}); {what_to_do}") from None
    if need_token:
        if get_token() is None:
            raise HubUnavailableError("no Hugging Face token found: run `hf auth login` or set HF_TOKEN before pushing")


def model_card(config: dict, data: dict, eval_lines: list[dict], command: str) -> str:
    """The README.md pushed with a SWIRL run's adapters: what they are, how they were made, how they score.
    ``data`` holds the run's ``domain`` (minigrid or maniskill), ``env_ids`` and split sizes."""
    family = get_domain(data.get("domain", DEFAULT_DOMAIN))
    domain, codec, metric_notes = family.name, family.codec.__name__, family.metric_notes

    modality = config.get("state_modality", "text")
    auto_class = "AutoModelForImageTextToText" if is_vision_model(config["model"]) else "AutoModelForCausalLM"
    views = {"text": "as text", "image": "as images; the adapters answer in text",
             "image+text": "as an image followed by its text; the adapters answer in text"}
    state_text = f"`{config['state_text']}` state texts; " if config.get("state_text") else ""
    if config.get("state_format", "full") == "diff":
        answer_note = (f"{state_text}`state_format: diff`: the FWM writes only what changes (`swirl.envs.state_format`; "
                       f"apply it with\n`{codec}.apply_diff(state, diff)`) and the IDM reads "
                       f"(s, diff(s, s')). Metrics compare full states.")
    else:
        answer_note = f"{state_text}`state_format: full`: the FWM writes the whole next state."
    if config.get("state_front_cell"):
        answer_note += (f" Every prompt shows the cell the agent faces after the state (`state_front_cell: true`; "
                        f"`{codec}.front_cell_line(state)`): prompt the adapters the same way.")
    hyper = ", ".join(f"{key}={config[key]}" for key in (
        "iterations", "phase_steps", "learning_rate", "beta", "num_generations", "temperature", "top_p",
        "reward_clip", "annotation_min_logprob", "sft_steps", "lora_r", "lora_alpha"))
    return f"""---
library_name: peft
base_model: {config['model']}
tags: [swirl, world-model, inverse-dynamics, lora, {domain}]
---

# SWIRL world model: FWM and IDM LoRA adapters

Two LoRA adapters on `{config['model']}`, trained with SWIRL (self-improving world modelling with latent
actions): `fwm/` is the forward world model P(s' | s, a), `idm/` the inverse dynamics model Q(a | s, s').

```python
from peft import PeftModel
from transformers import {auto_class}
base = {auto_class}.from_pretrained("{config['model']}")
fwm = PeftModel.from_pretrained(base, "<this repo>", subfolder="fwm", adapter_name="fwm")
fwm.load_adapter("<this repo>", subfolder="idm", adapter_name="idm")
```

Prompts and the state text format are swirl's (`swirl.models.prompts`, `{codec}`).
{answer_note}

## Data

Environments: {', '.join(data['env_ids'])}. Rows: {data['labelled']} labelled, {data['state_only']} state-only,
{data['test']} test transitions. state_modality: {modality} (prompts show states {views[modality]}).

## Training

Warm start (SFT on the labelled split), then {config['iterations']} SWIRL iteration(s) of phase I (GRPO on the
FWM, reward = IDM log-likelihood of the latent action) and phase II (GRPO on the IDM, reward = FWM
log-likelihood of the real next state), each with a KL term to the phase-start adapter.
Hyperparameters: {hyper}.

## Evaluation (test split, greedy)

{markdown_table(eval_lines, family.headline_metrics)}

{metric_notes}

## Reproduce

```bash
{command}
```
"""


def prepare_push_folder(output_dir: str, final_stage: str, card: str) -> Path:
    """``<output_dir>/hub/``: README.md (the card) plus the final ``fwm/`` and ``idm/`` adapters."""
    target = Path(output_dir) / "hub"
    with atomic_dir(target, replace=True) as staging:
        staging.mkdir()
        for role in ("fwm", "idm"):
            shutil.copytree(Path(final_stage) / role, staging / role)
        (staging / "README.md").write_text(card)
        if (Path(output_dir) / RUN_CONFIG).is_file():  # the prompt and answer formats the adapters expect
            shutil.copy(Path(output_dir) / RUN_CONFIG, staging / RUN_CONFIG)
    return target


def push_folder(folder: str, repo_id: str) -> str:
    """Upload a prepared folder as one model repo (adapters in the fwm/ and idm/ subfolders)."""
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="SWIRL adapters (fwm, idm)")
    return f"{hub_endpoint()}/{repo_id}"
