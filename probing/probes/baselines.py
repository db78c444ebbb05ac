"""Table 3 baselines that use no attention: right-branching and Distances + GloVe."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from probing.probes.base import ProbeNet, mask_invalid
from probing.probes.features import (
    arc_distance,
    arc_vectors,
    distance_feature_dim,
    distance_features,
)


class DistancesPlusGlove(ProbeNet):
    """One-hidden-layer MLP over [v_c ; v_d ; distance features of (d, c)] -> score.

    The first layer is applied to each part separately and summed, which equals the layer on the
    concatenation; the hidden tensor is (B, N, N+1, hidden_dim).
    """

    def __init__(self, vector_dim: int, hidden_dim: int = 256, max_distance: int = 10) -> None:
        super().__init__()
        self.vector_dim = vector_dim
        self.max_distance = max_distance
        dist_dim = distance_feature_dim(max_distance)
        self.pair_feature_dim = 2 * vector_dim + dist_dim
        self.head_in = nn.Linear(vector_dim, hidden_dim, bias=False)
        self.dep_in = nn.Linear(vector_dim, hidden_dim)
        self.dist_in = nn.Linear(dist_dim, hidden_dim, bias=False)
        self.out = nn.Linear(hidden_dim, 1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, N+1, D) and (B, N, D) vectors -> (B, N, N+1) scores."""
        dep = self.dep_in(batch["dep_vectors"])  # (B, N, H)
        head = self.head_in(batch["cand_vectors"])  # (B, N+1, H)
        N = dep.shape[1]
        dist = self.dist_in(distance_features(N, self.max_distance, dep.device))  # (N, N+1, H)
        hidden = torch.relu(dep[:, :, None] + head[:, None] + dist[None])
        return mask_invalid(self.out(hidden).squeeze(-1), batch["cand_mask"])

    def pair_features(self, batch: dict[str, Tensor], heads: Tensor) -> Tensor:
        distance = arc_distance(batch, heads, self.max_distance)
        return torch.cat([arc_vectors(batch, heads), distance], dim=-1)


class RightBranching(ProbeNet):
    """Each word's head is the next word; the last word attaches to ROOT. Nothing to learn.

    Scores are 0 for that candidate and ``-1e4`` for the other valid ones (finite, so the loss
    stays finite), -inf for invalid ones. Labels, if asked for, come from the arc's distance.
    """

    WRONG = -1e4

    def __init__(self, max_distance: int = 10) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.pair_feature_dim = distance_feature_dim(max_distance)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, N) word mask and (B,) lengths -> (B, N, N+1) scores."""
        mask, lengths = batch["word_mask"], batch["lengths"]
        B, N = mask.shape
        d = torch.arange(N, device=mask.device)[None, :]
        # word d+1 -> candidate d+2; the last word and padding -> ROOT (keeps indices in range)
        target = torch.where(d + 1 >= lengths.to(mask.device)[:, None], 0, d + 2)
        scores = torch.full(
            (B, N, N + 1), self.WRONG, dtype=batch["dep_vectors"].dtype, device=mask.device
        )
        scores.scatter_(2, target[:, :, None], 0.0)
        return mask_invalid(scores, batch["cand_mask"])

    def pair_features(self, batch: dict[str, Tensor], heads: Tensor) -> Tensor:
        return arc_distance(batch, heads, self.max_distance)
