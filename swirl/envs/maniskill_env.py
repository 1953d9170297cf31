"""ManiSkill3 environments: make a task with swirl's observation and control settings, reset and step it,
save and restore its simulator state, re-simulate a recorded transition, and its RGB images. The text codec is
:mod:`swirl.envs.maniskill_text`.

ManiSkill needs a Vulkan device even for state observations. On a CPU-only machine run
``make maniskill-setup`` and ``source .vulkan/env.sh`` first (Mesa's lavapipe); a GPU driver needs neither.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from swirl.envs.maniskill_text import flat_array, observation_fields
from swirl.errors import SwirlError, UnknownEnvError

if TYPE_CHECKING:  # pragma: no cover - import only for type hints
    import gymnasium as gym
    from PIL import Image

DEFAULT_CONTROL_MODE = "pd_ee_delta_pos"
IMAGE_SOURCES = ("none", "sensor", "render")  # sensor: the task's camera (128x128); render: the 512x512 view
SETUP_HINT = ("ManiSkill needs a Vulkan driver: on a machine without a GPU run `make maniskill-setup` and "
              "`source .vulkan/env.sh` first")
INSTALL_HINT = "ManiSkill is not installed: pip install 'swirl-wm[maniskill]'"


def _require_mani_skill() -> None:
    import warnings

    with warnings.catch_warnings():  # SAPIEN's own libvulkan works; its warning about the system one is noise
        warnings.filterwarnings("ignore", message="Failed to find system libvulkan")
        try:
            import mani_skill.envs  # noqa: F401  (registers the tasks)
        except ImportError:
            raise SwirlError(INSTALL_HINT) from None


def maniskill_env_ids() -> list[str]:
    """Every registered ManiSkill task id."""
    _require_mani_skill()
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    from mani_skill.utils.registration import REGISTERED_ENVS

    return sorted(REGISTERED_ENVS)


def check_env_id(env_id: str) -> None:
    """A one-line error, naming close matches, for an id ManiSkill does not know."""
    _require_mani_skill()
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    from mani_skill.utils.registration import REGISTERED_ENVS

    if env_id not in REGISTERED_ENVS:
        close = difflib.get_close_matches(env_id, list(REGISTERED_ENVS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `swirl data maniskill --list-envs`"
        raise UnknownEnvError(f"unknown ManiSkill environment id {env_id!r}{hint}")


def _check_assets(env_id: str) -> None:
    """ManiSkill asks on stdin to download missing assets; fail in one line instead."""
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    from mani_skill.utils import assets
    from mani_skill.utils.registration import REGISTERED_ENVS

    missing = []
    for asset_id in REGISTERED_ENVS[env_id].asset_download_ids or []:
        sources = (assets.expand_data_group_into_individual_data_source_ids(asset_id)
                   if asset_id in assets.DATA_GROUPS else [asset_id])
        missing += [source for source in sources if not assets.is_data_source_downloaded(source)]
    if missing:
        raise SwirlError(f"{env_id} needs ManiSkill assets that are not downloaded ({', '.join(missing[:5])}); "
                         f"run `python -m mani_skill.utils.download_asset {env_id}` on a machine with network")


def make_env(env_id: str, *, images: str = "none", control_mode: str = DEFAULT_CONTROL_MODE,
             sim_backend: str = "cpu", **kwargs: Any) -> gym.Env:
    """One ManiSkill env (``num_envs=1``) with ``state_dict`` observations (plus the task camera's RGB with
    ``images="sensor"``, or ``env.render()`` frames with ``images="render"``).

    The physics runs on the CPU by default (deterministic: the same seed and actions give the same states);
    rendering uses the GPU when torch sees one, else the CPU. Unknown ids, a missing package, missing assets
    and a missing Vulkan driver each fail with one line that says what to do.
    """
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    import gymnasium as gym
    import torch

    if images not in IMAGE_SOURCES:
        raise SwirlError(f"unknown image source {images!r}; choose one of {', '.join(IMAGE_SOURCES)}")
    check_env_id(env_id)
    _check_assets(env_id)
    options = dict(obs_mode="state_dict+rgb" if images == "sensor" else "state_dict", control_mode=control_mode,
                   sim_backend=sim_backend, render_backend="gpu" if torch.cuda.is_available() else "cpu")
    if images == "render":
        options["render_mode"] = "rgb_array"
    try:
        return gym.make(env_id, **options, **kwargs)
    except RuntimeError as error:
        if "vk" in str(error).lower() or "vulkan" in str(error).lower():
            raise SwirlError(f"{SETUP_HINT} ({str(error).splitlines()[0]})") from None
        raise
    except AssertionError as error:  # ManiSkill checks e.g. the control mode with bare asserts
        raise SwirlError(f"cannot make {env_id} with {options}: {str(error).splitlines()[0] if str(error) else 'bad option'}") from None


def reset(env: gym.Env, seed: int) -> dict[str, Any]:
    obs, _ = env.reset(seed=int(seed))
    return obs


def step(env: gym.Env, action: np.ndarray) -> tuple[dict[str, Any], bool]:
    """Step one env with a float32 action vector; return the observation and whether the episode ended."""
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    import torch

    obs, _, terminated, truncated, _ = env.step(torch.as_tensor(np.asarray(action, dtype=np.float32))[None])
    return obs, bool(terminated.any()) or bool(truncated.any())


def env_state_json(env: gym.Env) -> str:
    """The env's full simulator state (``get_state_dict()``: every actor's pose and velocity, every articulation's
    joints) as JSON, for re-simulation without pickle."""
    def flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for key, value in tree.items():
            if isinstance(value, Mapping):
                out |= flat(value, f"{prefix}{key}/")
            else:
                out[f"{prefix}{key}"] = flat_array(value).tolist()
        return out

    return json.dumps(flat(env.unwrapped.get_state_dict()), separators=(",", ":"))


def restore_env_state(env: gym.Env, state_json: str) -> None:
    """Put ``env`` (already reset once) into the simulator state of :func:`env_state_json`."""
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    import torch

    tree: dict[str, Any] = {}
    for path, values in json.loads(state_json).items():
        *groups, leaf = path.split("/")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = torch.tensor([values], dtype=torch.float32)
    env.unwrapped.set_state_dict(tree)


def resimulate(env: gym.Env, seed: int, action_prefix: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Rebuild the state a dataset row records: reset with ``seed``, replay ``action_prefix``; return the
    observation. Stepping the row's action afterwards reproduces its ``next_state`` exactly (CPU physics)."""
    obs = reset(env, seed)
    for index, action in enumerate(action_prefix):
        obs, ended = step(env, np.asarray(action, dtype=np.float32))
        if ended and index < len(action_prefix) - 1:
            raise SwirlError(f"seed {seed}: the episode ended at step {index} of the action prefix")
    return obs


# ------------------------------------------------------------------------------------------- images
def sensor_image(obs: Mapping[str, Any], camera: str | None = None) -> Image.Image:
    """The RGB frame of a sensor camera (the task's first camera by default) in an ``images="sensor"`` obs."""
    cameras = obs.get("sensor_data") or {}
    if not cameras:
        raise SwirlError("the observation has no camera data; make the env with images='sensor'")
    return _frame_to_image(cameras[camera or next(iter(cameras))]["rgb"])


def render_image(env: gym.Env) -> Image.Image:
    """``env.render()`` (the task's human-view camera) as a PIL image; the env needs ``images="render"``."""
    return _frame_to_image(env.render())


def _frame_to_image(frame: Any) -> Image.Image:
    """One env's RGB frame (a tensor or array, with or without the batch dimension) as a PIL image."""
    # lazy: mani_skill, gymnasium and torch are the optional maniskill extra (and need Vulkan)
    from PIL import Image

    frame = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    return Image.fromarray(np.asarray(frame[0] if frame.ndim == 4 else frame, dtype=np.uint8))
