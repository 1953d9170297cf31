"""WAV's structured world models: a forward model and a subgoal generator over the codec's MiniGrid state
(:class:`swirl.envs.minigrid.MiniGridState`), the kind of small network the WAV paper runs its MiniGrid protocol
with. Each trains in seconds to minutes on a CPU; the inverse model beside them is the sparse (or dense) IDM of
:mod:`swirl.wav.sparse_idm`.

Fields. A state is ``F`` categorical fields, one token each: every grid cell's object code (``W``, ``Kr``,
``Bb[Ar]``, ``.``; cells beyond a smaller room are ``<pad>``), then ``x=<n>``, ``y=<n>``, ``dir=<n>`` and the carried
object's code. Every field of the next state is predicted given the state and a *code*:

* forward model ``f(s' | s, a)``: the code is the action;
* subgoal generator ``g(s' | s) = sum_z p(z | s) f_z(s' | s)``: the code is a latent ``z`` of ``codes`` values,
  trained on state-only pairs by maximising that marginal likelihood. Each code learns one kind of change, so a
  subgoal (the most likely next state under one code) is a coherent next state, not a mix of independent fields.

Each cell's distribution is an MLP of its own token, its position relative to the agent in the agent's frame
(within ``radius``; farther cells share one "far" position: an action only changes the cell in front), the
carried object, the cell in front and the code. The agent's four fields come from one MLP of its pose, the
carried object, the front cell and the code; each field may only take tokens of its kind (a cell code, an ``x=``,
...), so every prediction decodes to a valid state. The verification loss is the mean per-field cross-entropy of a
target state under the model (:meth:`StructuredModel.loss`). Saved as ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from swirl.envs.minigrid_state import MiniGridState
from swirl.envs.minigrid_text import obj_from_code, state_text_kind, state_to_text, text_to_state
from swirl.errors import StateParseError
from swirl.paths import load_torch_model, save_torch_model

EMPTY, PAD, UNKNOWN = ".", "<pad>", "<unk>"
AGENT_FIELDS = ("x", "y", "dir", "carrying")
HEADINGS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # agent_dir 0 faces +x, 1 +y (down), 2 -x, 3 -y


def code_of(obj) -> str:
    return EMPTY if obj is None else obj.code


def agent_tokens(state: MiniGridState) -> list[str]:
    return [f"x={state.agent_pos[0]}", f"y={state.agent_pos[1]}", f"dir={state.agent_dir}", code_of(state.carrying)]


@dataclass
class StructuredConfig:
    codes: list[str]  # the actions (forward model) or latent names z0..zK-1 (subgoal generator)
    vocabulary: list[str]
    width: int
    height: int
    latent: bool = False  # a subgoal generator: a prior p(z | s) over the codes
    radius: int = 2
    dim: int = 32
    hidden: int = 128


class StructuredModel(nn.Module):
    """``p(s' | s, code)`` field by field; with ``latent``, also ``p(code | s)``. See the module docstring."""

    def __init__(self, config: StructuredConfig):
        super().__init__()
        self.config = config
        self.index = {token: i for i, token in enumerate(config.vocabulary)}
        vocabulary, dim, hidden = len(config.vocabulary), config.dim, config.hidden
        self.tokens = nn.Embedding(vocabulary, dim)
        self.positions = nn.Embedding((2 * config.radius + 1) ** 2 + 1, dim)  # the last one: "far"
        # the first layer of each head is split by input: what the state gives (computed once per state) plus what
        # the code adds (a vector per code), so the subgoal generator's mixture costs one output layer per code
        self.cell_in = nn.Linear(4 * dim, hidden)  # the cell's token and position, the carried object, the front cell
        self.agent_in = nn.Linear(5 * dim, hidden)  # the agent's four fields and the front cell
        self.code_embedding = nn.Embedding(len(config.codes), dim)
        self.cell_code, self.agent_code = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.cell_out, self.agent_out = nn.Linear(hidden, vocabulary), nn.Linear(hidden, 4 * vocabulary)
        self.prior = nn.Sequential(nn.Linear(5 * dim, hidden), nn.ReLU(), nn.Linear(hidden, len(config.codes)))
        kinds = [self.kind_of(token) for token in config.vocabulary]
        allowed = torch.tensor([[kind == wanted and token != PAD for kind, token in zip(kinds, config.vocabulary)]
                                for wanted in ("cell", "x", "y", "dir", "cell")])  # padding is never predicted
        allowed[4] &= torch.tensor([token != "W" for token in config.vocabulary])  # nobody carries a wall
        self.register_buffer("mask", torch.where(allowed, 0.0, float("-inf")), persistent=False)
        # x=<n> / y=<n> tokens by value (-1: not a coordinate), to keep the agent inside each row's own room
        for axis in ("x", "y"):
            values = [int(token[2:]) if token.startswith(f"{axis}=") else -1 for token in config.vocabulary]
            self.register_buffer(f"{axis}_values", torch.tensor(values), persistent=False)

    @staticmethod
    def kind_of(token: str) -> str:
        return token.split("=")[0] if token.startswith(("x=", "y=", "dir=")) else ("special" if token == UNKNOWN else "cell")

    # ----- encoding
    def encode(self, states: Sequence[MiniGridState]) -> dict[str, torch.Tensor]:
        """Token ids of every field ``(batch, F)``, each cell's position relative to the agent and the front cell."""
        config, unknown = self.config, self.index[UNKNOWN]
        radius, side = config.radius, 2 * config.radius + 1
        fields, positions, front = [], [], []
        for state in states:
            cells = [code_of(state.cell(x, y)) if x < state.width and y < state.height else PAD
                     for y in range(config.height) for x in range(config.width)]
            fields.append([self.index.get(token, unknown) for token in cells + agent_tokens(state)])
            (ax, ay), (dx, dy) = state.agent_pos, HEADINGS[state.agent_dir]
            row = []
            for y in range(config.height):
                for x in range(config.width):
                    ahead, right = (x - ax) * dx + (y - ay) * dy, -(x - ax) * dy + (y - ay) * dx
                    near = abs(ahead) <= radius and abs(right) <= radius
                    row.append((ahead + radius) * side + right + radius if near else side * side)
            positions.append(row)
            fx, fy = ax + dx, ay + dy
            inside = 0 <= fx < state.width and 0 <= fy < state.height
            front.append(self.index.get(code_of(state.cell(fx, fy)) if inside else PAD, unknown))
        return {"fields": torch.tensor(fields), "positions": torch.tensor(positions), "front": torch.tensor(front),
                "size": torch.tensor([[state.width, state.height] for state in states])}

    def code_ids(self, codes: Sequence[str]) -> torch.Tensor:
        unknown = [code for code in codes if code not in self.config.codes]
        if unknown:
            raise ValueError(f"codes {sorted(set(unknown))} are not among {self.config.codes}")
        return torch.tensor([self.config.codes.index(code) for code in codes])

    # ----- the model
    def logits(self, encoded: dict[str, torch.Tensor], codes: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every field's next token: ``(batch, F, V)`` for one code per row (``codes`` of shape
        ``(batch,)``), ``(batch, Z, F, V)`` for ``Z`` codes per row (``(batch, Z)``)."""
        fields, cells = encoded["fields"], self.config.width * self.config.height
        tokens, front = self.tokens(fields), self.tokens(encoded["front"])  # (B, F, d), (B, d)
        agent = tokens[:, cells:]
        context = torch.cat([agent[:, 3], front], dim=-1)[:, None].expand(-1, cells, -1)  # carried object, front cell
        cell_base = self.cell_in(torch.cat([tokens[:, :cells], self.positions(encoded["positions"]), context], -1))
        agent_base = self.agent_in(torch.cat([agent.flatten(1), front], -1))
        if codes.dim() == 2:  # every code of a row at once
            cell_base, agent_base = cell_base[:, None], agent_base[:, None]
        code = self.code_embedding(codes)
        cell_logits = self.cell_out(torch.relu(cell_base + self.cell_code(code)[..., None, :]))
        agent_logits = self.agent_out(torch.relu(agent_base + self.agent_code(code))).unflatten(-1, (4, -1))
        outside = torch.zeros(len(fields), 4, len(self.config.vocabulary), dtype=torch.bool)  # beyond the row's room
        outside[:, 0] = self.x_values[None] >= encoded["size"][:, :1]
        outside[:, 1] = self.y_values[None] >= encoded["size"][:, 1:]
        agent_logits = agent_logits.masked_fill(outside[:, None] if codes.dim() == 2 else outside, float("-inf"))
        kinds = torch.cat([self.mask[0].expand(cells, -1), self.mask[1:]])  # the tokens each field may take
        return torch.log_softmax(torch.cat([cell_logits, agent_logits], dim=-2) + kinds, dim=-1)

    def prior_log_probs(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        agent = self.tokens(encoded["fields"][:, -4:]).flatten(1)
        return torch.log_softmax(self.prior(torch.cat([agent, self.tokens(encoded["front"])], -1)), dim=-1)

    def field_log_likelihood(self, encoded: dict, codes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``(batch, F)`` (or ``(batch, Z, F)`` for ``Z`` codes per row): log p of each target field (padding fields
        count 0; a token never seen is floored at -30)."""
        log_probs = self.logits(encoded, codes)
        wanted = targets[:, None] if codes.dim() == 2 else targets
        picked = log_probs.gather(-1, wanted.expand(*log_probs.shape[:-1])[..., None]).squeeze(-1).clamp(min=-30.0)
        return torch.where(wanted == self.index[PAD], torch.zeros_like(picked), picked)

    def code_log_likelihoods(self, encoded: dict, targets: torch.Tensor) -> torch.Tensor:
        """``(batch, Z)``: ``log p(z | s) + log p(s' | s, z)`` for every code ``z``."""
        every_code = torch.arange(len(self.config.codes)).expand(len(targets), -1)
        return self.prior_log_probs(encoded) + self.field_log_likelihood(encoded, every_code, targets).sum(-1)

    def mixture_log_likelihood(self, encoded: dict, targets: torch.Tensor) -> torch.Tensor:
        """``(batch,)``: ``log sum_z p(z | s) p(s' | s, z)`` (the subgoal generator's training objective)."""
        return torch.logsumexp(self.code_log_likelihoods(encoded, targets), dim=-1)

    # ----- inference on state texts
    def decode(self, state: MiniGridState, token_ids: Sequence[int], kind: str) -> str:
        vocabulary, cells = self.config.vocabulary, self.config.width * self.config.height
        tokens = [vocabulary[i] for i in token_ids]
        grid = [obj_from_code(tokens[y * self.config.width + x]) for y in range(state.height) for x in range(state.width)]
        x, y, direction, carrying = tokens[cells:]
        return state_to_text(MiniGridState(state.width, state.height, tuple(grid), (int(x[2:]), int(y[2:])),
                                           int(direction[4:]), obj_from_code(carrying)), kind)

    @torch.no_grad()
    def predict(self, states: Sequence[str], codes: Sequence[str]) -> list[str]:
        """The most likely next state text of each (state, code), field by field, in the states' text kind."""
        return in_chunks(self._predict, states, codes)

    def _predict(self, states: Sequence[str], codes: Sequence[str]) -> list[str]:
        self.eval()
        parsed = [text_to_state(text) for text in states]
        best = self.logits(self.encode(parsed), self.code_ids(codes)).argmax(-1)
        return [self.decode(state, row.tolist(), state_text_kind(text)) for state, row, text in zip(parsed, best, states)]

    @torch.no_grad()
    def sample(self, states: Sequence[str], codes: Sequence[str], n: int, temperature: float = 1.0,
               seed: int = 0) -> list[list[str]]:
        """``n`` next states per (state, code), every field drawn from its distribution (WAV's ``uncertainty``)."""
        generator = torch.Generator().manual_seed(seed)
        return in_chunks(lambda *chunk: self._sample(*chunk, n, temperature, generator), states, codes)

    def _sample(self, states: Sequence[str], codes: Sequence[str], n: int, temperature: float,
                generator: torch.Generator) -> list[list[str]]:
        self.eval()
        parsed = [text_to_state(text) for text in states]
        scaled = self.logits(self.encode(parsed), self.code_ids(codes)) / temperature
        # Gumbel-max: argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T), every field at once
        drawn = [(scaled - torch.log(-torch.log(torch.rand(scaled.shape, generator=generator).clamp(min=1e-12))))
                 .argmax(-1) for _ in range(n)]
        return [[self.decode(state, sample[i].tolist(), state_text_kind(text)) for sample in drawn]
                for i, (state, text) in enumerate(zip(parsed, states))]

    @torch.no_grad()
    def loss(self, states: Sequence[str], codes: Sequence[str], targets: Sequence[str]) -> list[float]:
        """Mean per-field cross-entropy of each target state given (state, code): the verification loss. A target
        that does not parse (or has another room size) gets ``inf``."""
        return in_chunks(self._loss, states, codes, targets)

    def _loss(self, states: Sequence[str], codes: Sequence[str], targets: Sequence[str]) -> list[float]:
        self.eval()
        losses = [float("inf")] * len(states)
        good = []
        for i, (state, target) in enumerate(zip(states, targets)):
            try:
                pair = text_to_state(state), text_to_state(target)
            except StateParseError:
                continue
            if (pair[0].width, pair[0].height) == (pair[1].width, pair[1].height):
                good.append((i, *pair))
        if good:
            encoded = self.encode([s for _, s, _ in good])
            wanted = self.encode([t for _, _, t in good])["fields"]
            log_likelihood = self.field_log_likelihood(encoded, self.code_ids([codes[i] for i, _, _ in good]), wanted)
            counts = (wanted != self.index[PAD]).sum(-1)
            for (i, _, _), value in zip(good, (-log_likelihood.sum(-1) / counts).tolist()):
                losses[i] = value
        return losses

    @torch.no_grad()
    def propose(self, states: Sequence[str], k: int) -> list[list[str]]:
        """Subgoal generator: for each state, the most likely next state under each of its ``k`` most likely
        codes (distinct, so maybe fewer than ``k``)."""
        if not self.config.latent:
            raise ValueError("propose needs a subgoal generator (latent codes), not a forward model")
        return in_chunks(lambda chunk: self._propose(chunk, k), states)

    def _propose(self, states: Sequence[str], k: int) -> list[list[str]]:
        self.eval()
        parsed = [text_to_state(text) for text in states]
        encoded = self.encode(parsed)
        top = self.prior_log_probs(encoded).topk(min(k, len(self.config.codes)), dim=-1).indices
        proposals = [[] for _ in states]
        for column in top.T:
            best = self.logits(encoded, column).argmax(-1)
            for i, (state, text) in enumerate(zip(parsed, states)):
                proposal = self.decode(state, best[i].tolist(), state_text_kind(text))
                if proposal not in proposals[i]:
                    proposals[i].append(proposal)
        return proposals

    # ----- persistence
    def save(self, directory: str | Path) -> Path:
        return save_torch_model(directory, self, asdict(self.config))

    @classmethod
    def load(cls, directory: str | Path) -> StructuredModel:
        return load_torch_model(directory, lambda config: cls(StructuredConfig(**config)), "structured model")


def in_chunks(function: Callable[..., list], *columns: Sequence, size: int = 1024) -> list:
    """``function`` over ``size`` rows of the columns at a time, results concatenated: a pool of 20k candidates
    would otherwise hold (20k x fields x vocabulary) floats at once."""
    columns = tuple(column if isinstance(column, list) else list(column) for column in columns)
    results: list = []
    for start in range(0, len(columns[0]), size):
        results.extend(function(*(column[start:start + size] for column in columns)))
    return results


def train_structured_model(states: Sequence[str], next_states: Sequence[str], codes: Sequence[str] | None = None,
                           *, code_names: Sequence[str] | None = None, latent_codes: int = 8, steps: int = 1000,
                           batch_size: int = 256, learning_rate: float = 3e-3, balance_weight: float = 1.0,
                           init: StructuredModel | None = None, vocabulary_states: Sequence[str] = (),
                           seed: int = 0) -> StructuredModel:
    """A forward model (``codes``: each row's action, among ``code_names``) or, without ``codes``, a subgoal
    generator with ``latent_codes`` latent codes, fit by minibatch AdamW on the transitions. ``init`` continues
    a model (its vocabulary and size are kept; tokens it never saw read as ``<unk>``). ``vocabulary_states``: more
    states whose object codes and room sizes the model must know (e.g. the state-only data), beyond the rows'.

    A mixture fit by likelihood alone tends to collapse: the code that is best early takes every transition and
    the others never learn. The subgoal generator's loss therefore adds ``balance_weight`` times the negative
    entropy of the batch's mean code posterior, which pushes the transitions apart over the codes (the load
    balancing of mixtures of experts)."""
    if not states:
        raise ValueError("cannot train a structured model on no transitions")
    parsed = [text_to_state(text) for text in [*states, *next_states]]
    if init is not None:
        config = init.config
    else:
        known = parsed + [text_to_state(text) for text in dict.fromkeys(vocabulary_states)]
        width, height = max(s.width for s in known), max(s.height for s in known)
        vocabulary = {PAD, UNKNOWN, EMPTY, *(f"x={x}" for x in range(width)), *(f"y={y}" for y in range(height)),
                      *(f"dir={d}" for d in range(4))}
        for state in known:
            vocabulary.update(code_of(obj) for obj in (*state.cells, state.carrying))
        latent = codes is None
        config = StructuredConfig(codes=[f"z{i}" for i in range(latent_codes)] if latent else list(code_names),
                                  vocabulary=sorted(vocabulary), width=width, height=height, latent=latent)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = StructuredModel(config)
        if init is not None:
            model.load_state_dict(init.state_dict())
        inputs, targets = model.encode(parsed[: len(states)]), model.encode(parsed[len(states):])["fields"]
        labels = model.code_ids(codes) if codes is not None else None
        optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
        model.train()
        for _ in range(steps):
            batch = torch.randint(len(targets), (min(batch_size, len(targets)),), generator=generator)
            encoded = {key: value[batch] for key, value in inputs.items()}
            if labels is None:
                joint = model.code_log_likelihoods(encoded, targets[batch])  # (B, Z)
                usage = torch.softmax(joint, dim=-1).mean(0)  # the batch's mean posterior over codes
                entropy = -(usage * usage.clamp(min=1e-9).log()).sum()
                loss = -torch.logsumexp(joint, dim=-1).mean() - balance_weight * entropy
            else:
                loss = -model.field_log_likelihood(encoded, labels[batch], targets[batch]).sum(-1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    return model
