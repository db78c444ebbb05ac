"""Query accuracy as torchmetrics: a prediction is right when it is in the query's gold set.

For dependencies that is UAS (LAS with ``labeled=True``); the task decides which queries count
(punctuation is left out of UAS, as in the paper).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def in_gold(pred: Tensor, gold: Tensor) -> Tensor:
    """(B, Q) predicted candidate, (B, Q, C) bool gold set -> (B, Q) bool."""
    return gold.gather(-1, pred.clamp_min(0)[..., None]).squeeze(-1)


class GoldSetAccuracy(Metric):
    """Share of the counted queries whose prediction is in the gold set (and, with ``labeled``,
    whose predicted label is the gold one too)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, labeled: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.labeled = labeled
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: Tensor, gold: Tensor, counted: Tensor, pred_labels: Tensor | None = None,
               gold_labels: Tensor | None = None) -> None:
        """``pred`` (B, Q), ``gold`` (B, Q, C) bool, ``counted`` (B, Q) bool."""
        right = in_gold(pred, gold)
        if self.labeled:
            if pred_labels is None or gold_labels is None:
                raise ValueError("a labeled GoldSetAccuracy needs pred_labels and gold_labels")
            right = right & (pred_labels == gold_labels)
        # out of place: states reset under inference_mode (trainer.validate before fit) are
        # inference tensors, which refuse in-place updates later
        self.correct = self.correct + (right & counted).sum()
        self.total = self.total + counted.sum()

    def compute(self) -> Tensor:
        """Scalar accuracy in [0, 1]; 0 when nothing was counted."""
        return self.correct.float() / self.total.clamp_min(1)


class PerLabelAccuracy(Metric):
    """Accuracy per gold label (per relation: UAS per relation); labels < 0 are skipped.

    ``compute()`` returns ``{label_name: (accuracy, count)}`` with python floats and ints, for every
    name in ``label_names`` (accuracy 0.0 where count is 0).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, label_names: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.label_names = list(label_names)
        size = len(self.label_names)
        self.add_state("correct", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, gold: Tensor, gold_labels: Tensor, counted: Tensor) -> None:
        """``pred``, ``gold_labels``, ``counted`` (B, Q); ``gold`` (B, Q, C) bool."""
        keep = counted & (gold_labels >= 0)
        labels = gold_labels[keep]
        right = in_gold(pred, gold)[keep].float()
        size = len(self.label_names)
        self.correct = self.correct + torch.bincount(labels, right, minlength=size)[:size].long()
        self.total = self.total + torch.bincount(labels, minlength=size)[:size]

    def compute(self) -> dict[str, tuple[float, int]]:
        acc = self.correct.float() / self.total.clamp_min(1)
        return {name: (float(acc[i]), int(self.total[i])) for i, name in enumerate(self.label_names)}
