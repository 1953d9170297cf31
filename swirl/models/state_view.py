"""How states appear in prompts and answers (:class:`StateView`): as text, as images, or an image followed by its
text; and whether a next state is written in full or as its diff from the state. Text-only code needs it as much
as the VLM code does, so it lives here, not in :mod:`swirl.models.vision`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from swirl.envs.domain import DEFAULT_DOMAIN, get_domain
from swirl.envs.state_format import check_state_format, next_state_answer, next_state_from_answer, reconstruct
from swirl.errors import StateParseError

STATE_MODALITIES = ("text", "image", "image+text")
IMAGE_COLUMN = {"state": "image", "next_state": "next_image"}  # dataset columns holding each state's image


@dataclass(frozen=True)
class StateView:
    """How states appear in prompts and answers: as text, as images, or as an image followed by its text; and
    whether a next state is written in ``full`` or as its ``diff`` from the state (``state_format``).

    ``image_fields`` are the prompt fields (``state``, ``next_state``) that have an image; the others stay
    text whatever the modality. Images fill a prompt's image placeholders in the template's order. With
    ``state_format: diff`` the text of the ``next_state`` field (in a prompt or as an answer) is
    ``diff(state, next_state)`` (:mod:`swirl.envs.state_format`); its image, if shown, is still s'.
    With ``front_cell`` the ``state`` field's text is followed by the line naming the cell the agent faces
    (the domain's ``front_cell``, e.g. MiniGrid's ``front 3,1 red key``); answers are unchanged.
    """

    modality: str = "text"
    image_fields: tuple[str, ...] = get_domain(DEFAULT_DOMAIN).image_fields  # which states a domain can draw
    state_format: str = "full"
    domain: str = DEFAULT_DOMAIN
    front_cell: bool = False

    def __post_init__(self) -> None:
        if self.modality not in STATE_MODALITIES:
            raise ValueError(f"state_modality must be one of {', '.join(STATE_MODALITIES)}, got {self.modality!r}")
        check_state_format(self.state_format)
        if self.front_cell and self.modality != "text":
            raise ValueError(f"state_front_cell needs state_modality text, got {self.modality!r}")
        if self.front_cell and get_domain(self.domain).front_cell is None:
            raise ValueError(f"state_front_cell: {self.domain} states have no cell the agent faces (MiniGrid's do)")

    @property
    def is_diff(self) -> bool:
        return self.state_format == "diff"

    def answer(self, state: str, next_state: str) -> str:
        """The text standing for ``next_state`` after ``state``: itself, or the diff."""
        return next_state_answer(state, next_state, self.state_format, self.domain)

    def next_state(self, state: str, answer: str) -> str:
        """The full next state an answer stands for (``StateParseError`` when it is not a valid one)."""
        return next_state_from_answer(state, answer, self.state_format, self.domain)

    def reconstruct(self, state: str, answer: str) -> str | None:
        """:meth:`next_state`, or None for an answer that is not a valid next state."""
        return reconstruct(state, answer, self.state_format, self.domain)

    def shown_state(self, state: str) -> str:
        """The text a prompt's ``state`` field shows: the state, then its front-cell line with ``front_cell``; a
        state that does not parse (a rollout's broken prediction) has no faced cell and is shown as it is."""
        if not self.front_cell:
            return state
        try:
            return f"{state}\n{get_domain(self.domain).front_cell(state)}"
        except StateParseError:
            return state

    def prediction(self, state: str, answer: str) -> str:
        """A generated answer as the full next state metrics compare: with ``diff``, the diff applied to ``state``,
        or an empty text (which never parses) when it does not apply -- a full state written instead of a diff
        is not a diff; with ``full``, the answer as written (parsed or not by the metrics)."""
        if not self.is_diff:
            return answer
        return self.reconstruct(state, answer) or ""

    @property
    def has_images(self) -> bool:
        return self.modality != "text"

    def shows_image(self, field: str) -> bool:
        return self.has_images and field in self.image_fields

    def shows_text(self, field: str) -> bool:
        return self.modality != "image" or field not in self.image_fields

    def images(self, fields: Sequence[str], row: dict) -> list[Any]:
        """The images of ``row`` (a transition with ``image`` / ``next_image``) for a prompt over ``fields``."""
        return [row[IMAGE_COLUMN[name]] for name in fields if self.shows_image(name)]


def state_view(modality: str, domain: str, state_format: str = "full", front_cell: bool = False) -> StateView:
    """The view of ``domain``'s states: which of them can be images is the domain's (MiniGrid draws any parsed state,
    a generated one included; a ManiSkill state text cannot be drawn, so its next state stays text)."""
    return StateView(modality, get_domain(domain).image_fields, state_format, domain, front_cell)


TEXT_VIEW = StateView()
