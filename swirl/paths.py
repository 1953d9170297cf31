"""Where swirl keeps what it prepares once (converted models, tokenizers), how it writes files and folders safely
(atomically), and the files a run leaves in its folder (its config, each stage's ``metrics.json``)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from swirl.errors import SwirlError


def swirl_home() -> Path:
    """``$SWIRL_HOME``, or ``~/.cache/swirl``."""
    return Path(os.environ.get("SWIRL_HOME", Path.home() / ".cache" / "swirl")).expanduser()


@contextmanager
def atomic_dir(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a not-yet-existing path beside ``target`` to write a folder into; move it to ``target`` at the end.

    Readers never see a half-written folder, and a crash leaves ``target`` as it was. With
    ``replace=False`` a ``target`` that another process published meanwhile is kept (first writer wins:
    for caches built concurrently); with ``replace=True`` the new folder replaces it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    new, old = scratch / "new", scratch / "old"
    try:
        yield new
        if not new.exists():
            raise FileNotFoundError(f"nothing was written for {target}")
        if replace and target.exists():
            os.replace(target, old)
            try:
                os.replace(new, target)
            except BaseException:
                os.replace(old, target)  # put the old folder back before the scratch folder is removed
                raise
        else:
            try:
                os.replace(new, target)
            except OSError:
                if replace or not target.exists():
                    raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a part (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())  # the content is on disk before the name points at it
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, payload) -> None:
    """Strict JSON (NaN and infinities become null), written atomically."""
    write_text_atomic(path, json.dumps(json_safe(payload), indent=2, allow_nan=False) + "\n")


def stage_done(stage_dir: str | os.PathLike) -> bool:
    """A stage of a run (SWIRL's warm start or phase, a WAV round) is complete when its ``metrics.json`` exists and
    is readable: it is written last, atomically."""
    try:
        json.loads((Path(stage_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def refuse_other_settings(path: str | os.PathLike, settings: dict, made: str = "was made", write: bool = True,
                          defaults: dict | None = None) -> None:
    """Record a folder's ``settings`` in ``path`` on first use (when ``write``); on a later use, raise a one-line
    ``SwirlError`` naming every setting that differs, so that a rerun never silently mixes two experiments in one
    folder. ``made`` words the message: "<folder> <made> with other settings (...)". A setting the record does not
    hold (a field added since the folder was made) counts as recorded at its value in ``defaults``: a folder made
    before a new option still resumes while the option keeps its default."""
    path, settings = Path(path), json_safe(settings)
    if path.exists():
        recorded = json.loads(path.read_text())
        recorded = {key: value for key, value in json_safe(defaults or {}).items() if key in settings} | recorded
        changed = sorted(key for key in settings.keys() | recorded.keys() if settings.get(key) != recorded.get(key))
        if changed:
            raise SwirlError(f"{path.parent} {made} with other settings ({', '.join(changed)} differ); use another "
                             f"output_dir or the original settings")
    elif write:
        write_json_atomic(path, settings)


def json_safe(value):
    """``value`` with every NaN or infinite float replaced by ``None``, so it writes as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


RUN_CONFIG = "swirl_config.json"  # a SWIRL run's whole config, written at its start in its output_dir
WAV_RUN_CONFIG = "wav_config.json"  # a WAV run's settings (swirl.wav.acquisition's fingerprint)
RUN_CONFIG_NAMES = (RUN_CONFIG, WAV_RUN_CONFIG)


def find_run_config(folder: str | os.PathLike) -> dict | None:
    """The config of the run ``folder`` belongs to (a stage folder, an adapter folder or the run itself): the
    nearest ``swirl_config.json`` (or a WAV run's ``wav_config.json``) in it or above it, or None."""
    folder = Path(folder).resolve()
    for candidate in (folder, *folder.parents):
        for name in RUN_CONFIG_NAMES:
            if (candidate / name).is_file():
                return json.loads((candidate / name).read_text())
    return None


def save_torch_model(directory: str | os.PathLike, module, config: dict) -> Path:
    """Save a small torch model as ``model.safetensors`` + ``config.json`` (no pickle), atomically."""
    from safetensors.torch import save_file  # lazy: safetensors.torch imports torch, which light callers of paths skip

    with atomic_dir(Path(directory), replace=True) as tmp:
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return Path(directory)


def load_torch_model(directory: str | os.PathLike, build, what: str):
    """The model :func:`save_torch_model` wrote: ``build(config dict)`` then its weights; a folder that is not one
    is a one-line ``SwirlError`` naming ``what`` it should have been."""
    from safetensors.torch import load_file  # lazy: safetensors.torch imports torch, which light callers of paths skip

    directory = Path(directory)
    try:
        model = build(json.loads((directory / "config.json").read_text()))
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
    except Exception as error:  # json, safetensors and torch raise several types for a bad folder
        raise SwirlError(f"{directory}: not a readable {what} ({type(error).__name__}: {error})") from None
    return model
