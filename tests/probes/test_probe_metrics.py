"""AttachmentScore and PerRelationUAS against hand-counted values."""

import pytest
import torch

from probing.probes.metrics import AttachmentScore, PerRelationUAS

F, T = False, True
NAMES = ["det", "root", "obj", "punct"]
# two sentences fed as two updates; sentence 2 has 3 words padded to 5
S1 = {
    "gold": [2, 0, 2, 5, 3],
    "pred": [2, 0, 1, 5, 2],  # heads right: T T F T F
    "punct": [F, F, F, F, T],
    "gold_rels": [0, 1, 2, -1, 3],  # w4's relation is unknown
    "pred_rels": [0, 1, 0, 0, 3],
    "mask": [T, T, T, T, T],
}
S2 = {
    "gold": [0, 1, 1, -100, -100],
    "pred": [0, 1, 1, 0, 0],  # heads right: T T T
    "punct": [F, T, F, F, F],
    "gold_rels": [1, 3, 2, -100, -100],
    "pred_rels": [1, 3, 0, 0, 0],
    "mask": [T, T, T, F, F],
}


def _args(sentence: dict) -> dict:
    return {key: torch.tensor([value]) for key, value in sentence.items()}


# UAS: without punct S1 3/4 + S2 2/2; with punct S1 3/5 + S2 3/3.
# LAS: S1 w1, w2 and S2 w1 (+ S2 w2, punct) have head and relation right.
@pytest.mark.parametrize(
    ("labeled", "include_punct", "expected"),
    [(F, F, 5 / 6), (F, T, 6 / 8), (T, F, 3 / 6), (T, T, 4 / 8)],
)
def test_attachment_score(labeled, include_punct, expected):
    metric = AttachmentScore(labeled=labeled, include_punct=include_punct)
    for sentence in (S1, S2):
        a = _args(sentence)
        metric.update(a["pred"], a["gold"], a["mask"], a["punct"], a["pred_rels"], a["gold_rels"])
    assert metric.compute().item() == pytest.approx(expected)


def test_las_needs_relations():
    a = _args(S1)
    with pytest.raises(ValueError):
        AttachmentScore(labeled=True).update(a["pred"], a["gold"], a["mask"], a["punct"])


@pytest.mark.parametrize(
    ("include_punct", "expected"),
    [
        (F, {"det": (1.0, 1), "root": (1.0, 2), "obj": (0.5, 2), "punct": (0.0, 0)}),
        (T, {"det": (1.0, 1), "root": (1.0, 2), "obj": (0.5, 2), "punct": (0.5, 2)}),
    ],
)
def test_per_relation_uas(include_punct, expected):
    metric = PerRelationUAS(NAMES, include_punct=include_punct)
    for sentence in (S1, S2):
        a = _args(sentence)
        metric.update(a["pred"], a["gold"], a["gold_rels"], a["mask"], a["punct"])
    assert metric.compute() == expected
