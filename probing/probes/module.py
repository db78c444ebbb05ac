"""LightningModule that owns the probe's loss, decoding, metrics and optimizer."""

from __future__ import annotations

import functools

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from probing.probes.base import ProbeNet
from probing.probes.batch import ProbeBatch
from probing.probes.decode import DECODERS
from probing.probes.metrics import GoldSetAccuracy, PerLabelAccuracy

LOSSES = ("sentence_sum", "query_mean")


class ProbeModule(pl.LightningModule):
    """Trains a :class:`ProbeNet` to put its probability mass on each query's gold candidates.

    Loss per query: ``-log sum_{c in gold} p(c)`` (cross-entropy when the gold set is one
    candidate). ``loss="sentence_sum"`` sums it over each example's queries and averages over the
    batch's examples: the released code's loss at batch size 1; "query_mean" averages over the
    batch's queries (this code before issue 10).

    ``mask_self``: a query's own words are not candidates. The released probe left them in (a
    self-attachment is simply wrong); this code used to mask them.

    Metrics are named after the task: ``{split}/{metric}`` (``val/uas``, ``val/acc``) and, with
    ``predict_labels``, ``{split}/{labeled_metric}`` (``val/las``). ``include_punct`` counts every
    query, not only those the task scores. ``trees``: queries are a sentence's words and ROOT is a
    candidate, so MST decoding applies.

    With ``predict_labels`` a label classifier (MLP with one hidden layer) reads
    ``net.pair_features`` of the arc, i.e. only what the probe itself sees. It reads the first gold
    candidate's arc in training and the predicted one's at evaluation, so LAS is end to end.

    ``scheduler``: a partial learning-rate scheduler (e.g. ReduceLROnPlateau), stepped each epoch
    on the dev metric; None keeps the learning rate constant.

    A net with nothing to train (the rule baselines) has no arc loss: none is logged, and with no
    label classifier either, training steps are skipped and ``trainer.fit`` still runs validation.
    """

    def __init__(
        self,
        net: ProbeNet,
        optimizer: functools.partial,
        *,
        scheduler: functools.partial | None,
        decode: str,
        predict_labels: bool,
        include_punct: bool,
        mask_self: bool,
        loss: str,
        label_hidden_dim: int,
        num_labels: int = 0,
        label_names: list[str] | None = None,
        metric: str = "uas",
        labeled_metric: str | None = "las",
        trees: bool = True,
    ) -> None:
        super().__init__()
        # partials do not unpickle under torch's weights_only; the Hydra config records both
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        if decode not in DECODERS:
            raise ValueError(f"decode must be one of {sorted(DECODERS)}, got {decode!r}")
        if decode == "mst" and not trees:
            raise ValueError("decode=mst needs a task whose queries form a tree (dependencies)")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if predict_labels and (num_labels <= 0 or labeled_metric is None):
            raise ValueError("predict_labels needs a task with labels and num_labels > 0")
        if label_names is not None and num_labels and len(label_names) != num_labels:
            raise ValueError("label_names and num_labels disagree")
        self.net = net
        self.optimizer, self.scheduler = optimizer, scheduler
        self._decode = DECODERS[decode]
        self.learns_arcs = any(p.requires_grad for p in net.parameters())
        self.label_classifier = None
        if predict_labels:
            self.label_classifier = nn.Sequential(
                nn.Linear(net.pair_feature_dim, label_hidden_dim), nn.ReLU(), nn.Linear(label_hidden_dim, num_labels)
            )
        self.train_loss = MeanMetric()
        self.accuracy = nn.ModuleDict({split: GoldSetAccuracy() for split in ("val", "test")})
        self.labeled_accuracy = nn.ModuleDict({split: GoldSetAccuracy(labeled=True) for split in ("val", "test")})
        self.test_per_label = PerLabelAccuracy(label_names or [str(i) for i in range(num_labels)])

    def forward(self, batch: ProbeBatch) -> Tensor:
        """(B, Q, N+1) scores, -inf where a candidate is not one."""
        scores = self.net(batch)
        valid = batch.cand_mask
        if self.hparams.mask_self:
            valid = valid & ~batch.in_query
        return scores.masked_fill(~valid, float("-inf"))

    def _reduce(self, per_query: Tensor, batch_size: int) -> Tensor:
        if self.hparams.loss == "sentence_sum":
            return per_query.sum() / batch_size
        return per_query.mean()

    def _loss(self, batch: ProbeBatch, scores: Tensor, label_choice: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Arc (+ label) loss, None when nothing is learned from this batch; and (B, Q, L) label logits."""
        losses = []
        if self.learns_arcs:
            gold = batch.gold & torch.isfinite(scores)
            keep = batch.query_mask & gold.any(-1)  # a query whose gold is no candidate has no loss
            if keep.any():
                rows = scores[keep]  # rows before logsumexp: an all -inf padding row would give NaN grads
                nll = torch.logsumexp(rows, -1) - torch.logsumexp(rows.masked_fill(~gold[keep], float("-inf")), -1)
                losses.append(self._reduce(nll, len(batch)))
        logits = None
        if self.label_classifier is not None:
            logits = self.label_classifier(self.net.pair_features(batch, label_choice))
            known = batch.query_mask & (batch.labels >= 0)  # -1: a label outside the vocabulary
            if known.any():
                nll = F.cross_entropy(logits[known], batch.labels[known], reduction="none")
                losses.append(self._reduce(nll, len(batch)))
        return (sum(losses) if losses else None), logits

    def training_step(self, batch: ProbeBatch, batch_idx: int) -> Tensor | None:
        loss, _ = self._loss(batch, self(batch), batch.gold_index)
        if loss is None:
            # nothing to learn (a rule, or no query with a reachable gold): Lightning skips the step,
            # where a zero loss would still let Adam's momentum move the weights
            return None
        # self.log costs about 1 ms a call, a tenth of a one-sentence step (the paper's recipe): the
        # step's value only when Lightning writes one (every log_every_n_steps), the epoch's mean
        # through a metric
        self.train_loss.update(loss.detach(), len(batch))
        if self.trainer._logger_connector.should_update_logs:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=len(batch))
        return loss

    def on_train_epoch_end(self) -> None:
        if self.train_loss.update_count:
            self.log("train/loss", self.train_loss.compute(), on_epoch=True)
        self.train_loss.reset()

    def transfer_batch_to_device(self, batch: ProbeBatch, device: torch.device, dataloader_idx: int) -> ProbeBatch:
        # Lightning's own walk over a dataclass deep-copies it: another millisecond a batch
        return batch.to(device)

    def _eval_step(self, batch: ProbeBatch, split: str) -> None:
        scores = self(batch)
        pred = self._decode(scores, batch.lengths)
        loss, logits = self._loss(batch, scores, pred)
        B = len(batch)
        if loss is not None:
            self.log(f"{split}/loss", loss, on_epoch=True, batch_size=B)
        counted = batch.query_mask if self.hparams.include_punct else batch.scored
        accuracy = self.accuracy[split]
        accuracy.update(pred, batch.gold, counted)
        self.log(f"{split}/{self.hparams.metric}", accuracy, on_epoch=True, batch_size=B, prog_bar=split == "val")
        if logits is not None:
            labeled = self.labeled_accuracy[split]
            labeled.update(pred, batch.gold, counted, logits.argmax(-1), batch.labels)
            self.log(f"{split}/{self.hparams.labeled_metric}", labeled, on_epoch=True, batch_size=B,
                     prog_bar=split == "val")
        if split == "test" and self.hparams.num_labels:
            self.test_per_label.update(pred, batch.gold, batch.labels, counted)

    def validation_step(self, batch: ProbeBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ProbeBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.test_per_label.reset()

    def per_label_table(self) -> list[list]:
        """Rows ``[label, accuracy, count]`` from the last test run, most frequent first."""
        if self.test_per_label.update_count == 0:
            return []
        rows = [[name, acc, n] for name, (acc, n) in self.test_per_label.compute().items() if n > 0]
        return sorted(rows, key=lambda row: -row[2])

    def configure_optimizers(self) -> torch.optim.Optimizer | dict | None:
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return None
        optimizer = self.optimizer(params=params)
        if self.scheduler is None:
            return optimizer
        # stepped once per epoch on the dev metric (ReduceLROnPlateau reads it; others ignore it)
        return {"optimizer": optimizer, "lr_scheduler": {
            "scheduler": self.scheduler(optimizer=optimizer), "monitor": f"val/{self.hparams.metric}",
            "interval": "epoch", "frequency": 1}}
