"""GoldSetAccuracy and PerLabelAccuracy against hand-counted values."""

import pytest
import torch

from probing.probes.metrics import GoldSetAccuracy, PerLabelAccuracy

F, T = False, True
NAMES = ["det", "root", "obj", "punct"]
C = 6  # candidates: ROOT + 5 words


def _gold(heads: list[int]) -> list[list[bool]]:
    return [[c == h for c in range(C)] for h in heads]


# two sentences fed as two updates; sentence 2 has 3 words padded to 5
S1 = {
    "gold": _gold([2, 0, 2, 5, 3]),
    "pred": [2, 0, 1, 5, 2],  # right: T T F T F
    "punct": [F, F, F, F, T],
    "gold_labels": [0, 1, 2, -1, 3],  # w4's label is unknown
    "pred_labels": [0, 1, 0, 0, 3],
    "mask": [T, T, T, T, T],
}
S2 = {
    "gold": _gold([0, 1, 1, -1, -1]),
    "pred": [0, 1, 1, 0, 0],  # right: T T T
    "punct": [F, T, F, F, F],
    "gold_labels": [1, 3, 2, -100, -100],
    "pred_labels": [1, 3, 0, 0, 0],
    "mask": [T, T, T, F, F],
}


def _args(sentence: dict) -> dict:
    return {key: torch.tensor([value]) for key, value in sentence.items()}


def _counted(a: dict, include_punct: bool) -> torch.Tensor:
    return a["mask"] if include_punct else a["mask"] & ~a["punct"]


# UAS: without punct S1 3/4 + S2 2/2; with punct S1 3/5 + S2 3/3.
# LAS: S1 w1, w2 and S2 w1 (+ S2 w2, punct) have head and label right.
@pytest.mark.parametrize(
    ("labeled", "include_punct", "expected"),
    [(F, F, 5 / 6), (F, T, 6 / 8), (T, F, 3 / 6), (T, T, 4 / 8)],
)
def test_gold_set_accuracy(labeled, include_punct, expected):
    metric = GoldSetAccuracy(labeled=labeled)
    for sentence in (S1, S2):
        a = _args(sentence)
        metric.update(a["pred"], a["gold"], _counted(a, include_punct), a["pred_labels"], a["gold_labels"])
    assert metric.compute().item() == pytest.approx(expected)


def test_a_prediction_anywhere_in_the_set_is_right():
    gold = torch.tensor([[[F, T, T, F], [T, F, F, F]]])
    metric = GoldSetAccuracy()
    metric.update(torch.tensor([[2, 1]]), gold, torch.tensor([[T, T]]))
    assert metric.compute().item() == 0.5


def test_labeled_needs_labels():
    a = _args(S1)
    with pytest.raises(ValueError):
        GoldSetAccuracy(labeled=True).update(a["pred"], a["gold"], a["mask"])


@pytest.mark.parametrize(
    ("include_punct", "expected"),
    [
        (F, {"det": (1.0, 1), "root": (1.0, 2), "obj": (0.5, 2), "punct": (0.0, 0)}),
        (T, {"det": (1.0, 1), "root": (1.0, 2), "obj": (0.5, 2), "punct": (0.5, 2)}),
    ],
)
def test_per_label_accuracy(include_punct, expected):
    metric = PerLabelAccuracy(NAMES)
    for sentence in (S1, S2):
        a = _args(sentence)
        metric.update(a["pred"], a["gold"], a["gold_labels"], _counted(a, include_punct))
    assert metric.compute() == expected
