"""Environments and their codecs (state <-> text / image, action <-> text).

Importing this package registers MiniGrid's own ids and the WAV tasks (``swirl/WAV-*``) with gymnasium.
``from swirl.envs import minigrid`` is swirl's MiniGrid codec (:mod:`swirl.envs.minigrid`), like
``from swirl.envs import maniskill``: the pip package ``minigrid`` is imported under another name here, so it
never shadows the codec module.
"""

import importlib
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # minigrid imports pygame, which greets on import

importlib.import_module("minigrid")  # registers MiniGrid-* and BabyAI-*; bound to no name in this package

from swirl.envs import wav_tasks  # noqa: E402,F401  (registers swirl/WAV-*)
