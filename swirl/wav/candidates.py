"""The pool WAV chooses from and what choosing costs: candidate (state, action) pairs with what re-simulating them
needs, and :class:`Simulator`, which executes a candidate in the real MiniGrid env (one label)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swirl.envs.minigrid import action_texts, make_env, resimulate, state_text_kind, state_to_text
from swirl.errors import SwirlError


@dataclass(frozen=True)
class Candidate:
    """One (state, action) of the pool, with what re-simulating it needs."""

    env_id: str
    seed: int
    episode: int
    step: int
    action_prefix: tuple[int, ...]
    state: str
    action: str
    action_id: int

    @property
    def key(self) -> str:
        return f"{self.env_id}|{self.seed}|{self.step}|{self.action_id}"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "action_prefix": list(self.action_prefix)}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Candidate:
        """From :meth:`to_json`'s dict; other keys (e.g. a selection's ``score``) are ignored."""
        return cls(**{name: payload[name] for name in cls.__dataclass_fields__}
                   | {"action_prefix": tuple(payload["action_prefix"])})


def distinct_states(rows: Any, limit: int | None = None) -> list[int]:
    """Indices of the first row of each distinct (env, state) of ``rows``, in order, at most ``limit``: a state
    reached twice (turn left, turn right) is one state to act from, not two."""
    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(zip(rows["env_id"], rows["state"])):
        first.setdefault(key, i)
    return list(first.values())[:limit]


def pool_candidates(rows: Any) -> list[Candidate]:
    """Every action of the env at every pool state (rows of a split with re-simulation columns)."""
    candidates = []
    for row in rows:
        for action_id, action in enumerate(action_texts(row["env_id"])):
            candidates.append(Candidate(row["env_id"], int(row["seed"]), int(row["episode"]), int(row["step"]),
                                        tuple(int(a) for a in row["action_prefix"]), row["state"], action, action_id))
    return candidates


@dataclass
class Simulator:
    """Executes candidates in the real MiniGrid env through the dataset's re-simulation info. It remembers each
    candidate's transition (the envs are deterministic given the episode's seed), so the oracle of every method
    and round of a run simulates a candidate once."""

    envs: dict[str, Any] = field(default_factory=dict)
    transitions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __call__(self, candidate: Candidate) -> dict[str, Any]:
        """The labelled transition of ``candidate`` (a row of the ``labelled`` schema)."""
        key = (candidate.key, candidate.state)
        if key not in self.transitions:
            self.transitions[key] = self.simulate(candidate)
        return dict(self.transitions[key])

    def simulate(self, candidate: Candidate) -> dict[str, Any]:
        env = self.envs.get(candidate.env_id)
        if env is None:
            env = self.envs[candidate.env_id] = make_env(candidate.env_id)
        resimulate(candidate.env_id, candidate.seed, candidate.action_prefix, env=env)
        text = state_text_kind(candidate.state)  # the pool's state text (grid or objects)
        if state_to_text(env, text) != candidate.state:
            raise SwirlError(f"{candidate.env_id} seed {candidate.seed} step {candidate.step}: re-simulation does not "
                             f"reproduce the pool state (dataset built with another minigrid version?)")
        env.step(candidate.action_id)
        return {"state": candidate.state, "action": candidate.action, "next_state": state_to_text(env, text),
                "env_id": candidate.env_id, "seed": candidate.seed, "episode": candidate.episode,
                "step": candidate.step, "action_prefix": list(candidate.action_prefix),
                "action_id": candidate.action_id}
