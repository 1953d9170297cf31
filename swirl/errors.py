"""Errors that swirl raises on purpose.

Every one of them carries a single line that says what went wrong and what to do; the CLI prints that
line (no traceback) and exits with status 2 (:func:`run_or_exit`, which every entry point goes through).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
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


INTERRUPTED = "swirl: interrupted\n"
# what gloo and NCCL raise in a process whose peer died: not this process's error, the peer printed its own
PEER_FAILURES = ("Connection closed by peer", "Connection reset by peer", "remote worker crashing")
# ``accelerate launch`` copies its child's stderr; a Ctrl-C reaches both at once, and a line the child writes before
# the launcher has handled its own KeyboardInterrupt can be read and then dropped by it. The child waits this long
# first (well inside the launcher's 5 s grace), so the line arrives once the launcher is only draining the pipe.
LAUNCHER_SETTLE_S = 0.5


def write_now(text: str) -> None:
    """Write ``text`` to stderr unbuffered (straight to its file descriptor where it has one): a line written from
    a signal handler must be out before the process can be killed."""
    sys.stderr.flush()
    try:
        os.write(sys.stderr.fileno(), text.encode())
    except (AttributeError, OSError, ValueError):  # a stderr replaced by an object without a descriptor
        sys.stderr.write(text)
        sys.stderr.flush()


def run_or_exit(function: Callable[..., Any], *args: Any) -> int:
    """Run ``function(*args)`` and return an exit status: a :class:`SwirlError` becomes one line on stderr and
    status 2, Ctrl-C or SIGTERM status 130 (finished stages stay on disk; the same command resumes).

    SIGTERM stops a run like Ctrl-C: ``accelerate launch`` forwards a Ctrl-C to its child, terminates it at once
    and kills it 5 s later, and schedulers (Slurm, Kubernetes) preempt with SIGTERM. So the first of these signals
    writes the run's last line before anything unwinds (a trainer's cleanup may outlast the launcher's
    grace), and raises; a second one is ignored.

    In a multi-process run the launcher (``accelerate launch``, ``torchrun``) stops every process as soon as one
    exits with an error, so the failing process's line is the run's only error: another process that had hit the
    same error waits a moment before printing it (the launcher stops it first), and one whose collective call
    broke because a peer died says so in one line instead of a traceback."""
    other_process = int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) > 0
    said = [False]  # whether "interrupted" is written already

    def stop(signum: int, frame: object) -> None:
        if not said[0]:
            said[0] = True
            if signum == signal.SIGINT:  # the launcher got this Ctrl-C too (see LAUNCHER_SETTLE_S)
                time.sleep(LAUNCHER_SETTLE_S)
            write_now(INTERRUPTED)
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set from there
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(number)
            if handler is not signal.SIG_IGN:  # a job started with `nohup` or `&` keeps ignoring Ctrl-C
                previous[number] = signal.signal(number, stop)
    try:
        return _run(function, args, other_process, said)
    finally:
        for number, handler in previous.items():
            if handler is not None:  # a caller in the same process (a test, a notebook) gets its handlers back
                signal.signal(number, handler)


def _run(function: Callable[..., Any], args: tuple, other_process: bool, said: list[bool]) -> int:
    try:
        function(*args)
    except SwirlError as error:
        if other_process:
            time.sleep(5)  # an error every process hits is printed by the main one
        print(f"swirl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if not said[0]:  # a KeyboardInterrupt this module's handler did not raise (no handler outside the main thread)
            sys.stderr.write(INTERRUPTED)
        return 130
    except Exception as error:  # noqa: BLE001 (re-raised unless a peer's failure caused it)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and any(text in str(error) for text in PEER_FAILURES):
            print("swirl: stopped: another process of this run failed (its error is above)", file=sys.stderr)
            return 1
        raise
    return 0
