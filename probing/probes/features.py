"""Arc features shared by the probe nets: gathered attention, vector pairs and distances."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _gather_heads(heads: Tensor) -> Tensor:
    """(B, N) candidate index with padding (-100) sent to ROOT so that gathers stay in range."""
    return heads.clamp_min(0)


def arc_attention(batch: dict[str, Tensor], heads: Tensor) -> Tensor:
    """Per-map attention of the arc from each word to candidate ``heads`` (B, N) -> (B, N, 2K)."""
    B, K, N, _ = batch["dep_to_cand"].shape
    index = _gather_heads(heads)[:, None, :, None].expand(B, K, N, 1)
    d2c = batch["dep_to_cand"].gather(3, index).squeeze(3)
    c2d = batch["cand_to_dep"].gather(3, index).squeeze(3)
    return torch.cat([d2c, c2d], dim=1).transpose(1, 2)


def arc_vectors(batch: dict[str, Tensor], heads: Tensor) -> Tensor:
    """[v_head ; v_dep] of the arc from each word to candidate ``heads`` (B, N) -> (B, N, 2D)."""
    cand_vectors = batch["cand_vectors"]
    index = _gather_heads(heads)[:, :, None].expand(-1, -1, cand_vectors.shape[-1])
    return torch.cat([cand_vectors.gather(1, index), batch["dep_vectors"]], dim=-1)


def distance_feature_dim(max_distance: int) -> int:
    return 2 * max_distance + 3


def distance_features(num_words: int, max_distance: int, device=None) -> Tensor:
    """Features of the arc from word d+1 to candidate c: (N, N+1, 2*max_distance + 3).

    [signed offset c - (d+1) clipped to +-max_distance and divided by it ; one-hot of the clipped
    offset over -max..+max ; is-ROOT]. ROOT has no position, so only its indicator is set.
    """
    dep = torch.arange(1, num_words + 1, device=device)[:, None]
    cand = torch.arange(num_words + 1, device=device)[None, :]
    offset = (cand - dep).clamp(-max_distance, max_distance)  # (N, N+1)
    is_root = (cand == 0).expand_as(offset)
    signed = torch.where(is_root, 0, offset).float() / max_distance
    onehot = F.one_hot(offset + max_distance, 2 * max_distance + 1).float()
    onehot = onehot.masked_fill(is_root[..., None], 0.0)
    return torch.cat([signed[..., None], onehot, is_root[..., None].float()], dim=-1)


def arc_distance(batch: dict[str, Tensor], heads: Tensor, max_distance: int) -> Tensor:
    """Distance features of the arc from each word to candidate ``heads`` (B, N) -> (B, N, F)."""
    B, N = heads.shape
    table = distance_features(N, max_distance, heads.device)  # (N, N+1, F)
    index = _gather_heads(heads)[:, :, None, None].expand(B, N, 1, table.shape[-1])
    return table.expand(B, -1, -1, -1).gather(2, index).squeeze(2)
