"""What every probe net provides to :class:`probing.probes.module.ProbeModule`."""

from __future__ import annotations

from torch import Tensor, nn


class ProbeNet(nn.Module):
    """A probe: ``forward(batch) -> scores (B, N, N+1)``, candidate 0 = ROOT, invalid = -inf.

    ``pair_features(batch, heads) -> (B, N, pair_feature_dim)`` describes the arc from each word
    to candidate ``heads`` (B, N) with the same inputs the net scores arcs from, so that the
    relation classifier never sees more than the probe does.
    """

    pair_feature_dim: int = 0

    def pair_features(self, batch: dict[str, Tensor], heads: Tensor) -> Tensor:
        raise NotImplementedError


def mask_invalid(scores: Tensor, cand_mask: Tensor) -> Tensor:
    """(B, N, N+1) scores with padding and self-attachment set to -inf."""
    return scores.masked_fill(~cand_mask, float("-inf"))
