"""Probe nets on hand-built batches: AttnOnly, DistancesPlusGlove and RightBranching."""

import pytest
import torch
import torch.nn.functional as F

from probing.probes.attention import AttnOnly
from probing.probes.baselines import DistancesPlusGlove, RightBranching
from probing.probes.collate import collate_sentences
from probing.probes.features import distance_features
from probing.probes.metrics import AttachmentScore

ORACLE = 2  # the map whose words attend to their gold head (ROOT -> start token)


def _item(heads: list[int], gen: torch.Generator, num_maps: int = 4, dim: int = 3) -> dict:
    n = len(heads)
    maps = torch.rand(num_maps, n + 2, n + 2, generator=gen) ** 4  # peaky random attention
    maps[ORACLE] = 0.0
    maps[ORACLE, torch.arange(1, n + 1), torch.tensor(heads)] = 1.0
    maps[ORACLE, 0, 0] = maps[ORACLE, n + 1, n + 1] = 1.0
    return {
        "maps": maps / maps.sum(-1, keepdim=True),
        "heads": torch.tensor(heads),
        "rels": torch.zeros(n, dtype=torch.long),
        "punct": torch.zeros(n, dtype=torch.bool),
        "vectors": torch.randn(n, dim, generator=gen),
    }


TREES = [[2, 0, 2], [0, 1, 4, 2], [3, 3, 0, 5, 3], [2, 5, 2, 5, 0, 5]]


def _uas(pred: torch.Tensor, batch: dict) -> float:
    metric = AttachmentScore()
    metric.update(pred, batch["heads"], batch["word_mask"], batch["punct"])
    return metric.compute().item()


def test_attn_only_with_hand_set_weights():
    gen = torch.Generator().manual_seed(0)
    batch = collate_sentences([_item(heads, gen) for heads in TREES])
    net = AttnOnly(num_maps=4)
    assert _uas(net(batch).argmax(-1), batch) < 1.0  # zero weights: ties go to ROOT
    with torch.no_grad():
        net.w[0] = 10.0  # a random map is not enough
    assert _uas(net(batch).argmax(-1), batch) < 1.0
    with torch.no_grad():
        net.w.zero_()
        net.w[ORACLE] = 10.0
    scores = net(batch)
    assert _uas(scores.argmax(-1), batch) == 1.0
    assert torch.isinf(scores[~batch["cand_mask"]]).all()
    assert torch.isfinite(scores[batch["cand_mask"]]).all()


def test_distance_features():
    feats = distance_features(3, max_distance=2)  # (N, N+1, 1 + 5 + 1)
    assert feats.shape == (3, 4, 7)
    # word 1 -> word 3 is offset +2: signed 2/2, one-hot slot for +2, not ROOT
    assert feats[0, 3].tolist() == [1.0, 0, 0, 0, 0, 1, 0]
    # word 3 -> word 1 is -2 and word 3 -> word 2 is -1
    assert feats[2, 1].tolist() == [-1.0, 1, 0, 0, 0, 0, 0]
    assert feats[2, 2].tolist() == [-0.5, 0, 1, 0, 0, 0, 0]
    assert feats[1, 0].tolist() == [0.0, 0, 0, 0, 0, 0, 1]  # ROOT
    assert distance_features(8, max_distance=2)[7, 1, 1] == 1.0  # -7 is clipped to -2


def test_distances_plus_glove_learns_fixed_offsets():
    # head = previous word, first word -> ROOT: only the distance features can tell this
    gen = torch.Generator().manual_seed(0)
    items = [_item(list(range(n)), gen) for n in (3, 5, 6)]
    batch = collate_sentences(items)
    torch.manual_seed(0)
    net = DistancesPlusGlove(vector_dim=3, hidden_dim=16, max_distance=3)
    scores = net(batch)
    assert scores.shape == (3, 6, 7) and torch.isinf(scores[~batch["cand_mask"]]).all()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    mask = batch["word_mask"]
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(net(batch)[mask], batch["heads"][mask]).backward()
        optimizer.step()
    assert _uas(net(batch).argmax(-1), batch) == 1.0


def _plain_item(heads: list[int], punct: list[bool]) -> dict:
    n = len(heads)
    return {
        "maps": torch.full((1, n + 2, n + 2), 1.0 / (n + 2)),
        "heads": torch.tensor(heads),
        "rels": torch.zeros(n, dtype=torch.long),
        "punct": torch.tensor(punct),
        "vectors": torch.zeros(n, 2),
    }


def test_right_branching_hand_counted():
    # "The cat sat on the mat ." (UD); right: The->cat, cat->sat, the->mat; wrong: sat, on, mat
    # and the punct "."
    sentence = _plain_item([2, 3, 0, 6, 6, 3, 3], [False] * 6 + [True])
    batch = collate_sentences([sentence, _plain_item([0, 1], [False, False])])
    scores = RightBranching()(batch)
    pred = scores.argmax(-1)
    assert pred[0].tolist() == [2, 3, 4, 5, 6, 7, 0]
    assert pred[1, :2].tolist() == [2, 0]
    assert scores[0, 0, 2] == 0.0 and scores[0, 0, 3] < -1e3 and scores[0, 0, 1] == float("-inf")
    metric = AttachmentScore()
    metric.update(pred[:1], batch["heads"][:1], batch["word_mask"][:1], batch["punct"][:1])
    assert metric.compute().item() == pytest.approx(3 / 6)
    with_punct = AttachmentScore(include_punct=True)
    with_punct.update(pred[:1], batch["heads"][:1], batch["word_mask"][:1], batch["punct"][:1])
    assert with_punct.compute().item() == pytest.approx(3 / 7)
