"""Where swirl keeps what it prepares once and reuses (converted models, tokenizers)."""

from __future__ import annotations

import os
from pathlib import Path


def swirl_home() -> Path:
    """``$SWIRL_HOME``, or ``~/.cache/swirl``."""
    return Path(os.environ.get("SWIRL_HOME", Path.home() / ".cache" / "swirl")).expanduser()
