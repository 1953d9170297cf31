"""Environments and their codecs (state <-> text / image, action <-> text).

Importing this package registers MiniGrid's own ids and the WAV tasks (``swirl/WAV-*``) with gymnasium.
"""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # minigrid imports pygame, which greets on import

import minigrid  # noqa: E402,F401  (registers MiniGrid-* and BabyAI-*)

from swirl.envs import wav_tasks  # noqa: E402,F401  (registers swirl/WAV-*)
