"""WAV's sparse inverse dynamics model ``a = h(M * s, M * s')`` on the codec's structured MiniGrid state.

Why sparse: an action leaves its imprint on a few state features (the agent's pose, the cell in front of
it, what it carries), while the rest of the grid is irrelevant or noisy (WAV's noisy floor tiles). An IDM
that may only look at a small, learned subset of features stays accurate with few labels, which is what
makes it a reliable verifier when the forward model is not.

Features. A state becomes ``G`` named categorical features, each one token:

* ``cell(x,y)``: the object code of every grid cell (``W``, ``Kr``, ``Bb[Ar]``, ``.`` for empty);
* ``ego(f,r)``: the same codes in a window around the agent, in the agent's frame (``f`` steps ahead,
  ``r`` steps to its right): ``ego(1,0)`` is the cell in front of the agent;
* ``agent_x``, ``agent_y``, ``agent_dir`` and ``carrying``.

Model. Each feature of ``s`` and of ``s'`` is embedded (token embedding + feature embedding), plus a learned
"changed" vector where the two differ (the action's imprint is what changed; with a few hundred labels an
MLP would not learn equality of embeddings on its own); feature ``g``'s three embeddings are multiplied by a binary gate ``M_g`` (one gate per feature, shared by ``s`` and ``s'``),
and an MLP maps the concatenation to action logits. The gates are learned jointly with the classifier as
stochastic binary gates (Gumbel-sigmoid samples, straight-through gradients) under an L1 penalty on their
open probabilities, ``l1_weight * sum_g sigmoid(logit_g) / sqrt(G)``; at inference a gate is open when its
probability exceeds 0.5. The ``sqrt(G)`` keeps one penalty weight (0.1, the paper's) meaningful for grids
of any size: a plain mean makes each feature nearly free on big grids, a plain sum closes every gate.
Sampling the gates (rather than thresholding them) keeps closed features trained, so a useful feature that
was closed early can reopen.

Saved as ``model.safetensors`` + ``config.json`` (vocabulary, feature names, action labels): no pickle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from swirl.envs.minigrid_state import MiniGridState
from swirl.envs.minigrid_text import text_to_state
from swirl.errors import StateParseError
from swirl.paths import load_torch_model, save_torch_model

EMPTY, PAD, UNKNOWN = ".", "<pad>", "<unk>"
AGENT_FEATURES = ("agent_x", "agent_y", "agent_dir", "carrying")
MOTION_FEATURES = ("turn", "step", "front", "carrying_change")  # features of the pair (s, s'), not of one state


def ego_offsets(radius: int) -> list[tuple[int, int]]:
    """(ahead, right) offsets of the egocentric window, ahead from -radius to +radius."""
    return [(ahead, right) for ahead in range(-radius, radius + 1) for right in range(-radius, radius + 1)]


def feature_names(width: int, height: int, ego_radius: int, motion: bool = False) -> list[str]:
    cells = [f"cell({x},{y})" for y in range(height) for x in range(width)]
    ego = [f"ego({ahead},{right})" for ahead, right in ego_offsets(ego_radius)]
    return cells + ego + list(AGENT_FEATURES) + (list(MOTION_FEATURES) if motion else [])


def _code(obj) -> str:
    return EMPTY if obj is None else obj.code


def state_features(state: MiniGridState, width: int, height: int, ego_radius: int) -> list[str]:
    """The feature tokens of a state, in :func:`feature_names` order (cells outside the grid are ``<pad>``)."""
    cells = [_code(state.cell(x, y)) if x < state.width and y < state.height else PAD
             for y in range(height) for x in range(width)]
    # agent_dir 0 faces +x; "right" of a heading (dx, dy) is (-dy, dx) in MiniGrid's y-down frame
    dx, dy = ((1, 0), (0, 1), (-1, 0), (0, -1))[state.agent_dir]
    ax, ay = state.agent_pos
    ego = []
    for ahead, right in ego_offsets(ego_radius):
        x, y = ax + ahead * dx - right * dy, ay + ahead * dy + right * dx
        ego.append(_code(state.cell(x, y)) if 0 <= x < state.width and 0 <= y < state.height else PAD)
    agent = [f"x={ax}", f"y={ay}", f"dir={state.agent_dir}", _code(state.carrying)]
    return cells + ego + agent


def object_change(before, after) -> str:
    """How one object slot changed: same, appeared, vanished, altered (same type: colour, state, contents) or
    replaced (another type)."""
    if before == after:
        return "same"
    if before is None or after is None:
        return "appeared" if before is None else "vanished"
    return "altered" if before.type == after.type else "replaced"


def motion_features(state: MiniGridState, next_state: MiniGridState) -> list[str]:
    """What the step did, in s's frame: ``turn=<quarter turns clockwise>``, ``step=<ahead>,<right>``, and how the
    cell in front of the agent and the carried object changed (:func:`object_change`). Each is one token, not a
    relation the classifier must learn between two embeddings from a few hundred labels (a turn, a pick-up)."""
    dx, dy = ((1, 0), (0, 1), (-1, 0), (0, -1))[state.agent_dir]
    (ax, ay), (mx, my) = state.agent_pos, (next_state.agent_pos[0] - state.agent_pos[0],
                                           next_state.agent_pos[1] - state.agent_pos[1])
    fx, fy = ax + dx, ay + dy
    inside = 0 <= fx < state.width and 0 <= fy < state.height
    front = object_change(state.cell(fx, fy), next_state.cell(fx, fy)) if inside else "same"
    return [f"turn={(next_state.agent_dir - state.agent_dir) % 4}", f"step={mx * dx + my * dy},{-mx * dy + my * dx}",
            f"front={front}", f"carrying={object_change(state.carrying, next_state.carrying)}"]


@dataclass
class SparseIDMConfig:
    actions: list[str]
    vocabulary: list[str]
    width: int
    height: int
    ego_radius: int = 1
    embedding_dim: int = 16
    hidden_dim: int = 128
    l1_weight: float = 0.1
    dense: bool = False  # every gate open and no penalty: the dense inverse model WAV's sparse one is compared with
    motion: bool = False  # the pair's motion features (turn, step) beside the states' own

    @property
    def features(self) -> list[str]:
        return feature_names(self.width, self.height, self.ego_radius, self.motion)


class SparseIDM(nn.Module):
    """Inverse dynamics over masked structured states; see the module docstring."""

    def __init__(self, config: SparseIDMConfig):
        super().__init__()
        self.config = config
        self.token_index = {token: i for i, token in enumerate(config.vocabulary)}
        num_features = len(config.features)
        self.tokens = nn.Embedding(len(config.vocabulary), config.embedding_dim)
        self.positions = nn.Embedding(num_features, config.embedding_dim)
        self.gate_logits = nn.Parameter(torch.full((num_features,), 2.0))  # start open (p = 0.88)
        self.changed = nn.Parameter(torch.zeros(config.embedding_dim))  # added where s and s' differ
        self.classifier = nn.Sequential(
            nn.Linear(3 * num_features * config.embedding_dim, config.hidden_dim), nn.ReLU(),
            nn.Linear(config.hidden_dim, len(config.actions)),
        )

    # ----- features
    def feature_tokens(self, state: MiniGridState, motion: list[str]) -> list[str]:
        """One side's raw tokens, in :attr:`SparseIDMConfig.features` order: the state's features, then ``motion``."""
        config = self.config
        return state_features(state, config.width, config.height, config.ego_radius) + motion

    def motion_tokens(self, state: MiniGridState, next_state: MiniGridState) -> list[str]:
        return motion_features(state, next_state) if self.config.motion else []

    def encode(self, states: Sequence[MiniGridState], next_states: Sequence[MiniGridState]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parsed (s, s') pairs -> two ``(batch, G)`` token ids (tokens never seen in training are ``<unk>``); a
        motion feature has the same token on both sides."""
        unknown = self.token_index[UNKNOWN]

        def ids(state: MiniGridState, motion: list[str]) -> list[int]:
            return [self.token_index.get(token, unknown) for token in self.feature_tokens(state, motion)]

        motions = [self.motion_tokens(s, n) for s, n in zip(states, next_states)]
        return (torch.tensor([ids(s, m) for s, m in zip(states, motions)], dtype=torch.long),
                torch.tensor([ids(n, m) for n, m in zip(next_states, motions)], dtype=torch.long))

    # ----- model
    def gate_probabilities(self) -> torch.Tensor:
        return torch.sigmoid(self.gate_logits)

    def mask(self) -> torch.Tensor:
        """The binary mask M used at inference."""
        if self.config.dense:
            return torch.ones_like(self.gate_logits)
        return (self.gate_probabilities() > 0.5).float()

    def kept_features(self) -> list[str]:
        """Names of the features the mask keeps, most confident first."""
        probabilities = self.gate_probabilities().tolist()
        kept = [(p, name) for p, name, gate in zip(probabilities, self.config.features, self.mask().tolist()) if gate]
        return [name for _, name in sorted(kept, reverse=True)]

    def sample_gates(self) -> torch.Tensor:
        """Binary gates drawn from Bernoulli(sigmoid(logit)) with straight-through gradients (dense: all open)."""
        if self.config.dense:
            return self.mask()
        uniform = torch.rand_like(self.gate_logits).clamp(1e-6, 1 - 1e-6)
        soft = torch.sigmoid(self.gate_logits + torch.log(uniform) - torch.log1p(-uniform))
        return (soft > 0.5).float() + soft - soft.detach()

    def forward(self, states: torch.Tensor, next_states: torch.Tensor, gates: torch.Tensor | None = None) -> torch.Tensor:
        """Action logits from token ids ``(batch, G)`` of s and s'; ``gates`` defaults to the binary mask."""
        gates = self.mask() if gates is None else gates
        position = self.positions.weight
        changed = (states != next_states).float()[..., None] * self.changed
        pair = torch.cat([self.tokens(states) + position, self.tokens(next_states) + position, changed + position],
                         dim=-1)
        return self.classifier((pair * gates[None, :, None]).flatten(1))

    def sparsity_penalty(self) -> torch.Tensor:
        if self.config.dense:
            return torch.zeros(())
        probabilities = self.gate_probabilities()
        return self.config.l1_weight * probabilities.sum() / math.sqrt(probabilities.numel())

    # ----- inference
    @torch.no_grad()
    def predict_parsed(self, states: Sequence[MiniGridState], next_states: Sequence[MiniGridState]) -> list[str]:
        """The most likely action text for each parsed (s, s') pair."""
        if not states:
            return []
        self.eval()
        best = self(*self.encode(states, next_states)).argmax(dim=-1)
        return [self.config.actions[i] for i in best.tolist()]

    def predict(self, states: Sequence[str], next_states: Sequence[str]) -> list[str]:
        """The most likely action text for each serialised (s, s') pair (unparseable text raises StateParseError)."""
        return self.predict_parsed([text_to_state(t) for t in states], [text_to_state(t) for t in next_states])

    def masked_mismatch(self, states: Sequence[str], targets: Sequence[str], predictions: Sequence[str]) -> list[float]:
        """``l(s~, s^)`` in the model's view: the share of the kept features (mask ``M``) on which the step
        ``s -> target`` and the step ``s -> prediction`` differ; 1.0 where any of the three does not parse.

        Why: the whole next state's mismatch (or NLL) counts what no action causes, such as noisy floor tiles, an
        error no label can remove; the inverse model's mask keeps the few features actions leave their imprint
        on, so a verification loss read through it ranks what labels can teach.
        """
        kept = [i for i, gate in enumerate(self.mask().tolist()) if gate]
        losses = []
        for state, target, prediction in zip(states, targets, predictions):
            try:
                parsed, wanted, got = text_to_state(state), text_to_state(target), text_to_state(prediction)
            except StateParseError:
                losses.append(1.0)
                continue
            # raw tokens, not ids: two tokens the model never saw in training must still differ
            wanted_tokens = self.feature_tokens(wanted, self.motion_tokens(parsed, wanted))
            got_tokens = self.feature_tokens(got, self.motion_tokens(parsed, got))
            losses.append(sum(wanted_tokens[i] != got_tokens[i] for i in kept) / max(len(kept), 1))
        return losses

    # ----- persistence
    def save(self, directory: str | Path) -> Path:
        return save_torch_model(directory, self, asdict(self.config))

    @classmethod
    def load(cls, directory: str | Path) -> SparseIDM:
        return load_torch_model(directory, lambda config: cls(SparseIDMConfig(**config)), "sparse IDM")


def train_sparse_idm(states: Sequence[str], actions: Sequence[str], next_states: Sequence[str],
                     action_labels: Sequence[str], *, steps: int = 600, batch_size: int = 128,
                     learning_rate: float = 3e-3, gate_learning_rate: float = 5e-2, l1_weight: float = 0.1,
                     ego_radius: int = 1, weight_decay: float = 1e-4, dense: bool = False, motion: bool = True,
                     seed: int = 0) -> SparseIDM:
    """Fit classifier and mask jointly on labelled transitions (minibatch Adam, a few seconds on CPU); ``dense``
    fits the classifier on every feature (no mask), the inverse model the sparse one is compared with.

    Rows whose states do not parse are an error: they come from our own datasets, not from a model.
    """
    if not states:
        raise ValueError("cannot train a sparse IDM on no transitions")
    unknown_actions = sorted(set(actions) - set(action_labels))
    if unknown_actions:
        raise ValueError(f"actions {unknown_actions} are not among the action labels {list(action_labels)}")
    parsed = [text_to_state(text) for text in [*states, *next_states]]
    width, height = max(s.width for s in parsed), max(s.height for s in parsed)
    vocabulary = {PAD, UNKNOWN, EMPTY}
    for state in parsed:
        vocabulary.update(state_features(state, width, height, ego_radius))
    if motion:
        vocabulary.update(token for s, n in zip(parsed[: len(states)], parsed[len(states):])
                          for token in motion_features(s, n))
    config = SparseIDMConfig(actions=list(action_labels), vocabulary=sorted(vocabulary), width=width, height=height,
                             ego_radius=ego_radius, l1_weight=l1_weight, dense=dense, motion=motion)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = SparseIDM(config)
        inputs, targets = model.encode(parsed[: len(states)], parsed[len(states):])
        labels = torch.tensor([config.actions.index(a) for a in actions])
        optimiser = torch.optim.AdamW([
            {"params": [p for name, p in model.named_parameters() if name != "gate_logits"],
             "lr": learning_rate, "weight_decay": weight_decay},
            {"params": [model.gate_logits], "lr": gate_learning_rate, "weight_decay": 0.0},
        ])
        model.train()
        for _ in range(steps):
            batch = torch.randint(len(labels), (min(batch_size, len(labels)),), generator=generator)
            logits = model(inputs[batch], targets[batch], gates=model.sample_gates())
            loss = nn.functional.cross_entropy(logits, labels[batch]) + model.sparsity_penalty()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    return model


def try_predict(model: SparseIDM, states: Sequence[str], next_states: Sequence[str]) -> list[str | None]:
    """Like :meth:`SparseIDM.predict`, but ``None`` for a pair where either state does not parse
    (a generated subgoal can be malformed; one bad sample must not sink the batch)."""
    results: list[str | None] = [None] * len(states)
    good, pairs = [], []
    for i, (s, n) in enumerate(zip(states, next_states)):
        try:
            pairs.append((text_to_state(s), text_to_state(n)))
        except StateParseError:
            continue
        good.append(i)
    for i, action in zip(good, model.predict_parsed([s for s, _ in pairs], [n for _, n in pairs])):
        results[i] = action
    return results
