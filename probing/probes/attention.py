"""The paper's attention probes (Table 3 "Attn" and "Attn + GloVe").

Both score candidate c of query q as ``sum_m weight_m * attn[m, q, c]`` over the M = 2K maps of
:class:`~probing.probes.batch.ProbeBatch` (each map and its transpose: the paper's
``w_k a_ij + u_k a_ji``); ROOT's column is :class:`~probing.probes.features.RootFeatures`. The
maps are the batch's last dimension, so that Attn's weighting is one matrix-vector product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from probing.probes.base import ProbeNet, check_init, glorot_uniform_, init_linear
from probing.probes.batch import ProbeBatch
from probing.probes.features import RootFeatures, arc_attention, arc_vectors


class AttnOnly(ProbeNet):
    """Attn: one weight per map, ``score[q, c] = sum_m w_m attn[m, q, c]`` (M = 2 * num_maps).

    ``root``: "released" | "start_end" (see :class:`RootFeatures`). ``init``: "released" draws the
    M weights from TF's glorot-uniform for a 1-D variable (fan_in = fan_out = M); "zeros" and
    "pytorch" start them at zero, the uniform distribution over candidates.
    """

    def __init__(self, num_maps: int, *, root: str, init: str) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.pair_feature_dim = 2 * num_maps
        self.weight = nn.Parameter(torch.zeros(2 * num_maps))
        self.root = RootFeatures(root)
        self.reset_parameters(check_init(init))

    def reset_parameters(self, init: str) -> None:
        if init == "released":
            glorot_uniform_(self.weight, len(self.weight), len(self.weight))
        else:
            nn.init.zeros_(self.weight)
        self.root.reset_parameters(init)

    def forward(self, batch: ProbeBatch) -> Tensor:
        """(B, Q, N, M) and (B, Q, 2, M) attention -> (B, Q, N+1) scores."""
        words = batch.word_attn @ self.weight
        root = self.root(batch.special_attn) @ self.weight
        return torch.cat([root[..., None], words], dim=-1)

    def pair_features(self, batch: ProbeBatch, choice: Tensor) -> Tensor:
        return arc_attention(batch, self.root(batch.special_attn), choice)


class PairWeightedSum(torch.autograd.Function):
    """``sum_m attn[b, q, c, m] * (query[b, q, m] + cand[b, c, m])`` -> (B, Q, N), one example at a time.

    The (Q, N, M) temporaries of one example stay in cache and are reused by the allocator; the
    whole batch's (B, Q, N, M) ones (tens of MB) would be fresh pages, zeroed by the kernel, at every
    step, forward and backward: on 2 CPU cores that halved the probe's throughput. ``attn`` gets
    no gradient (the attention is frozen data).
    """

    @staticmethod
    def forward(ctx, attn: Tensor, query: Tensor, cand: Tensor) -> Tensor:
        out = attn.new_empty(attn.shape[:3])
        for b in range(attn.shape[0]):
            torch.sum(attn[b] * (query[b, :, None] + cand[b, None]), dim=-1, out=out[b])
        ctx.save_for_backward(attn)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor, Tensor]:
        (attn,) = ctx.saved_tensors
        grad_query = attn.new_empty(attn.shape[0], attn.shape[1], attn.shape[3])
        grad_cand = attn.new_empty(attn.shape[0], attn.shape[2], attn.shape[3])
        for b in range(attn.shape[0]):
            weighted = attn[b] * grad[b, :, :, None]  # (Q, N, M)
            torch.sum(weighted, dim=1, out=grad_query[b])
            torch.sum(weighted, dim=0, out=grad_cand[b])
        return None, grad_query, grad_cand


class AttnPlusGlove(ProbeNet):
    """Attn + GloVe: pair-dependent weights ``w_m(q, c) = W_m,:[v_c ; v_q] + b_m``.

    v_c is candidate c's own vector (ROOT's zeros), v_q the query's (a span's mean). The released
    code paired candidate c with word c+1's vector; here both come from the same candidate index.
    W is split into a candidate half and a query half; the (B, Q, N, M) weights are their broadcast sum.
    ``init``: "released" is TF's glorot-uniform for the whole (2D -> M) dense, bias zero.
    """

    def __init__(self, num_maps: int, vector_dim: int, *, root: str, init: str) -> None:
        super().__init__()
        self.num_maps, self.vector_dim = num_maps, vector_dim
        M = 2 * num_maps
        self.pair_feature_dim = M + 2 * vector_dim
        self.cand = nn.Linear(vector_dim, M, bias=False)
        self.query = nn.Linear(vector_dim, M)  # its bias is b_m
        self.root = RootFeatures(root)
        self.reset_parameters(check_init(init))

    def reset_parameters(self, init: str) -> None:
        for layer in (self.cand, self.query):
            init_linear(layer, init, fan_in=2 * self.vector_dim)
        self.root.reset_parameters(init)

    def forward(self, batch: ProbeBatch) -> Tensor:
        """(B, Q, N, M) attention, (B, N, D) and (B, Q, D) vectors -> (B, Q, N+1) scores."""
        cand = self.cand(batch.word_vectors)  # (B, N, M)
        query = self.query(batch.query_vectors)  # (B, Q, M), bias included
        # elementwise, not a batched matmul: B*Q products of (N, M) x (M,) are too small for BLAS
        words = PairWeightedSum.apply(batch.word_attn, query, cand)
        # ROOT's vector is zeros: only the query's half (and the bias) weighs its features
        root = (self.root(batch.special_attn) * query).sum(-1)
        return torch.cat([root[..., None], words], dim=-1)

    def pair_features(self, batch: ProbeBatch, choice: Tensor) -> Tensor:
        attn = arc_attention(batch, self.root(batch.special_attn), choice)
        return torch.cat([attn, arc_vectors(batch, choice)], dim=-1)
