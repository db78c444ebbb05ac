"""Attachment scores as torchmetrics; punctuation is excluded unless asked for, as in the paper."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def _scored(mask: Tensor, punct: Tensor, include_punct: bool) -> Tensor:
    """(B, N) bool: the words a score counts."""
    return mask if include_punct else mask & ~punct


class AttachmentScore(Metric):
    """UAS (``labeled=False``) or LAS (head and relation both right) over the scored words."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, labeled: bool = False, include_punct: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.labeled = labeled
        self.include_punct = include_punct
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(
        self,
        pred_heads: Tensor,
        gold_heads: Tensor,
        mask: Tensor,
        punct: Tensor,
        pred_rels: Tensor | None = None,
        gold_rels: Tensor | None = None,
    ) -> None:
        """All (B, N); ``mask`` marks real words, ``punct`` punctuation."""
        keep = _scored(mask, punct, self.include_punct)
        right = pred_heads == gold_heads
        if self.labeled:
            if pred_rels is None or gold_rels is None:
                raise ValueError("a labeled AttachmentScore needs pred_rels and gold_rels")
            right = right & (pred_rels == gold_rels)
        # out of place: states reset under inference_mode (trainer.validate before fit) are
        # inference tensors, which refuse in-place updates later
        self.correct = self.correct + (right & keep).sum()
        self.total = self.total + keep.sum()

    def compute(self) -> Tensor:
        """Scalar accuracy in [0, 1]; 0 when no word was scored."""
        return self.correct.float() / self.total.clamp_min(1)


class PerRelationUAS(Metric):
    """UAS per gold relation; words with an unknown relation (id < 0) are skipped.

    ``compute()`` returns ``{relation_name: (uas, count)}`` with python floats and ints, for every
    relation in ``relation_names`` (uas 0.0 where count is 0).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, relation_names: list[str], include_punct: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.relation_names = list(relation_names)
        self.include_punct = include_punct
        size = len(self.relation_names)
        self.add_state(
            "correct", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("total", default=torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        pred_heads: Tensor,
        gold_heads: Tensor,
        gold_rels: Tensor,
        mask: Tensor,
        punct: Tensor,
    ) -> None:
        """All (B, N)."""
        keep = _scored(mask, punct, self.include_punct) & (gold_rels >= 0)
        rels = gold_rels[keep]
        right = (pred_heads == gold_heads)[keep].float()
        size = len(self.relation_names)
        self.correct = self.correct + torch.bincount(rels, right, minlength=size)[:size].long()
        self.total = self.total + torch.bincount(rels, minlength=size)[:size]

    def compute(self) -> dict[str, tuple[float, int]]:
        uas = self.correct.float() / self.total.clamp_min(1)
        return {
            name: (float(uas[i]), int(self.total[i])) for i, name in enumerate(self.relation_names)
        }
