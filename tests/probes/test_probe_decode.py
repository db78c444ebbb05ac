"""Argmax and Chu-Liu/Edmonds decoding on hand-worked graphs."""

import itertools
import math

import torch

from probing.probes.decode import decode_argmax, decode_mst

# p(candidate | word) for a 4-word sentence; columns are ROOT, w1..w4, 0 on the diagonal (self).
PROBS = torch.tensor(
    [
        [0.10, 0.00, 0.10, 0.70, 0.10],  # w1: best head w3
        [0.40, 0.05, 0.00, 0.05, 0.50],  # w2: best head w4, then ROOT
        [0.10, 0.10, 0.10, 0.00, 0.70],  # w3: best head w4
        [0.10, 0.10, 0.60, 0.20, 0.00],  # w4: best head w2
    ]
)


def _crosses(a: tuple[int, int], b: tuple[int, int]) -> bool:
    (a1, a2), (b1, b2) = sorted(a), sorted(b)
    return a1 < b1 < a2 < b2 or b1 < a1 < b2 < a2


def test_argmax_makes_a_cycle_and_mst_breaks_it_non_projectively():
    scores = PROBS.log()[None]
    assert decode_argmax(scores).tolist() == [[3, 4, 4, 2]]  # w2 <-> w4 is a cycle
    # Worked by hand: keep w4 <- w2 (.6) and give w2 its next best head, ROOT (.4), with w1 and
    # w3 at their best: .7 * .4 * .7 * .6 = .1176. A tree where w4's head is not w2 scores at
    # most .7 * .5 * .7 * .2 = .049; one where w2's head is w1 or w3 at most .7 * .05 * .7 * .6.
    heads = decode_mst(scores, torch.tensor([4]))
    assert heads.tolist() == [[3, 0, 4, 2]]
    arcs = [(h, d + 1) for d, h in enumerate(heads[0].tolist())]
    assert _crosses((3, 1), (2, 4)) and (3, 1) in arcs and (2, 4) in arcs  # non-projective


def _brute_force(log_probs: torch.Tensor) -> tuple[float, list[int]]:
    """Best tree by enumerating all n^(n+1) head vectors of an n-word sentence."""
    n = log_probs.shape[0]
    best = (-math.inf, [])
    for heads in itertools.product(range(n + 1), repeat=n):
        if any(h == d + 1 for d, h in enumerate(heads)):
            continue
        reaches_root = True
        for d in range(1, n + 1):
            seen, node = set(), d
            while node != 0 and node not in seen:
                seen.add(node)
                node = heads[node - 1]
            reaches_root &= node == 0
        if reaches_root:
            score = sum(float(log_probs[d, h]) for d, h in enumerate(heads))
            best = max(best, (score, list(heads)))
    return best


def test_mst_matches_brute_force_and_ignores_padding():
    gen = torch.Generator().manual_seed(0)
    N = 5
    scores = torch.randn(3, N, N + 1, generator=gen) * 3
    lengths = torch.tensor([4, 3, 4])
    for b, length in enumerate(lengths.tolist()):
        scores[b, length:] = -math.inf
        scores[b, :, length + 1 :] = -math.inf
        scores[b, torch.arange(N), torch.arange(N) + 1] = -math.inf
    heads = decode_mst(scores, lengths)
    for b, length in enumerate(lengths.tolist()):
        log_probs = torch.log_softmax(scores[b, :length, : length + 1], dim=-1)
        _, expected = _brute_force(log_probs)
        assert heads[b, :length].tolist() == expected
        assert heads[b, length:].eq(0).all()
