"""Does showing the LLM forward model the cell the agent faces lift it on WAV's MiniGrid protocol (issue #31)?

The all-layer warm start (``make wav-protocol-llm-all``) gets 30-39% of the changed cells. Per action it is nearly
perfect on ``turn left``, ``turn right`` and ``move forward`` and weak on ``pick up``, ``drop``, ``toggle`` and
``switch``: the actions whose effect depends on the cell in front of the agent, which the objects text leaves the
model to find (add the facing step to the agent's position, look the result up among the objects). Random play
also labels few of them with an effect (seed 2's 200 labels: 2 drops and 4 switches that change the state), and
most of the others change nothing because that cell is empty, a wall or the wrong object, a rule the model can
only learn when it can see the cell. ``state_front_cell`` follows the state in every prompt with that cell
(``front 3,1 red key``; :func:`swirl.envs.minigrid_text.front_cell_line`).

Two arms per seed, everything else the run's (its ``wav_config.json``): ``plain`` is the run's own warm-start
``fwm`` (``<run>/seed_<s>/warmstart/fwm``, trained by the recipe; trained here the same way where the run has no
such seed), ``front`` the same SFT with ``state_front_cell: true``. Both are scored greedily on the protocol's
test rows (the run's ``eval_rows``), overall and per action.

    make fwm-front-cell   # = python benchmarks/fwm_front_cell.py --run runs/wav-protocol-llm-all --seeds 0 1 2

Writes ``<out>/seed_<s>/<arm>.json`` (resumable: an arm with its JSON is skipped; an adapter trained here is kept
under ``<out>/seed_<s>/<arm>/fwm``) and ``--results`` (every arm in ``<out>``, also earlier commands'); prints a
table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ARMS = ("plain", "front")
ACTIONS = ("turn left", "turn right", "move forward", "pick up", "drop", "toggle", "switch")
KEYS = ("fwm_changed_accuracy", "fwm_exact_match", "fwm_parse_rate")


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def action_columns(result: dict[str, Any]) -> str:
    """A scored adapter's changed-cell accuracy per action, as markdown table cells (``ACTIONS`` order)."""
    return " | ".join(percent(result["per_action"].get(a, {}).get("fwm_changed_accuracy"), 0) for a in ACTIONS)


def run_config(run: Path, hint: str = "") -> tuple[Any, dict[str, Any]]:
    """A recipes/wav_minigrid.py run's settings (its ``wav_config.json``) as a ``WAVConfig``, and as written; a
    folder without them is a one-line exit, ``hint`` saying how to make one."""
    from swirl.paths import WAV_RUN_CONFIG  # lazy: --help stays instant
    from swirl.wav.wav_config import WAVConfig

    if not (run / WAV_RUN_CONFIG).exists():
        raise SystemExit(f"{run} is not a recipes/wav_minigrid.py output folder (no {WAV_RUN_CONFIG}){hint}")
    settings = json.loads((run / WAV_RUN_CONFIG).read_text())
    fields = {key: value for key, value in settings.items() if key in WAVConfig.__dataclass_fields__}
    return WAVConfig(**fields), settings


def arm_adapter(arm: str, config: Any, parts: dict[str, Any], tokenizer: Any, run: Path, seed: int,
                out: Path) -> tuple[Path, float | None]:
    """The arm's ``fwm`` adapter folder and its SFT seconds (``None``: trained earlier, by the recipe or here)."""
    from swirl.models.adapters import is_adapter_dir  # lazy, like every import here: --help stays instant
    from swirl.wav.round_models import train_forward_model

    adapter = run / f"seed_{seed}" / "warmstart" / "fwm"
    if arm == "plain" and is_adapter_dir(adapter):
        return adapter, None
    stage = out / f"seed_{seed}" / arm  # an adapter trained by an earlier command that stopped before scoring is kept
    metrics = train_forward_model(config, tokenizer, parts["seed_labels"], parts["test"], stage, None, seed)
    return stage / "fwm", None if metrics.get("reused") else metrics["wall_time_s"]


def score_adapter(config: Any, tokenizer: Any, adapter: Path, test: Any, seed: int) -> dict[str, Any]:
    """Greedy next states of ``adapter`` on ``test``, scored overall and per action."""
    import numpy as np  # lazy: --help stays instant

    from swirl.evaluation.world_model import world_model_metrics
    from swirl.sampling import load_world_model
    from swirl.wav.world_models import LLMWorldModels

    model, sampler = load_world_model(config.model, tokenizer, {"fwm": adapter}, sampler="hf", dtype=config.dtype,
                                      seed=seed)
    world = LLMWorldModels(model, tokenizer, sampler, inverse=None, view=config.state_view,
                           max_state_tokens=config.max_state_tokens)
    predicted = world.predict(test["state"], test["action"])
    metrics = world_model_metrics(test, predicted, np.full(test.num_rows, math.nan), None)
    per_action = metrics["fwm_per_action"]
    return {**{key: metrics[key] for key in KEYS}, "changed_fields": metrics["fwm_changed_fields"],
            "per_action": {action: {"rows": values["rows"], "changed_fields": values["fwm_changed_fields"],
                                    **{key: values[key] for key in KEYS}}
                           for action, values in per_action.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/wav-protocol-llm-all",
                        help="a recipes/wav_minigrid.py output folder: its settings, and its seeds' warm-start fwm "
                             "as the plain arm (trained here for a seed it lacks)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run, in this order")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS, help="arms to run")
    parser.add_argument("--out", default="runs/fwm-front-cell", help="resumable output folder (one JSON per arm)")
    parser.add_argument("--results", default="benchmarks/results/fwm_front_cell.json", help="combined JSON")
    args = parser.parse_args()

    from swirl.models.loading import load_tokenizer  # lazy: --help stays instant
    from swirl.paths import write_json_atomic  # a killed run leaves no half-written JSON
    from swirl.wav.seed_data import load_run_data, split_data

    run, out = Path(args.run), Path(args.out)
    base, settings = run_config(run, ": run the recipe (`make wav-protocol-llm-all`; its warm starts, --rounds 0, "
                                     "are enough) or name one with --run")
    if base.backend != "llm" or base.state_front_cell:
        raise SystemExit(f"{run}: expected an llm-backend run without state_front_cell")
    data = load_run_data(base)
    tokenizer = load_tokenizer(base.model)
    for seed in args.seeds:
        parts = split_data(base, data, seed)
        for arm in args.arms:
            path = out / f"seed_{seed}" / f"{arm}.json"
            if not path.exists():
                config = replace(base, state_front_cell=arm == "front", output_dir=str(out))
                start = time.perf_counter()
                adapter, sft_s = arm_adapter(arm, config, parts, tokenizer, run, seed, out)
                scored_at = time.perf_counter()
                record = {"arm": arm, "seed": seed, "adapter": str(adapter), "sft_s": sft_s,
                          **score_adapter(config, tokenizer, adapter, parts["test"], seed),
                          "eval_s": time.perf_counter() - scored_at, "seconds": time.perf_counter() - start,
                          "settings": {k: v for k, v in asdict(config).items() if k in settings or k == "state_front_cell"}}
                write_json_atomic(path, record)
    # every arm in the folder, also those of earlier commands (e.g. --seeds 2, then --seeds 0)
    results = sorted((json.loads(path.read_text()) for path in out.glob("seed_*/*.json")),
                     key=lambda result: (result["seed"], ARMS.index(result["arm"])))
    write_json_atomic(args.results, results)
    print("| seed | arm | SFT s | changed cells | exact | " + " | ".join(ACTIONS) + " |")
    print("|---" * (5 + len(ACTIONS)) + "|")
    for result in results:
        sft_s = "earlier" if result["sft_s"] is None else f"{result['sft_s']:.0f}"
        print(f"| {result['seed']} | {result['arm']} | {sft_s} | {percent(result['fwm_changed_accuracy'])} | "
              f"{percent(result['fwm_exact_match'])} | {action_columns(result)} |")


if __name__ == "__main__":
    main()
