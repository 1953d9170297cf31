"""One record per environment family: everything the rest of swirl needs to know about it, in one place.

A *domain* is a family of environments that share a state text, an action vocabulary and a way to re-simulate a
recorded transition (MiniGrid and swirl's WAV rooms; ManiSkill3 tasks; gymnasium's FrozenLake). Code outside this
module never branches on a domain's name: it looks the domain up (:func:`get_domain`) and reads what it needs from
the record, e.g. ``get_domain(config.domain).headline_metrics`` or ``domain.codec.apply_diff(state, diff)``.
``tests/test_structure.py`` fails on a new comparison with a domain name anywhere else.

Adding a family = one module with its codec (``state_to_text``, ``text_to_state``, ``state_diff``,
``apply_diff``) and env helpers, a dataset builder in ``swirl.builders`` with ``build_from_config``, and one
:class:`Domain` in :data:`DOMAINS` below (docs/layout.md walks through it with FrozenLake, the worked example:
:mod:`swirl.envs.frozenlake`, :mod:`swirl.builders.frozenlake_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from swirl.envs import frozenlake, identifiability, maniskill_env, maniskill_text, minigrid_env, minigrid_text


@dataclass(frozen=True)
class Domain:
    """An environment family, as the data builders, prompts, evaluation, tables and model cards see it."""

    name: str
    codec: ModuleType  # state_to_text, text_to_state, state_diff, apply_diff (lossless: apply_diff(s, diff(s, s')) == s')
    make_env: Callable[..., Any]  # env id -> env (the family's own keyword options)
    resimulate: Callable[..., Any]  # replays a row's seed and action prefix (the family's own signature and result)
    continuous: bool  # states and actions are vectors of numbers: MSE metrics instead of exact match and accuracies
    action_texts: tuple[str, ...]  # every action text the family's envs use: the IDM metrics' labels (none: vectors)
    builder: str  # "module:function" building the DatasetDict a config's env_* fields describe (swirl.builders sits
    #               above this layer, so it is named here and imported when a dataset is built)
    image_fields: tuple[str, ...]  # prompt fields that can be shown as images (a state the renderer can draw)
    headline_metrics: tuple[str, ...]  # the columns of every table of a run
    metric_notes: str  # the model card's reading of the headline metrics
    marker_column: str | None = None  # a dataset column only this family's rows have (None: the default family)
    state_texts: tuple[str, ...] = ()  # lossless alternative state texts a dataset can be converted between
    convert_state_text: Callable[[str, str], str] | None = None  # (text, to) -> the same state in text ``to``
    state_text_kind: Callable[[str], str] | None = None  # text -> which of ``state_texts`` it is
    equivalent_actions_for_rows: Callable[[Any], list[list[int]]] | None = None  # rows -> each row's s'-reproducing actions
    replays_actions: bool = False  # open-loop rollouts can replay a test episode's actions in the real env
    state_fields: Callable[[str], tuple[Any, list]] | None = None  # discrete families: text -> (shape, the fields
    #               the FWM metrics compare one by one; StateParseError when it does not parse); None: MiniGrid's
    front_cell: Callable[[str], str] | None = None  # text -> the line naming the cell the agent faces, which prompts
    #               can show after the state (``state_front_cell``); None: the family has no such cell


MINIGRID = Domain(
    name="minigrid",
    codec=minigrid_text,
    make_env=minigrid_env.make_env,
    resimulate=minigrid_env.resimulate,
    continuous=False,
    action_texts=minigrid_env.ACTION_TEXTS + ("switch",),  # the WAV rooms' seventh action
    builder="swirl.builders.minigrid_dataset:build_from_config",
    image_fields=("state", "next_state"),  # the renderer draws any parsed state, a generated one included
    headline_metrics=("fwm_exact_match", "fwm_changed_accuracy", "fwm_field_accuracy", "fwm_parse_rate",
                      "idm_accuracy", "idm_equivalent_accuracy"),
    metric_notes=("`fwm_changed_accuracy` counts only the grid cells / agent fields that the action changed "
                  "(copying the input\nscores 0 there); `fwm_field_accuracy` counts all of them."),
    state_texts=minigrid_text.STATE_TEXTS,
    convert_state_text=minigrid_text.convert_state_text,
    state_text_kind=minigrid_text.state_text_kind,
    equivalent_actions_for_rows=identifiability.equivalent_actions_for_rows,
    replays_actions=True,
    front_cell=minigrid_text.front_cell_line,
)

MANISKILL = Domain(
    name="maniskill",
    codec=maniskill_text,
    make_env=maniskill_env.make_env,
    resimulate=maniskill_env.resimulate,
    continuous=True,
    action_texts=(),
    builder="swirl.builders.maniskill_dataset:build_from_config",
    image_fields=("state",),  # a state text cannot be drawn: a generated next state stays text
    headline_metrics=("fwm_parse_rate", "fwm_exact_match", "fwm_mse", "fwm_copy_mse", "idm_parse_rate",
                      "idm_action_mse", "idm_zero_action_mse"),
    metric_notes=("MSEs are over the parsed predictions (read them with the parse rates); `fwm_copy_mse` is "
                  "the error of\npredicting s' = s and `idm_zero_action_mse` that of answering a zero action."),
    marker_column="env_state",  # the simulator state each row carries for re-simulation
)

FROZENLAKE = Domain(
    name="frozenlake",
    codec=frozenlake,
    make_env=frozenlake.make_env,
    resimulate=frozenlake.resimulate,
    continuous=False,
    action_texts=frozenlake.ACTION_TEXTS,
    builder="swirl.builders.frozenlake_dataset:build_from_config",
    image_fields=(),  # no renderer: text states only
    headline_metrics=("fwm_exact_match", "fwm_changed_accuracy", "fwm_field_accuracy", "fwm_parse_rate",
                      "idm_accuracy"),  # MiniGrid's, less the equivalent accuracy (no equivalent actions yet)
    metric_notes=("`fwm_changed_accuracy` counts only the agent's cell on the steps that moved it (copying the "
                  "input scores 0\nthere); `fwm_field_accuracy` counts every map cell and the agent's cell."),
    marker_column=frozenlake.MARKER_COLUMN,  # the map letter each step ended on
    state_fields=frozenlake.state_fields,
)

DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (MINIGRID, MANISKILL, FROZENLAKE)}
DEFAULT_DOMAIN = MINIGRID.name  # rows without any family's marker column, and calls that name no domain
# every other family must name a marker column, or its datasets would silently read as the default's
assert [name for name, domain in DOMAINS.items() if domain.marker_column is None] == [DEFAULT_DOMAIN]


def get_domain(name: str) -> Domain:
    """The registered domain called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; expected one of {', '.join(DOMAINS)}") from None


def domain_of_columns(columns: Any) -> Domain:
    """The domain of a dataset split with these column names: the family whose marker column it has, else the
    default (MiniGrid rows carry nothing a hand-made split would lack)."""
    for domain in DOMAINS.values():
        if domain.marker_column is not None and domain.marker_column in columns:
            return domain
    return DOMAINS[DEFAULT_DOMAIN]
