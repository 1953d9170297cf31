"""Errors that swirl raises on purpose.

Every one of them carries a single line that says what went wrong and what to do; the CLI prints that
line (no traceback) and exits with status 2 (:func:`run_or_exit`, which every entry point goes through).
"""

from __future__ import annotations

import sys
from typing import Any, Callable


class SwirlError(Exception):
    """Base class: an error with a one-line message meant for the user."""


class StateParseError(SwirlError, ValueError):
    """A state text (e.g. a model's generation) is not a valid serialised state."""


class ActionParseError(SwirlError, ValueError):
    """An action text is not one of the known actions."""


class UnknownEnvError(SwirlError, ValueError):
    """An environment id is not registered with gymnasium."""


class HubUnavailableError(SwirlError, RuntimeError):
    """The Hugging Face Hub cannot be reached (offline machine, no token, ...)."""


class DatasetError(SwirlError, ValueError):
    """A dataset on disk is missing, corrupt or lacks the expected splits/columns."""


def run_or_exit(function: Callable[..., Any], *args: Any) -> int:
    """Run ``function(*args)`` and return an exit status: a :class:`SwirlError` becomes one line on stderr and
    status 2, Ctrl-C status 130."""
    try:
        function(*args)
    except SwirlError as error:
        print(f"swirl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("swirl: interrupted", file=sys.stderr)
        return 130
    return 0
