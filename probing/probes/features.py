"""Features the probe nets share: ROOT's attention, distances, and the features of one chosen arc.

Shapes follow :class:`probing.probes.batch.ProbeBatch`: B examples, Q queries, N words, candidates
N+1 (0 = ROOT), M = 2K maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from probing.probes.batch import ProbeBatch

ROOT_FORMS = ("released", "start_end")


class RootFeatures(nn.Module):
    """ROOT's per-map attention feature, (B, Q, 2, M) special-token attention -> (B, Q, M).

    ``released`` (clarkkev/attention-analysis): ``s * attn[q, start, m] + e * attn[q, end, m]`` for
    all M maps with two learned scalars s, e shared by every map; for a transposed map (m >= K)
    that is the attention FROM [CLS]/[SEP] TO the query.
    ``start_end`` (this code before issue 10): no parameters; map m < K uses the query's attention
    to start, the transpose slot m + K the query's attention to end, so ROOT's score is
    ``w_k a(q->start) + u_k a(q->end)``.
    """

    def __init__(self, form: str = "released") -> None:
        super().__init__()
        if form not in ROOT_FORMS:
            raise ValueError(f"root must be one of {ROOT_FORMS}, not {form!r}")
        self.form = form
        if form == "released":
            self.start = nn.Parameter(torch.zeros(()))
            self.end = nn.Parameter(torch.zeros(()))

    def forward(self, special_attn: Tensor) -> Tensor:
        if self.form == "released":
            return self.start * special_attn[:, :, 0] + self.end * special_attn[:, :, 1]
        K = special_attn.shape[-1] // 2
        return torch.cat([special_attn[:, :, 0, :K], special_attn[:, :, 1, :K]], dim=-1)

    def reset_parameters(self, init: str) -> None:
        if self.form == "released":
            # tf.get_variable's default glorot-uniform for a scalar: fan_in = fan_out = 1
            bound = math.sqrt(3.0) if init == "released" else 0.0
            nn.init.uniform_(self.start, -bound, bound)
            nn.init.uniform_(self.end, -bound, bound)


def query_offsets(batch: ProbeBatch) -> Tensor:
    """(B, Q, N+1) long: signed distance from each query's span to candidate c (words 1-based).

    c - last word when c is right of the span, c - first word when left of it, 0 inside; for a
    one-word query at word d that is c - d. The ROOT column holds 0 (ROOT has no position).
    """
    words = batch.query_words
    N = words.shape[-1]
    position = torch.arange(1, N + 1, device=words.device)
    first = torch.where(words, position, N + 1).amin(-1, keepdim=True)  # (B, Q, 1)
    last = torch.where(words, position, 0).amax(-1, keepdim=True)
    cand = torch.arange(N + 1, device=words.device)
    offset = torch.where(cand > last, cand - last, torch.where(cand < first, cand - first, 0))
    return offset.masked_fill(cand == 0, 0)


RELEASED_DISTANCE_FEATURES = 8


def released_distance_features(batch: ProbeBatch) -> Tensor:
    """The released ``make_distance_features``: (B, Q, N+1, 8) float.

    For dependent d and word candidate c: ``(c-d)/n if d < c``, ``(d-c)/n if c < d``, and
    indicators c == d, c == d-1, c == d+1, c == d-2, c == d+2; a last indicator marks ROOT, whose
    other seven are 0. A span query measures from its nearest edge (see :func:`query_offsets`).
    """
    offset = query_offsets(batch)
    n = batch.lengths.to(offset.device).clamp_min(1)[:, None, None].float()
    is_root = torch.zeros_like(offset, dtype=torch.bool)
    is_root[..., 0] = True
    words = ~is_root
    feats = [
        torch.where(offset > 0, offset / n, 0.0),
        torch.where(offset < 0, -offset / n, 0.0),
        *((offset == k) & words for k in (0, -1, 1, -2, 2)),
        is_root,
    ]
    return torch.stack([f.float() for f in feats], dim=-1)


def clipped_distance_dim(max_distance: int) -> int:
    return 2 * max_distance + 3


def clipped_distance_features(batch: ProbeBatch, max_distance: int) -> Tensor:
    """This code's features before issue 10: (B, Q, N+1, 2 * max_distance + 3) float.

    [signed offset clipped to +-max_distance and divided by it ; one-hot of the clipped offset over
    -max..+max ; is-ROOT]. ROOT has no position, so only its indicator is set.
    """
    offset = query_offsets(batch).clamp(-max_distance, max_distance)
    is_root = torch.zeros_like(offset, dtype=torch.bool)
    is_root[..., 0] = True
    signed = torch.where(is_root, 0, offset).float() / max_distance
    onehot = F.one_hot(offset + max_distance, 2 * max_distance + 1).float()
    onehot = onehot.masked_fill(is_root[..., None], 0.0)
    return torch.cat([signed[..., None], onehot, is_root[..., None].float()], dim=-1)


def candidate_vectors(batch: ProbeBatch) -> Tensor:
    """(B, N+1, D): candidate c's own vector, ROOT's zeros.

    The released code paired candidate c with word c+1's vector (ROOT's zeros went last while
    ROOT's attention went first); here both come from the same candidate index.
    """
    return F.pad(batch.word_vectors, (0, 0, 1, 0))


def gather_candidates(table: Tensor, choice: Tensor) -> Tensor:
    """Pick each query's chosen candidate: (B, Q, N+1, F) table, (B, Q) choice -> (B, Q, F)."""
    index = choice.clamp_min(0)[..., None, None].expand(-1, -1, 1, table.shape[-1])
    return table.gather(2, index).squeeze(2)


def arc_attention(batch: ProbeBatch, root: Tensor, choice: Tensor) -> Tensor:
    """Per-map attention of the arc from each query to its chosen candidate -> (B, Q, M).

    ``root`` is the (B, Q, M) ROOT feature the net scores ROOT with; ``choice`` (B, Q).
    """
    attn = batch.word_attn  # (B, Q, N, M)
    index = (choice - 1).clamp_min(0)[..., None, None].expand(-1, -1, 1, attn.shape[-1])
    words = attn.gather(2, index).squeeze(2)
    return torch.where((choice == 0)[..., None], root, words)


def arc_vectors(batch: ProbeBatch, choice: Tensor) -> Tensor:
    """[v_candidate ; v_query] of each query's chosen candidate -> (B, Q, 2D)."""
    cand = candidate_vectors(batch)
    index = choice.clamp_min(0)[..., None].expand(-1, -1, cand.shape[-1])
    return torch.cat([cand.gather(1, index), batch.query_vectors], dim=-1)
