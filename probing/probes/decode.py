"""Turn arc scores (B, N, N+1) into predicted heads (B, N); candidate 0 = ROOT."""

from __future__ import annotations

import networkx as nx
import torch
from torch import Tensor

# stands in for -inf so that every candidate stays an edge and a spanning tree always exists
_FLOOR = -1e9


def decode_argmax(scores: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Per-word argmax, as in the paper: (B, N, N+1) -> (B, N); may contain cycles.

    ``lengths`` is unused; it lets both decoders share one signature.
    """
    return scores.argmax(dim=-1)


def decode_mst(scores: Tensor, lengths: Tensor) -> Tensor:
    """Maximum spanning arborescence (Chu-Liu/Edmonds) rooted at ROOT, per sentence.

    Edge weights are log-softmax scores, so the tree maximises the summed log-probability. Several
    words may attach to ROOT, as with argmax. (B, N, N+1), (B,) -> (B, N); padding gets 0.
    """
    log_probs = torch.log_softmax(scores.detach().float(), dim=-1).clamp_min(_FLOOR).cpu()
    heads = torch.zeros(scores.shape[:2], dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        graph = nx.DiGraph()
        graph.add_nodes_from(range(n + 1))
        weights = log_probs[b, :n, : n + 1].tolist()  # [dependent - 1][candidate]
        graph.add_weighted_edges_from(
            (c, d + 1, w) for d, row in enumerate(weights) for c, w in enumerate(row) if c != d + 1
        )
        tree = nx.maximum_spanning_arborescence(graph, attr="weight")
        for c, dep in tree.edges():
            heads[b, dep - 1] = c
    return heads.to(scores.device)


DECODERS = {"argmax": decode_argmax, "mst": decode_mst}
