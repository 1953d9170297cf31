"""MiniGrid text codec: a full-observability state <-> two lossless texts, and the diffs between states.

The world models see the *whole* grid (not MiniGrid's 7x7 egocentric view), so that the next state is a
function of (state, action). A state has two texts (``STATE_TEXTS``); :func:`text_to_state` reads both,
telling them apart by their first line (:func:`state_text_kind`), and :func:`convert_state_text` converts.

**grid** (the default): the grid drawn row by row, one token per cell, compact::

    grid 5x4
    W W W W W
    W . Kr >G W
    W Bb[Ab] Dyl . W
    W W W W W
    carrying none
    end

Cell codes (one token per cell, cells separated by spaces, one grid row per line):

* ``.`` empty.
* An object is a type letter, a colour letter, then type-specific parts:
  type ``W`` wall, ``F`` floor, ``D`` door, ``K`` key, ``A`` ball, ``B`` box, ``G`` goal, ``V`` lava;
  colour ``r`` red, ``g`` green, ``b`` blue, ``p`` purple, ``y`` yellow, ``x`` grey.
  The colour is left out when it is the type's usual one (grey wall, blue floor, green goal, red lava).
  A door ends with its state: ``o`` open, ``c`` closed, ``l`` locked (``Dyl`` = locked yellow door).
  A box may hold an object in brackets, recursively (``Bb[Kr]`` = blue box holding a red key).
* The agent is drawn over its cell as an arrow pointing where it faces (``>`` right, ``v`` down, ``<`` left,
  ``^`` up), followed by the object it stands on, if any (``>G`` = agent facing right, on the goal).

**objects**: the same state as a list of objects at explicit ``X,Y`` positions, in words, so that a language
model needs no counting of cells along a row::

    room 6x6
    agent 2,3 facing right
    wall 3,1
    locked yellow door 5,1
    blue box holding red key 2,2
    red key 3,2
    goal 4,4
    carrying none
    end

* ``agent X,Y facing right|down|left|up`` (MiniGrid's ``agent_dir`` 0, 1, 2, 3).
* One line ``<object> X,Y`` per non-empty cell, row-major (y, then x), *except* the plain (grey) walls of the
  outer border, which every room has and which are left out. A border cell that is not a plain wall is
  listed (``empty X,Y`` when it is empty, so the text stays lossless); an empty interior cell never is. The
  cell under the agent is listed like any other.
* An object is ``[state] [colour] type [holding <object>]``: the same colour defaults as the grid text
  (``wall``, ``goal``, but ``red key``), a door's ``open|closed|locked`` first (``locked yellow door``), a box's
  contents after ``holding``, recursively (``blue box holding red key``).

Both texts end with ``carrying <object|none>`` and ``end``, so a truncated text can never parse as a (wrong)
smaller state. Parsing is strict: anything else (including objects-text cell lines out of row-major order,
explicit default colours in it, or a border wall listed) raises :class:`StateParseError` naming the line, so
every state has exactly one objects text.

**Diffs** (:func:`state_diff`, :func:`apply_diff`): the change from one state to the next, written in the
kind of the first state's text; ``no change`` (``NO_CHANGE``) when there is none.

* objects kind: the lines of the next state's objects text whose key changed, in its order: the ``agent``
  line if the pose changed, the line of each changed cell (``empty X,Y`` when it became empty, ``wall X,Y``
  when a border cell became a plain wall), ``carrying ...`` if the carried object changed. Picking up the
  key above: ``empty 3,2`` / ``carrying red key``; moving: ``agent 3,3 facing right``.
* grid kind: ``X,Y CODE`` per changed cell token (arrows included), row-major, then ``carrying CODE`` if it
  changed. Moving right from 2,3: ``2,3 .`` / ``3,3 >``.

Applying a diff sets those keys (lines may come in any order, each key at most once; a line that changes
nothing is allowed) and writes the whole next state; a diff that leaves zero or two agents is an error.

The state model the texts read and write (:class:`~swirl.envs.minigrid_state.MiniGridState`,
:class:`~swirl.envs.minigrid_state.Obj`, the type/colour/door-state code tables) is
:mod:`swirl.envs.minigrid_state`; the env side (actions, renders, making and re-simulating envs) is
:mod:`swirl.envs.minigrid_env`; :mod:`swirl.envs.minigrid` gathers them as the family's public API.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from swirl.envs.minigrid_state import (CODE_TO_COLOR, CODE_TO_DOOR_STATE, CODE_TO_TYPE, COLOR_TO_CODE, DEFAULT_COLOR,
                                       DOOR_STATE_TO_CODE, TYPE_TO_CODE, MiniGridState, Obj, intern_obj)
from swirl.errors import StateParseError

__all__ = ["state_to_text", "text_to_state", "state_text_kind", "convert_state_text", "state_diff", "apply_diff",
           "front_cell_line", "STATE_TEXTS", "NO_CHANGE"]

STATE_TEXTS = ("grid", "objects")
NO_CHANGE = "no change"
DIR_TO_ARROW = (">", "v", "<", "^")  # the grid text's arrows, by agent_dir: 0 right (+x), 1 down (+y), 2 left, 3 up
ARROW_TO_DIR = {arrow: i for i, arrow in enumerate(DIR_TO_ARROW)}
DIR_TO_WORD = ("right", "down", "left", "up")  # the objects text's ``facing`` words, by agent_dir
WORD_TO_DIR = {word: i for i, word in enumerate(DIR_TO_WORD)}


# ------------------------------------------------------------------------------------------ serialise
def state_to_text(state: Any, text: str = "grid") -> str:
    """Serialise a MiniGrid env (wrapped or not) or a :class:`MiniGridState` to a ``text`` (``grid`` or
    ``objects``, see the module docstring).

    >>> import gymnasium as gym, minigrid  # doctest: +SKIP
    >>> env = gym.make("MiniGrid-Empty-5x5-v0"); _ = env.reset(seed=0)  # doctest: +SKIP
    >>> print(state_to_text(env))  # doctest: +SKIP
    grid 5x5
    W W W W W
    W > . . W
    W . . . W
    W . . G W
    W W W W W
    carrying none
    end
    >>> print(state_to_text(env, "objects"))  # doctest: +SKIP
    room 5x5
    agent 1,1 facing right
    goal 3,3
    carrying none
    end
    """
    _check_text_kind(text)
    if not isinstance(state, MiniGridState):
        state = MiniGridState.from_env(state)
    return _grid_text(state) if text == "grid" else _objects_text(state)


def _check_text_kind(text: str) -> None:
    if text not in STATE_TEXTS:
        raise ValueError(f"unknown state text {text!r}; choose one of {', '.join(map(repr, STATE_TEXTS))}")


def _grid_tokens(state: MiniGridState) -> list[str]:
    """The grid text's cell tokens, row-major, the agent's arrow drawn over its cell (shared with diffs)."""
    width = state.width
    tokens = ["." if obj is None else obj.code for obj in state.cells]
    x, y = state.agent_pos
    under = state.cells[y * width + x]
    tokens[y * width + x] = DIR_TO_ARROW[state.agent_dir] + ("" if under is None else under.code)
    return tokens


def _grid_text(state: MiniGridState) -> str:
    width = state.width
    tokens = _grid_tokens(state)
    lines = [f"grid {width}x{state.height}"]
    lines.extend(" ".join(tokens[row * width : (row + 1) * width]) for row in range(state.height))
    lines.append(_grid_carrying_line(state))
    lines.append("end")
    return "\n".join(lines)


def _grid_carrying_line(state: MiniGridState) -> str:
    return "carrying " + ("none" if state.carrying is None else state.carrying.code)


def _objects_text(state: MiniGridState) -> str:
    width, height = state.width, state.height
    lines = [f"room {width}x{height}", _agent_line(state)]
    cells = state.cells
    last_x, last_y = width - 1, height - 1
    for y in range(height):
        edge_row = y == 0 or y == last_y
        for x, obj in enumerate(cells[y * width : (y + 1) * width]):
            if obj is None:
                if edge_row or x == 0 or x == last_x:  # an empty border cell: the exception to the walls
                    lines.append(f"empty {x},{y}")
            elif obj.words != "wall" or not (edge_row or x == 0 or x == last_x):
                lines.append(f"{obj.words} {x},{y}")
    lines.append(_carrying_line(state))
    lines.append("end")
    return "\n".join(lines)


def _agent_line(state: MiniGridState) -> str:
    x, y = state.agent_pos
    return f"agent {x},{y} facing {DIR_TO_WORD[state.agent_dir]}"


def _carrying_line(state: MiniGridState) -> str:
    return "carrying " + ("none" if state.carrying is None else state.carrying.words)


# -------------------------------------------------------------------------------------------- parse
_HEADER = re.compile(r"grid (\d{1,3})x(\d{1,3})")


def _parse_obj(code: str, pos: int, where: str) -> tuple[Obj, int]:
    """Parse one object code starting at ``code[pos]``; return it and the position after it."""

    def fail(what: str) -> StateParseError:
        return StateParseError(f"{where}: {what} in cell {code!r}")

    if pos >= len(code):
        raise fail("missing object after the agent arrow")
    letter = code[pos]
    if letter not in CODE_TO_TYPE:
        raise fail(f"unknown object letter {letter!r} (expected one of {''.join(CODE_TO_TYPE)})")
    obj_type = CODE_TO_TYPE[letter]
    pos += 1
    if pos < len(code) and code[pos] in CODE_TO_COLOR:
        color = CODE_TO_COLOR[code[pos]]
        pos += 1
    elif obj_type in DEFAULT_COLOR:
        color = DEFAULT_COLOR[obj_type]
    else:
        raise fail(f"{obj_type} needs a colour letter (one of {''.join(CODE_TO_COLOR)})")
    state = None
    if obj_type == "door":
        if pos >= len(code) or code[pos] not in CODE_TO_DOOR_STATE:
            raise fail("door needs a state letter (o open, c closed, l locked)")
        state = CODE_TO_DOOR_STATE[code[pos]]
        pos += 1
    contains = None
    if pos < len(code) and code[pos] == "[":
        if obj_type != "box":
            raise fail(f"only a box can hold an object, not a {obj_type}")
        contains, pos = _parse_obj(code, pos + 1, where)
        if pos >= len(code) or code[pos] != "]":
            raise fail("unclosed '['")
        pos += 1
    return Obj(obj_type, color, state, contains), pos


def _parse_single_obj(code: str, where: str) -> Obj:
    obj, end = _parse_obj(code, 0, where)
    if end != len(code):
        raise StateParseError(f"{where}: unexpected {code[end:]!r} after the object in cell {code!r}")
    return obj


def obj_from_code(code: str) -> Obj | None:
    """The object of a cell code (``Kr``, ``Bb[Ar]``, ``W``; ``.`` is None): the inverse of :attr:`Obj.code`."""
    return None if code == "." else _parse_single_obj(code, f"cell code {code!r}")


def _parse_cell_code(code: str, where: str) -> tuple[Obj | None, int | None]:
    """One grid-text cell token: its object (or None) and the agent's direction if it holds an arrow."""
    if code == ".":
        return None, None
    if code[0] in ARROW_TO_DIR:
        return (_parse_single_obj(code[1:], where) if len(code) > 1 else None), ARROW_TO_DIR[code[0]]
    return _parse_single_obj(code, where), None


_KIND_OF_HEADER_WORD = {"grid": "grid", "room": "objects"}


def _kind_and_lines(text: str) -> tuple[str, list[str]]:
    """Which state text this is (by its first word) and its lines; the one place both parsers start."""
    if not isinstance(text, str):
        raise StateParseError(f"expected a state text, got {type(text).__name__}")
    lines = text.strip().split("\n")
    first = lines[0].split(maxsplit=1)
    kind = _KIND_OF_HEADER_WORD.get(first[0]) if first else None
    if kind is None:
        raise StateParseError(f"line 1: expected a header like 'grid 8x8' or 'room 8x8', got {lines[0][:40]!r}")
    return kind, lines


def _parse_lines(kind: str, lines: list[str]) -> MiniGridState:
    return _parse_grid_lines(lines) if kind == "grid" else _parse_objects_lines(lines)


def state_text_kind(text: str) -> str:
    """``"grid"`` or ``"objects"``, from the text's first line (``grid WxH`` / ``room WxH``); only the header
    is looked at, so a malformed rest still raises in :func:`text_to_state`."""
    return _kind_and_lines(text)[0]


def text_to_state(text: str) -> MiniGridState:
    """Parse :func:`state_to_text`'s output (either text) back to a :class:`MiniGridState`; strict.

    Raises :class:`StateParseError` (saying which line/cell and what is wrong) on anything that is not a
    complete, well-formed state: truncation, unknown codes or words, wrong row/column counts, zero or two
    agents, positions outside the room, objects-text cells listed twice or out of row-major order.
    """
    kind, lines = _kind_and_lines(text)
    return _parse_lines(kind, lines)


def convert_state_text(text: str, to: str) -> str:
    """The same state in the other (or the same) text: ``convert_state_text(grid_text, "objects")``."""
    _check_text_kind(to)
    return state_to_text(text_to_state(text), to)


def _parse_grid_lines(lines: list[str]) -> MiniGridState:
    header = _HEADER.fullmatch(lines[0].strip())
    if header is None:
        raise StateParseError(f"line 1: expected a header like 'grid 8x8', got {lines[0][:40]!r}")
    width, height = int(header.group(1)), int(header.group(2))
    if width < 1 or height < 1:
        raise StateParseError(f"line 1: grid size must be positive, got {width}x{height}")
    if len(lines) < height + 3:
        raise StateParseError(
            f"truncated: a {width}x{height} grid needs {height + 3} lines (header, {height} rows, carrying, end), "
            f"got {len(lines)}"
        )
    cells: list[Obj | None] = []
    agents: list[tuple[int, int, int]] = []
    for y in range(height):
        line_no = y + 2
        row = lines[line_no - 1].split()
        if len(row) != width:
            raise StateParseError(f"line {line_no}: grid row {y} has {len(row)} cells, expected {width}")
        for x, code in enumerate(row):
            if code == ".":
                cells.append(None)
                continue
            obj, direction = _parse_cell_code(code, f"line {line_no} (row {y}), cell {x}")
            cells.append(obj)
            if direction is not None:
                agents.append((x, y, direction))
    if not agents:
        raise StateParseError("no agent in the grid (expected one of > v < ^)")
    if len(agents) > 1:
        places = ", ".join(f"({x},{y})" for x, y, _ in agents)
        raise StateParseError(f"{len(agents)} agents in the grid at {places}; expected exactly one")
    carry_line_no = height + 2
    carry = lines[carry_line_no - 1].strip()
    if not carry.startswith("carrying "):
        raise StateParseError(f"line {carry_line_no}: expected 'carrying <object|none>', got {carry[:40]!r}")
    carry_code = carry[len("carrying ") :].strip()
    carrying = None if carry_code == "none" else _parse_single_obj(carry_code, f"line {carry_line_no} (carrying)")
    end_line_no = height + 3
    if lines[end_line_no - 1].strip() != "end":
        raise StateParseError(f"line {end_line_no}: expected 'end', got {lines[end_line_no - 1][:40]!r}")
    if len(lines) > end_line_no:
        raise StateParseError(f"line {end_line_no + 1}: unexpected text after 'end': {lines[end_line_no][:40]!r}")
    x, y, direction = agents[0]
    return MiniGridState(width, height, tuple(cells), (x, y), direction, carrying)


# ------------------------------------------------------------------------ parse the objects text
_ROOM_SIZE = re.compile(r"([1-9][0-9]{0,2})x([1-9][0-9]{0,2})")
_PLAIN_WALL = "wall"  # the words of a default-colour wall, the border cells the objects text leaves out
_KNOWN_WORDS = frozenset([*TYPE_TO_CODE, *COLOR_TO_CODE, *DOOR_STATE_TO_CODE, "holding", "empty"])
_PHRASES: dict[str, Obj] = {}  # object words -> object: parsing a phrase is a dict lookup after the first time


def _parse_objects_lines(lines: list[str]) -> MiniGridState:
    width, height = _parse_room_header(lines[0])
    if len(lines) < 2:
        raise StateParseError("truncated: no 'agent X,Y facing ...' line after the header")
    agent_pos, agent_dir = _parse_agent_words(lines[1].split(), "line 2", width, height)
    cells = _border_walls(width, height)
    listed = bytearray(width * height)
    last = -1
    line_count = len(lines)
    line_no = 3
    while line_no <= line_count:
        words = lines[line_no - 1].split()
        if words and words[0] == "carrying":
            break
        if words == ["end"]:
            raise StateParseError(f"line {line_no}: expected a 'carrying' line before 'end'")
        where = f"line {line_no}"
        index, obj = _parse_cell_words(words, where, width, height)
        x, y = index % width, index // width
        if listed[index]:
            raise StateParseError(f"{where}: cell {x},{y} is listed twice")
        if index < last:
            raise StateParseError(
                f"{where}: cell {x},{y} is out of order (cells are listed row by row, y then x; "
                f"{last % width},{last // width} came before it)"
            )
        on_border = x == 0 or y == 0 or x == width - 1 or y == height - 1
        if obj is None and not on_border:
            raise StateParseError(f"{where}: the empty interior cell {x},{y} must be left out")
        if on_border and obj is not None and obj.words == _PLAIN_WALL:
            raise StateParseError(f"{where}: the plain border wall at {x},{y} must be left out")
        cells[index] = obj
        listed[index] = 1
        last = index
        line_no += 1
    else:
        raise StateParseError(f"truncated: no 'carrying' line after line {line_count}")
    carrying = _parse_carrying_words(words, f"line {line_no}")
    if line_no == line_count:
        raise StateParseError(f"truncated: no 'end' line after line {line_no}")
    if lines[line_no].strip() != "end":
        raise StateParseError(f"line {line_no + 1}: expected 'end', got {lines[line_no][:40]!r}")
    if line_count > line_no + 1:
        raise StateParseError(f"line {line_no + 2}: unexpected text after 'end': {lines[line_no + 1][:40]!r}")
    return MiniGridState(width, height, tuple(cells), agent_pos, agent_dir, carrying)


def _parse_room_header(line: str) -> tuple[int, int]:
    words = line.split()
    size = _ROOM_SIZE.fullmatch(words[1]) if len(words) == 2 and words[0] == "room" else None
    if size is None:
        raise StateParseError(f"line 1: expected a header like 'room 8x8', got {line[:40]!r}")
    return int(size.group(1)), int(size.group(2))


def _border_walls(width: int, height: int) -> list[Obj | None]:
    """Empty cells inside a ring of plain walls: what the objects text means before its cell lines."""
    wall = intern_obj("wall", DEFAULT_COLOR["wall"])
    cells: list[Obj | None] = [None] * (width * height)
    cells[:width] = [wall] * width
    cells[(height - 1) * width :] = [wall] * width
    for y in range(1, height - 1):
        cells[y * width] = cells[y * width + width - 1] = wall
    return cells


def _is_number(text: str) -> bool:
    """A plain decimal number as the texts write it: ASCII digits, no leading zero, at most 3 digits."""
    return 0 < len(text) <= 3 and text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1)


def _parse_position(text: str, where: str, width: int, height: int) -> tuple[int, int]:
    x_text, comma, y_text = text.partition(",")
    if not (comma and _is_number(x_text) and _is_number(y_text)):
        raise StateParseError(f"{where}: bad position {text[:20]!r} (expected X,Y like 3,2)")
    x, y = int(x_text), int(y_text)
    if x >= width or y >= height:
        raise StateParseError(f"{where}: position {x},{y} is outside the {width}x{height} room")
    return x, y


def _parse_agent_words(words: list[str], where: str, width: int, height: int) -> tuple[tuple[int, int], int]:
    if len(words) != 4 or words[0] != "agent" or words[2] != "facing":
        raise StateParseError(
            f"{where}: expected 'agent X,Y facing right|down|left|up', got {' '.join(words)[:40]!r}"
        )
    pos = _parse_position(words[1], where, width, height)
    direction = WORD_TO_DIR.get(words[3])
    if direction is None:
        raise StateParseError(f"{where}: unknown direction {words[3][:20]!r} (expected right, down, left or up)")
    return pos, direction


def _parse_carrying_words(words: list[str], where: str) -> Obj | None:
    if len(words) < 2 or words[0] != "carrying":
        raise StateParseError(f"{where}: expected 'carrying <object|none>', got {' '.join(words)[:40]!r}")
    return None if len(words) == 2 and words[1] == "none" else _parse_words(words[1:], where)


def _parse_cell_words(words: list[str], where: str, width: int, height: int) -> tuple[int, Obj | None]:
    """A cell line ``<object> X,Y`` or ``empty X,Y`` (of the objects text or its diffs): (cell index, object)."""
    if len(words) < 2:
        raise StateParseError(f"{where}: expected '<object> X,Y' or 'empty X,Y', got {' '.join(words)[:40]!r}")
    x, y = _parse_position(words[-1], where, width, height)
    obj = None if len(words) == 2 and words[0] == "empty" else _parse_words(words[:-1], where)
    return y * width + x, obj


def _parse_words(words: Sequence[str], where: str) -> Obj:
    """Object words (``locked yellow door``, ``blue box holding red key``) -> the (interned) object."""
    phrase = " ".join(words)
    obj = _PHRASES.get(phrase)
    if obj is None:
        obj = _PHRASES.setdefault(phrase, _parse_phrase(words, phrase, where))
    return obj


def _parse_phrase(words: Sequence[str], phrase: str, where: str) -> Obj:
    """The slow path of :func:`_parse_words`: ``[state] [colour] type`` links joined by ``holding``, read as
    a loop (not recursion, so no nesting depth can overflow the stack), built innermost first."""
    chain: list[tuple[str, str, str | None]] = []
    i, count = 0, len(words)
    while True:
        state = color = None
        if i < count and words[i] in DOOR_STATE_TO_CODE:
            state, i = words[i], i + 1
        if i < count and words[i] in COLOR_TO_CODE:
            color, i = words[i], i + 1
        if i == count:
            raise StateParseError(f"{where}: {phrase[:40]!r} lacks an object type ({', '.join(TYPE_TO_CODE)})")
        obj_type, i = words[i], i + 1
        if obj_type not in TYPE_TO_CODE:
            raise _word_error(obj_type, phrase, where)
        chain.append((obj_type, _check_color(obj_type, color, phrase, where), _check_state(obj_type, state, where)))
        if i == count:
            break
        if words[i] != "holding":
            raise _word_error(words[i], phrase, where)
        if obj_type != "box":
            raise StateParseError(f"{where}: only a box can hold an object, not a {obj_type}")
        i += 1
        if i == count:
            raise StateParseError(f"{where}: 'holding' needs an object after it in {phrase[:40]!r}")
    obj = None
    for obj_type, color, state in reversed(chain):
        obj = intern_obj(obj_type, color, state, obj)
    return obj


def _check_color(obj_type: str, color: str | None, phrase: str, where: str) -> str:
    """The object's colour; the default colour must be left out (one text per state), others written."""
    default = DEFAULT_COLOR.get(obj_type)
    if color is None:
        if default is None:
            raise StateParseError(f"{where}: a {obj_type} needs a colour ({', '.join(COLOR_TO_CODE)})")
        return default
    if color == default:
        raise StateParseError(f"{where}: write {obj_type!r}, not '{color} {obj_type}' ({color} is its default colour)")
    return color


def _check_state(obj_type: str, state: str | None, where: str) -> str | None:
    if obj_type == "door" and state is None:
        raise StateParseError(f"{where}: a door needs its state first (open, closed or locked)")
    if obj_type != "door" and state is not None:
        raise StateParseError(f"{where}: only a door is {state}, not a {obj_type}")
    return state


def _word_error(word: str, phrase: str, where: str) -> StateParseError:
    if word in _KNOWN_WORDS:
        return StateParseError(
            f"{where}: {word!r} is out of place in {phrase[:40]!r} (write [state] [colour] type [holding object])"
        )
    return StateParseError(f"{where}: unknown word {word[:20]!r} in {phrase[:40]!r}")


# -------------------------------------------------------------------------------------------- front cell
DIR_TO_STEP = ((1, 0), (0, 1), (-1, 0), (0, -1))  # MiniGrid's DIR_TO_VEC, by agent_dir


def front_cell_line(state_text: str) -> str:
    r"""``front X,Y <cell>``: the cell the agent faces, in the words (objects text) or code (grid text) of
    ``state_text``'s kind; ``empty`` / ``.`` for an empty cell, ``outside`` past the room's edge.

    Why: pick up, drop, toggle and switch act on this cell, and a language model reading the objects list must
    otherwise add the facing step to the agent's position and look the result up among the objects (#31). The
    line is derived from the state, so a prompt that shows it says nothing the state does not.

    >>> front_cell_line("room 4x4\nagent 1,2 facing up\nred key 1,1\ncarrying none\nend")
    'front 1,1 red key'
    """
    kind, lines = _kind_and_lines(state_text)
    state = _parse_lines(kind, lines)
    (x, y), (dx, dy) = state.agent_pos, DIR_TO_STEP[state.agent_dir]
    x, y = x + dx, y + dy
    if not (0 <= x < state.width and 0 <= y < state.height):
        return f"front {x},{y} outside"
    obj = state.cell(x, y)
    if kind == "grid":
        return f"front {x},{y} {'.' if obj is None else obj.code}"
    return f"front {x},{y} {'empty' if obj is None else obj.words}"


# -------------------------------------------------------------------------------------------- diffs
def state_diff(state_text: str, next_text: str) -> str:
    """The canonical change from ``state_text`` to ``next_text`` (either text each), written in the kind of
    ``state_text``; ``"no change"`` when they are the same state. See the module docstring for the formats.

    Both texts must parse and have the same room size, else :class:`StateParseError`.
    """
    kind, lines = _kind_and_lines(state_text)
    return _diff_states(_parse_lines(kind, lines), text_to_state(next_text), kind)


def apply_diff(state_text: str, diff: str) -> str:
    """The whole next-state text (same kind as ``state_text``) after a diff of that kind; strict.

    ``apply_diff(s, state_diff(s, s2)) == s2`` for canonical texts of one kind. A malformed diff (unknown
    word, bad position, a key given twice, a position outside the room) or one that leaves zero or two agents
    in the grid raises a one-line :class:`StateParseError`.
    """
    kind, lines = _kind_and_lines(state_text)
    return state_to_text(_apply_diff_to_state(_parse_lines(kind, lines), diff, kind), kind)


def _diff_states(state: MiniGridState, other: MiniGridState, kind: str) -> str:
    """The diff text (of kind ``kind``) that turns ``state`` into ``other``; see :func:`state_diff`."""
    if (state.width, state.height) != (other.width, other.height):
        raise StateParseError(
            f"the states have different room sizes, {state.width}x{state.height} and {other.width}x{other.height}"
        )
    if state == other:
        return NO_CHANGE
    return _grid_diff(state, other) if kind == "grid" else _objects_diff(state, other)


def _apply_diff_to_state(state: MiniGridState, diff: str, kind: str) -> MiniGridState:
    """The state after ``diff`` (a diff text of kind ``kind``); strict, see :func:`apply_diff`."""
    if not isinstance(diff, str):
        raise StateParseError(f"expected a diff text, got {type(diff).__name__}")
    lines = diff.strip().split("\n")
    if lines == [NO_CHANGE]:
        return state
    if lines == [""]:
        raise StateParseError(f"empty diff (write {NO_CHANGE!r} when nothing changes)")
    for line_no, line in enumerate(lines, 1):
        if line.strip() == NO_CHANGE:
            raise StateParseError(f"diff line {line_no}: {NO_CHANGE!r} must be the whole diff")
    return _apply_grid_diff(state, lines) if kind == "grid" else _apply_objects_diff(state, lines)


def _objects_diff(state: MiniGridState, other: MiniGridState) -> str:
    lines = []
    if (state.agent_pos, state.agent_dir) != (other.agent_pos, other.agent_dir):
        lines.append(_agent_line(other))
    width = state.width
    for index, (old, new) in enumerate(zip(state.cells, other.cells)):
        if old is not new and old != new:
            pos = f"{index % width},{index // width}"
            lines.append(f"empty {pos}" if new is None else f"{new.words} {pos}")
    if state.carrying != other.carrying:
        lines.append(_carrying_line(other))
    return "\n".join(lines)


def _grid_diff(state: MiniGridState, other: MiniGridState) -> str:
    width = state.width
    lines = [
        f"{index % width},{index // width} {new}"
        for index, (old, new) in enumerate(zip(_grid_tokens(state), _grid_tokens(other)))
        if old != new
    ]
    if state.carrying != other.carrying:
        lines.append(_grid_carrying_line(other))
    return "\n".join(lines)


def _check_diff_line(key: Any, seen: set, where: str) -> None:
    """Each key (agent, carrying, one cell) at most once."""
    if key in seen:
        what = f"cell {key[0]},{key[1]} is changed twice" if isinstance(key, tuple) else f"a second {key!r} line"
        raise StateParseError(f"{where}: {what}")
    seen.add(key)


def _apply_objects_diff(state: MiniGridState, lines: list[str]) -> MiniGridState:
    width, height = state.width, state.height
    cells = list(state.cells)
    pos, direction, carrying = state.agent_pos, state.agent_dir, state.carrying
    seen: set = set()
    for line_no, line in enumerate(lines, 1):
        where = f"diff line {line_no}"
        words = line.split()
        key: Any = words[0] if words else None
        if key == "agent":
            pos, direction = _parse_agent_words(words, where, width, height)
        elif key == "carrying":
            carrying = _parse_carrying_words(words, where)
        else:
            index, obj = _parse_cell_words(words, where, width, height)
            cells[index] = obj
            key = (index % width, index // width)
        _check_diff_line(key, seen, where)
    return MiniGridState(width, height, tuple(cells), pos, direction, carrying)


def _apply_grid_diff(state: MiniGridState, lines: list[str]) -> MiniGridState:
    width, height = state.width, state.height
    cells = list(state.cells)
    arrows = {state.agent_pos: state.agent_dir}  # cell -> direction of each arrow in the grid
    carrying = state.carrying
    seen: set = set()
    for line_no, line in enumerate(lines, 1):
        where = f"diff line {line_no}"
        words = line.split()
        key: Any = "carrying"
        if len(words) == 2 and words[0] == "carrying":
            carrying = None if words[1] == "none" else _parse_single_obj(words[1], f"{where} (carrying)")
        elif len(words) == 2:
            key = _parse_position(words[0], where, width, height)
            obj, arrow = _parse_cell_code(words[1], f"{where}, cell {key[0]},{key[1]}")
            cells[key[1] * width + key[0]] = obj
            if arrow is None:
                arrows.pop(key, None)
            else:
                arrows[key] = arrow
        else:
            raise StateParseError(f"{where}: expected 'X,Y CODE' or 'carrying CODE', got {line.strip()[:40]!r}")
        _check_diff_line(key, seen, where)
    if len(arrows) != 1:
        if not arrows:
            raise StateParseError("no agent in the grid after the diff (expected one of > v < ^)")
        places = ", ".join(f"({x},{y})" for x, y in sorted(arrows, key=lambda xy: (xy[1], xy[0])))
        raise StateParseError(f"{len(arrows)} agents in the grid at {places} after the diff; expected exactly one")
    ((pos, direction),) = arrows.items()
    return MiniGridState(width, height, tuple(cells), pos, direction, carrying)
