"""The paper's attention probes (Table 3 "Attn" and "Attn + GloVe")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from probing.probes.base import ProbeNet, mask_invalid
from probing.probes.features import arc_attention, arc_vectors


class AttnOnly(ProbeNet):
    """score[d, c] = sum_k w_k * dep_to_cand[k, d, c] + u_k * cand_to_dep[k, d, c].

    The paper's exp(sum_k w_k a_ij + u_k a_ji) with i = candidate head, j = dependent; in the ROOT
    column the same weights apply to attention to the start and end tokens.
    """

    def __init__(self, num_maps: int) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.pair_feature_dim = 2 * num_maps
        # zeros start from the uniform distribution over candidates; softmax needs no bias
        self.w = nn.Parameter(torch.zeros(num_maps))
        self.u = nn.Parameter(torch.zeros(num_maps))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, K, N, N+1) attention in the batch -> (B, N, N+1) scores."""
        scores = torch.einsum("bkdc,k->bdc", batch["dep_to_cand"], self.w) + torch.einsum(
            "bkdc,k->bdc", batch["cand_to_dep"], self.u
        )
        return mask_invalid(scores, batch["cand_mask"])

    def pair_features(self, batch: dict[str, Tensor], heads: Tensor) -> Tensor:
        return arc_attention(batch, heads)


class AttnPlusGlove(ProbeNet):
    """Attn with pair-dependent weights: w_k(c, d) = W_k,:(v_c ; v_d) + b_k, same for u_k.

    v_c is candidate c's own vector (ROOT = zeros) and v_d the dependent's. The released code
    paired candidate c with word c+1's vector; here both come from the same candidate index.
    W is split into a head half and a dependent half, so no (B, N, N+1, 2D) tensor is built.
    """

    def __init__(self, num_maps: int, vector_dim: int) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.vector_dim = vector_dim
        self.pair_feature_dim = 2 * num_maps + 2 * vector_dim
        self.w_head = nn.Linear(vector_dim, num_maps, bias=False)
        self.w_dep = nn.Linear(vector_dim, num_maps)  # its bias is b_k
        self.u_head = nn.Linear(vector_dim, num_maps, bias=False)
        self.u_dep = nn.Linear(vector_dim, num_maps)

    @staticmethod
    def _weighted(attn: Tensor, head_part: Tensor, dep_part: Tensor) -> Tensor:
        """sum_k (head_part[c, k] + dep_part[d, k]) * attn[k, d, c]: (B, K, N, N+1) -> (B, N, N+1).

        head_part is (B, N+1, K), dep_part (B, N, K) and already holds the bias.
        """
        return torch.einsum("bck,bkdc->bdc", head_part, attn) + torch.einsum(
            "bdk,bkdc->bdc", dep_part, attn
        )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, K, N, N+1) attention, (B, N+1, D) and (B, N, D) vectors -> (B, N, N+1) scores."""
        cand, dep = batch["cand_vectors"], batch["dep_vectors"]
        scores = self._weighted(batch["dep_to_cand"], self.w_head(cand), self.w_dep(dep))
        scores = scores + self._weighted(batch["cand_to_dep"], self.u_head(cand), self.u_dep(dep))
        return mask_invalid(scores, batch["cand_mask"])

    def pair_features(self, batch: dict[str, Tensor], heads: Tensor) -> Tensor:
        return torch.cat([arc_attention(batch, heads), arc_vectors(batch, heads)], dim=-1)
