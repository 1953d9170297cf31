"""ManiSkill3 text codec: a state observation <-> fixed-precision text, its diffs, and continuous actions <-> text.

The env side (make, step, re-simulate, images) is :mod:`swirl.envs.maniskill_env`; :mod:`swirl.envs.maniskill`
imports both.

A state is the env's ``state_dict`` observation (the ``agent`` and ``extra`` groups: joint positions and
velocities, TCP pose, object poses, goal position -- whatever the task exposes), one named field per line,
every number with ``precision`` decimals (default 3)::

    qpos 0.012 0.435 -0.007 -1.869 0.003 2.303 0.794 0.040 0.040
    qvel 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000
    is_grasped 0.000
    tcp_pose 0.012 -0.001 0.180 0.000 1.000 0.000 0.000
    goal_pos -0.088 0.054 0.243
    obj_pose 0.033 0.052 0.020 0.962 0.000 0.000 0.273
    end

``end`` closes the state, as in the MiniGrid codec, so a truncated generation never parses. Parsing gives
back the fields as float arrays, each within half a unit of the last decimal of the observation.

A *diff* lets a forward model write only what changes (:func:`state_diff`, :func:`apply_diff`): one line per
changed field, in the state's field order, giving every value's change at the state text's precision with an
explicit sign; unchanged fields are left out, and ``no change`` (as in the MiniGrid codec) stands for a diff
with no lines. From the state above to one where the TCP moved 12 mm along x and 1 mm back along y::

    qpos +0.011 +0.002 +0.000 -0.001 +0.000 +0.000 +0.000 +0.000 +0.000
    tcp_pose +0.012 -0.001 +0.000 +0.000 +0.000 +0.000 +0.000

Deltas are whole units of the last decimal (``round(value * 10**precision)``), so applying a diff gives back
exactly the next state's text (no float drift; zeros are written ``0.000``, never ``-0.000``). The precision is
read from the state text; a diff's deltas must have exactly that many decimals. A diff has no ``end`` line:
with at least one decimal, cutting one inside a line never parses, but cutting it between two lines leaves a
valid, shorter diff.
Applying is strict: an unknown field, a field twice, a wrong number of deltas or a delta that is not a signed
number at the state's precision raise a one-line :class:`StateParseError` naming the line.

An action is the env's continuous action vector with ``action_precision`` decimals (default 2), e.g.
``0.25 -1.00 0.00 1.00`` for the default ``pd_ee_delta_pos`` controller (TCP dx, dy, dz, gripper). The data
builder executes the *quantised* action (what the text says), so a row's text is exactly what happened.

"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np

from swirl.errors import ActionParseError, StateParseError, SwirlError

DEFAULT_PRECISION = 3
NO_CHANGE = "no change"  # the diff of two equal states (the MiniGrid codec's phrase)
DEFAULT_ACTION_PRECISION = 2
STATE_GROUPS = ("agent", "extra")  # the state_dict observation's groups that describe the state

def flat_array(value: Any) -> np.ndarray:
    """A torch tensor or array of one env (batch dimension 1) as a flat float64 array."""
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if array.ndim >= 1 and array.shape[0] == 1:
        array = array[0]
    return np.asarray(array, dtype=np.float64).reshape(-1)


def observation_fields(obs: Mapping[str, Any], fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The state fields of a ``state_dict`` observation, in the env's order (or ``fields``'s order), as flat
    float arrays. Booleans (``is_grasped``) become 0.0 / 1.0; camera data and parameters are left out."""
    found: dict[str, np.ndarray] = {}
    for group in STATE_GROUPS:
        for name, value in (obs.get(group) or {}).items():
            if isinstance(value, Mapping):
                raise SwirlError(f"observation field {group}/{name} is nested; only flat state fields are supported")
            if name in found:
                raise SwirlError(f"observation field {name!r} appears in two groups; cannot name it uniquely")
            found[name] = flat_array(value)
    if fields is None:
        return found
    unknown = [name for name in fields if name not in found]
    if unknown:
        raise SwirlError(f"unknown state field(s) {', '.join(unknown)}; this env has {', '.join(found)}")
    return {name: found[name] for name in fields}


def _format_number(value: float, precision: int) -> str:
    text = f"{value:.{precision}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"


def state_to_text(fields: Mapping[str, np.ndarray], precision: int = DEFAULT_PRECISION) -> str:
    """One line per field (``name v1 v2 ...``), then ``end``."""
    if not fields:
        raise SwirlError("a state needs at least one field")
    lines = [" ".join([name, *(_format_number(float(v), precision) for v in np.asarray(values).reshape(-1))])
             for name, values in fields.items()]
    return "\n".join([*lines, "end"])


def state_schema(fields: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Field name -> number of values: what a parsed prediction must match."""
    return {name: int(np.asarray(values).size) for name, values in fields.items()}


def text_to_state(text: str, schema: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Parse a state text strictly; with ``schema``, the fields and their sizes must be exactly those.

    Raises :class:`StateParseError` naming the line for anything else (a model's malformed output).
    """
    lines = str(text).strip().splitlines()
    if not lines or lines[-1].strip() != "end":
        raise StateParseError("a state must end with a line 'end'")
    state: dict[str, np.ndarray] = {}
    for number, line in enumerate(lines[:-1], start=1):
        name, *values = line.split() or [""]
        if not name[:1].isalpha():
            raise StateParseError(f"line {number}: expected 'name value ...', got {line[:40]!r}")
        if name in state:
            raise StateParseError(f"line {number}: field {name!r} appears twice")
        try:
            state[name] = np.array([float(value) for value in values], dtype=np.float64)
        except ValueError:
            raise StateParseError(f"line {number}: field {name!r} has a value that is not a number") from None
        if not values or not np.isfinite(state[name]).all():
            raise StateParseError(f"line {number}: field {name!r} needs finite numbers")
    if schema is not None:
        got = {name: values.size for name, values in state.items()}
        if list(got) != list(schema) or got != dict(schema):
            want = ", ".join(f"{name}[{size}]" for name, size in schema.items())
            have = ", ".join(f"{name}[{size}]" for name, size in got.items())
            raise StateParseError(f"fields do not match the env's: expected {want}; got {have}")
    return state


# -------------------------------------------------------------------------------------------- diffs
_FIXED_NUMBER = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")


def _format_units(units: int, precision: int, signed: bool = False) -> str:
    """An integer count of the last decimal as text: ``(-12, 3) -> "-0.012"``; zero is never ``-0.000``."""
    digits = str(abs(units)).rjust(precision + 1, "0")
    text = f"{digits[:-precision]}.{digits[-precision:]}" if precision else digits
    return ("-" if units < 0 else "+" if signed else "") + text


def _state_units(text: str, what: str) -> tuple[dict[str, list[int]], int]:
    """A state text's fields as integers of its last decimal, and its precision (the decimals every value has)."""
    try:
        text_to_state(text)  # the codec's own checks and messages
    except StateParseError as error:
        raise StateParseError(f"{what}: {error}") from None
    fields: dict[str, list[int]] = {}
    precision: int | None = None
    for number, line in enumerate(str(text).strip().splitlines()[:-1], start=1):
        name, *values = line.split()
        fields[name] = []
        for value in values:
            match = _FIXED_NUMBER.fullmatch(value)
            if match is None:
                raise StateParseError(f"{what}: line {number}: field {name!r} value {value[:20]!r} is not a "
                                      f"fixed-precision number like -0.012")
            decimals = len(match.group(2) or "")
            if precision is None:
                precision = decimals
            elif decimals != precision:
                raise StateParseError(f"{what}: line {number}: field {name!r} value {value!r} has {decimals} "
                                      f"decimals; the {what} uses {precision}")
            fields[name].append(int(value.replace(".", "")))
    if precision is None:
        raise StateParseError(f"{what}: a state needs at least one field")
    return fields, precision


def _units_to_text(fields: Mapping[str, Sequence[int]], precision: int) -> str:
    lines = [" ".join([name, *(_format_units(u, precision) for u in units)]) for name, units in fields.items()]
    return "\n".join([*lines, "end"])


def state_diff(state_text: str, next_text: str) -> str:
    """The diff from ``state_text`` to ``next_text``: one ``field +d -d ...`` line per changed field, in the
    state's field order, each delta signed and with the texts' decimals; :data:`NO_CHANGE` if nothing changed.

    Both texts must be state texts with the same fields, sizes and precision, else :class:`StateParseError`.
    """
    fields, precision = _state_units(state_text, "state")
    next_fields, next_precision = _state_units(next_text, "next state")
    sizes = {name: len(units) for name, units in fields.items()}
    next_sizes = {name: len(units) for name, units in next_fields.items()}
    if list(next_sizes) != list(sizes) or next_sizes != sizes:
        want = ", ".join(f"{name}[{size}]" for name, size in sizes.items())
        have = ", ".join(f"{name}[{size}]" for name, size in next_sizes.items())
        raise StateParseError(f"the next state's fields do not match the state's: expected {want}; got {have}")
    if next_precision != precision:
        raise StateParseError(f"the next state has {next_precision} decimals; the state has {precision}")
    lines = []
    for name, units in fields.items():
        deltas = [after - before for before, after in zip(units, next_fields[name])]
        if any(deltas):
            lines.append(" ".join([name, *(_format_units(delta, precision, signed=True) for delta in deltas)]))
    return "\n".join(lines) or NO_CHANGE


def apply_diff(state_text: str, diff: str) -> str:
    """The next state's text: ``state_text`` with ``diff`` (from :func:`state_diff`) added, in the same fields,
    order and precision, closed by ``end``. ``apply_diff(s, state_diff(s, s2)) == s2`` for texts written by
    :func:`state_to_text`.

    Lines may come in any order. A malformed diff (an unknown field, a field twice, a wrong number of deltas, a
    delta that is not a signed number with the state's decimals, ``no change`` next to other lines, an empty
    diff or line) raises a one-line :class:`StateParseError` naming the line.
    """
    fields, precision = _state_units(state_text, "state")
    text = str(diff).strip()
    if text == NO_CHANGE:
        return _units_to_text(fields, precision)
    if not text:
        raise StateParseError(f"the diff is empty; write {NO_CHANGE!r} when nothing changes")
    delta = re.compile(r"[+-][0-9]+" + (rf"\.[0-9]{{{precision}}}" if precision else ""))
    example = _format_units(12, precision, signed=True)
    changes: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name, *values = line.split() or [""]
        if not name:
            raise StateParseError(f"diff line {number}: empty line; write one 'field {example} ...' line per "
                                  f"changed field")
        if [name, *values] == NO_CHANGE.split():
            raise StateParseError(f"diff line {number}: {NO_CHANGE!r} must be the whole diff")
        if name not in fields:
            raise StateParseError(f"diff line {number}: unknown field {name[:40]!r}; the state has "
                                  f"{', '.join(fields)}")
        if name in changes:
            raise StateParseError(f"diff line {number}: field {name!r} appears twice")
        if len(values) != len(fields[name]):
            raise StateParseError(f"diff line {number}: field {name!r} has {len(values)} deltas; the state has "
                                  f"{len(fields[name])} values")
        for value in values:
            if delta.fullmatch(value) is None:
                raise StateParseError(f"diff line {number}: field {name!r}: {value[:20]!r} is not a signed number "
                                      f"with {precision} decimals like {example}")
        changes[name] = [int(value.replace(".", "")) for value in values]
    return _units_to_text({name: [u + d for u, d in zip(units, changes.get(name, [0] * len(units)))]
                           for name, units in fields.items()}, precision)


# ------------------------------------------------------------------------------------------ actions
def action_to_text(action: Sequence[float] | np.ndarray, precision: int = DEFAULT_ACTION_PRECISION) -> str:
    """``[0.25, -1, 0, 1] -> "0.25 -1.00 0.00 1.00"``."""
    values = np.asarray(action, dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.isfinite(values).all():
        raise ActionParseError(f"an action needs finite numbers, got {values.tolist()}")
    return " ".join(_format_number(float(v), precision) for v in values)


def text_to_action(text: str, dim: int, low: float | np.ndarray = -1.0, high: float | np.ndarray = 1.0) -> np.ndarray:
    """Parse an action text of ``dim`` numbers in ``[low, high]`` into a float32 vector (the env's dtype).

    Wrong length, non-numbers and out-of-range values raise :class:`ActionParseError`.
    """
    parts = str(text).split()
    try:
        values = np.array([float(part) for part in parts], dtype=np.float64)
    except ValueError:
        raise ActionParseError(f"action {str(text)[:40]!r} is not {dim} numbers separated by spaces") from None
    if values.size != dim:
        raise ActionParseError(f"action {str(text)[:40]!r} has {values.size} numbers; the env expects {dim}")
    if not np.isfinite(values).all() or (values < low).any() or (values > high).any():
        raise ActionParseError(f"action {str(text)[:40]!r} is outside the action space [{np.min(low)}, {np.max(high)}]")
    return values.astype(np.float32)


def quantise_action(action: np.ndarray, space: Any, precision: int = DEFAULT_ACTION_PRECISION) -> tuple[np.ndarray, str]:
    """Clip ``action`` to the box ``space``, write it with ``precision`` decimals, and read it back: the
    vector the env is stepped with and its text are then the same action."""
    clipped = np.clip(np.asarray(action, dtype=np.float64), space.low, space.high)
    text = action_to_text(clipped, precision)
    return text_to_action(text, int(np.prod(space.shape)), space.low, space.high), text
