"""Errors that swirl raises on purpose.

Every one of them carries a single line that says what went wrong and what to do; the CLI prints that
line (no traceback) and exits with status 2.
"""

from __future__ import annotations


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
