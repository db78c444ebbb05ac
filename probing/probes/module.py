"""LightningModule that owns the probe's loss, decoding, metrics and optimizer."""

from __future__ import annotations

import functools

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from probing.probes.base import ProbeNet
from probing.probes.decode import DECODERS
from probing.probes.metrics import AttachmentScore, PerRelationUAS


class ProbeModule(pl.LightningModule):
    """Trains a :class:`ProbeNet` with cross-entropy over the N+1 candidates of each word.

    With ``predict_labels`` a relation classifier (MLP with one hidden layer) reads
    ``net.pair_features`` of the arc, i.e. only what the probe itself sees: per-map attention of
    the arc (2K) for the attention probes, plus [v_head ; v_dep] for the GloVe ones. It reads the
    gold head's arc in training and the predicted head's at evaluation, so LAS is end to end.

    A net with nothing to train (RightBranching) gets no optimizer and its training steps are
    skipped, so ``trainer.fit`` still runs validation.
    """

    def __init__(
        self,
        net: ProbeNet,
        optimizer: functools.partial,
        decode: str = "argmax",
        predict_labels: bool = False,
        num_relations: int = 0,
        relation_names: list[str] | None = None,
        include_punct: bool = False,
        rel_hidden_dim: int = 128,
    ) -> None:
        super().__init__()
        # partials do not unpickle under torch's weights_only; the Hydra config records both
        self.save_hyperparameters(ignore=["net", "optimizer"])
        if decode not in DECODERS:
            raise ValueError(f"decode must be one of {sorted(DECODERS)}, got {decode!r}")
        if predict_labels and num_relations <= 0:
            raise ValueError("predict_labels needs num_relations > 0")
        if relation_names is not None and num_relations and len(relation_names) != num_relations:
            raise ValueError("relation_names and num_relations disagree")
        self.net = net
        self.optimizer = optimizer
        self._decode = DECODERS[decode]
        self.rel_classifier = None
        if predict_labels:
            self.rel_classifier = nn.Sequential(
                nn.Linear(net.pair_feature_dim, rel_hidden_dim),
                nn.ReLU(),
                nn.Linear(rel_hidden_dim, num_relations),
            )
        self.val_uas = AttachmentScore(include_punct=include_punct)
        self.test_uas = AttachmentScore(include_punct=include_punct)
        self.val_las = AttachmentScore(labeled=True, include_punct=include_punct)
        self.test_las = AttachmentScore(labeled=True, include_punct=include_punct)
        names = relation_names or [str(i) for i in range(num_relations)]
        self.test_rel_uas = PerRelationUAS(names, include_punct=include_punct)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, N, N+1) arc scores."""
        return self.net(batch)

    def _loss(
        self, batch: dict[str, Tensor], scores: Tensor, label_heads: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Arc (+ relation) cross-entropy over real words, and (B, N, R) relation logits."""
        mask = batch["word_mask"]
        loss = F.cross_entropy(scores[mask], batch["heads"][mask])
        if self.rel_classifier is None:
            return loss, None
        rel_logits = self.rel_classifier(self.net.pair_features(batch, label_heads))
        gold = batch["rels"][mask]
        known = gold >= 0  # -1 marks a relation outside the vocabulary
        rel_loss = F.cross_entropy(rel_logits[mask][known], gold[known], reduction="sum")
        return loss + rel_loss / known.sum().clamp_min(1), rel_logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        loss, _ = self._loss(batch, self.net(batch), batch["heads"])
        B = batch["lengths"].numel()
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=B)
        # nothing to learn (RightBranching): returning None makes Lightning skip the step
        return loss if loss.requires_grad else None

    def _eval_step(self, batch: dict[str, Tensor], split: str) -> None:
        scores = self.net(batch)
        pred = self._decode(scores, batch["lengths"])
        loss, rel_logits = self._loss(batch, scores, pred)
        B = batch["lengths"].numel()
        gold, mask, punct = batch["heads"], batch["word_mask"], batch["punct"]
        self.log(f"{split}/loss", loss, on_epoch=True, batch_size=B)
        uas = getattr(self, f"{split}_uas")
        uas.update(pred, gold, mask, punct)
        self.log(f"{split}/uas", uas, on_epoch=True, batch_size=B, prog_bar=split == "val")
        if rel_logits is not None:
            las = getattr(self, f"{split}_las")
            las.update(pred, gold, mask, punct, rel_logits.argmax(-1), batch["rels"])
            self.log(f"{split}/las", las, on_epoch=True, batch_size=B, prog_bar=split == "val")
        if split == "test":
            self.test_rel_uas.update(pred, gold, batch["rels"], mask, punct)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.test_rel_uas.reset()

    def per_relation_table(self) -> list[list]:
        """Rows ``[relation, uas, count]`` from the last test run, most frequent first."""
        if self.test_rel_uas.update_count == 0:
            return []
        rows = [[name, uas, n] for name, (uas, n) in self.test_rel_uas.compute().items() if n > 0]
        return sorted(rows, key=lambda row: -row[2])

    def configure_optimizers(self) -> torch.optim.Optimizer | None:
        params = [p for p in self.parameters() if p.requires_grad]
        return self.optimizer(params=params) if params else None
