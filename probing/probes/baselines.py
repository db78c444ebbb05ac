"""Baselines that use no attention: Distances + GloVe, right-branching and nearest-opinion.

None of them reads attention (``uses_attention = False``), so nothing is extracted for them.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from probing.probes.base import ProbeNet, check_init, init_linear
from probing.probes.batch import ProbeBatch
from probing.probes.features import (
    RELEASED_DISTANCE_FEATURES,
    arc_vectors,
    candidate_vectors,
    clipped_distance_dim,
    clipped_distance_features,
    gather_candidates,
    query_offsets,
    released_distance_features,
)

DISTANCE_FEATURES = ("released", "clipped")
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


class DistancesPlusGlove(ProbeNet):
    """One-hidden-layer MLP over [v_c ; v_q ; distance features of (q, c)] -> score.

    ``features``: "released" (the released ``make_distance_features``, 8 per pair, see
    :func:`released_distance_features`) or "clipped" (this code before issue 10: offset clipped to
    +-max_distance, its one-hot and is-ROOT). ``activation``: "tanh" (released) or "relu" (before).
    The first layer is applied to each part separately and summed, which equals the layer on the
    concatenation; the hidden tensor is (B, Q, N+1, hidden_dim).
    """

    uses_attention: ClassVar[bool] = False

    def __init__(self, vector_dim: int, *, hidden_dim: int, features: str, max_distance: int, activation: str,
                 init: str) -> None:
        super().__init__()
        if features not in DISTANCE_FEATURES:
            raise ValueError(f"features must be one of {DISTANCE_FEATURES}, not {features!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}")
        self.vector_dim, self.features, self.max_distance = vector_dim, features, max_distance
        self.activation = ACTIVATIONS[activation]
        dist_dim = RELEASED_DISTANCE_FEATURES if features == "released" else clipped_distance_dim(max_distance)
        self.pair_feature_dim = 2 * vector_dim + dist_dim
        self.cand_in = nn.Linear(vector_dim, hidden_dim, bias=False)
        self.query_in = nn.Linear(vector_dim, hidden_dim)
        self.dist_in = nn.Linear(dist_dim, hidden_dim, bias=False)
        self.out = nn.Linear(hidden_dim, 1)
        self.reset_parameters(check_init(init))

    def reset_parameters(self, init: str) -> None:
        # blocks of one (F + 2D -> H) dense (the released input also held an all-zero dummy attention
        # map, so its glorot bound used F + 2D + 1: a 0.1% difference)
        for layer in (self.cand_in, self.query_in, self.dist_in):
            init_linear(layer, init, fan_in=self.pair_feature_dim)
        init_linear(self.out, init)

    def distance_features(self, batch: ProbeBatch) -> Tensor:
        """(B, Q, N+1, F)."""
        if self.features == "released":
            return released_distance_features(batch)
        return clipped_distance_features(batch, self.max_distance)

    def forward(self, batch: ProbeBatch) -> Tensor:
        """(B, N, D) and (B, Q, D) vectors, positions -> (B, Q, N+1) scores."""
        query = self.query_in(batch.query_vectors)  # (B, Q, H)
        cand = self.cand_in(candidate_vectors(batch))  # (B, N+1, H)
        dist = self.dist_in(self.distance_features(batch))  # (B, Q, N+1, H)
        hidden = self.activation(dist + query[:, :, None] + cand[:, None])
        return self.out(hidden).squeeze(-1)

    def pair_features(self, batch: ProbeBatch, choice: Tensor) -> Tensor:
        distance = gather_candidates(self.distance_features(batch), choice)
        return torch.cat([arc_vectors(batch, choice), distance], dim=-1)


class _Rule(ProbeNet):
    """A fixed rule, nothing to learn: 0 for the candidate the rule picks, ``WRONG`` (finite) for
    the others. Labels, if asked for, come from the arc's clipped distance features."""

    uses_attention: ClassVar[bool] = False
    WRONG = -1e4

    def __init__(self, max_distance: int = 10) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.pair_feature_dim = clipped_distance_dim(max_distance)

    def pair_features(self, batch: ProbeBatch, choice: Tensor) -> Tensor:
        return gather_candidates(clipped_distance_features(batch, self.max_distance), choice)


class RightBranching(_Rule):
    """Each query's head is the word right after it; a query ending the sentence attaches to ROOT."""

    def forward(self, batch: ProbeBatch) -> Tensor:
        words = batch.query_words
        B, Q, N = words.shape
        position = torch.arange(1, N + 1, device=words.device)
        last = torch.where(words, position, 0).amax(-1)  # (B, Q), 1-based; 0 for padding
        target = torch.where(last >= batch.lengths.to(words.device)[:, None], 0, last + 1)
        scores = torch.full((B, Q, N + 1), self.WRONG, device=words.device)
        return scores.scatter_(2, target[..., None], 0.0)


class NearestOpinion(_Rule):
    """Each aspect's opinion is the nearest word that belongs to any gold opinion span of the
    sentence (of any aspect): an attention-free baseline that knows where the opinions are, not
    which aspect they belong to. Equal distances go to the left word (argmax takes the first)."""

    def forward(self, batch: ProbeBatch) -> Tensor:
        opinion = (batch.gold & batch.query_mask[..., None]).any(1)  # (B, N+1), any query's gold
        distance = query_offsets(batch).abs().float()
        return torch.where(opinion[:, None, :], -distance, self.WRONG)
