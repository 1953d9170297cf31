"""Experiment tracking: one tracker run per stage, grouped by the run, holding the trainer's logs and the stage's
evaluation.

Every stage's trainer reports to the trackers ``report_to`` names (TRL's field: ``none``, ``tensorboard``,
``trackio``, ``wandb``, ...) as the run ``<run_name>/<stage>``; when the stage is evaluated, its test metrics and
phase diagnostics (reward, its std in the group, KL, parse rate, keep rate) are logged to the same run at the
stage's last step (:func:`log_stage`). TensorBoard writes ``<output_dir>/tensorboard/<stage>/``, so
``tensorboard --logdir <output_dir>/tensorboard`` shows the stages side by side; trackio (local-first, no
account) keeps project ``project`` with one run per stage (``trackio show --project <project>``). The stage metrics
go to ``tensorboard`` and ``trackio``; other trackers get the trainers' own logs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

STAGE_TRACKERS = ("tensorboard", "trackio")  # the trackers log_stage writes the stage metrics to


def trackers(report_to: str | list[str] | None) -> list[str]:
    """``report_to`` as a list of tracker names (``"none"`` or empty: none)."""
    names = report_to if isinstance(report_to, list) else (report_to or "none").split(",")
    names = [name.strip() for name in names if name.strip()]
    return [] if names in ([], ["none"]) else names


def check_trackers(report_to: str | list[str] | None) -> None:
    """A tracker whose package is missing fails at start-up, in one line, not after the warm start."""
    for name, package in (("tensorboard", "tensorboard"), ("trackio", "trackio"), ("wandb", "wandb")):
        if name in trackers(report_to) and importlib.util.find_spec(package) is None:
            raise ValueError(f"report_to {name} needs the {package} package: pip install {package} "
                             f"(tensorboard and trackio: pip install 'swirl-wm[tracking]')")


def run_name(config: Any) -> str:
    return config.run_name or Path(config.output_dir).resolve().name


def tensorboard_dir(config: Any, stage: str) -> Path:
    return Path(config.output_dir) / "tensorboard" / stage


def trainer_tracking(config: Any, stage: str) -> dict[str, Any]:
    """The ``TrainingArguments`` that send one stage's trainer to the run's trackers."""
    return {"report_to": trackers(config.report_to) or "none", "run_name": f"{run_name(config)}/{stage}",
            "project": config.project}


def route_tensorboard(trainer: Any, directory: Path) -> None:
    """Point the trainer's TensorBoard writer (transformers': ``<args.output_dir>/runs/<date>`` by default) at
    ``directory``, the stage's folder, where :func:`log_stage` writes the stage metrics too."""
    from transformers.integrations import TensorBoardCallback  # lazy: transformers is heavy

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(directory)


def stage_scalars(evaluation: dict[str, Any], training: dict[str, Any] | None = None) -> dict[str, float]:
    """A stage's numbers as tracker scalars: ``eval/<metric>`` (open-loop rollouts as ``eval/rollout_h<k>_exact_match``) and
    ``phase/<signal>`` (the mean over the phase's steps of reward, reward_std, kl, parse_rate; keep rate)."""
    scalars = {f"eval/{key}": float(value) for key, value in evaluation.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    for rollout in evaluation.get("rollouts") or []:
        scalars[f"eval/rollout_h{rollout['horizon']}_exact_match"] = float(rollout["exact_match"])
    steps = (training or {}).get("log", [])
    for key in ("reward", "reward_std", "kl", "parse_rate", "frac_reward_zero_std"):
        values = [step[key] for step in steps if isinstance(step.get(key), (int, float))]
        if values:
            scalars[f"phase/{key}"] = sum(values) / len(values)
    for key in ("keep_rate", "kept_pairs", "mean_annotation_logprob"):
        if isinstance((training or {}).get(key), (int, float)):
            scalars[f"phase/{key}"] = float(training[key])
    return scalars


def log_stage(config: Any, stage: str, scalars: dict[str, float], step: int) -> None:
    """Log a stage's scalars to its tracker run(s) at ``step`` (call on the main process)."""
    names = trackers(config.report_to)
    if "tensorboard" in names:
        from torch.utils.tensorboard import SummaryWriter  # lazy: torch is heavy, tensorboard optional

        writer = SummaryWriter(log_dir=str(tensorboard_dir(config, stage)))
        for key, value in scalars.items():
            writer.add_scalar(key, value, step)
        writer.close()
    if "trackio" in names:
        import trackio  # lazy: optional tracker package

        trackio.init(project=config.project, name=f"{run_name(config)}/{stage}", group=run_name(config),
                     resume="allow", embed=False)
        trackio.log(scalars, step=step)
        trackio.finish()
