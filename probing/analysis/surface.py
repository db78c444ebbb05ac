"""Surface-level attention statistics (paper §3, Figs. 2 and 4), accumulated over a stream.

Conventions (word-level maps, one sentence = ``T = n + 2`` tokens):
token 0 is the start token ([CLS] / <s>), tokens 1..n the words, token n+1 the end token
([SEP] / </s>); ``maps[k, i, j]`` is attention FROM i TO j.

Definitions (``rows`` = every token row 0..T-1 of every sentence, pooled over the corpus, so
longer sentences weigh more; the original averaged per document first, which is the same for
its fixed-length segments; ``include_special_rows=False`` keeps only word rows 1..n):

- ``start`` / ``end`` / ``punct``: mass a row puts on token 0 / token n+1 / the words whose text
  is exactly "." or ",", averaged over rows.
- ``self``: mass on i itself. ``prev``: mass from i on i-1, averaged over the rows that have a
  previous token (i >= 1); ``next``: mass from i on i+1, over rows with i <= T-2. Row 0 has no
  previous token and row T-1 no next token, so they are left out of those averages only.
- ``sep_sep``: mass the end-token row puts on the end token, averaged over sentences. Our
  sequences hold one end token, so this is the paper's "[SEP] rows on [SEP] tokens" share.
  ``rest_sep``: mass the other rows put on the end token (the original's "rest_sep").
- ``entropy``: row entropy in nats after the original's smoothing ``0.9999*A + 0.0001/T``,
  averaged over rows; ``uniform_entropy`` is the row mean of ``log T`` (the uniform reference).
- ``cls_entropy``: entropy of the start-token row (smoothed the same way), averaged over
  sentences; ``cls_entropy_layer`` is its per-layer mean over heads (paper: 3.89 in the last
  layer of BERT-base).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure

from probing.analysis._common import as_maps

PUNCT_WORDS = frozenset({".", ","})
# the original notebook smooths with 0.9999*A + 0.0001/T before taking logs
ENTROPY_SMOOTHING = 1e-4

ROW_KEYS = ("start", "end", "punct", "self", "prev", "next", "rest_sep", "entropy")


def _entropy(rows: np.ndarray, eps: float = ENTROPY_SMOOTHING) -> np.ndarray:
    """(..., T) attention rows -> (...) entropy in nats of ``(1-eps)*A + eps/T``."""
    p = (1.0 - eps) * rows + eps / rows.shape[-1]
    return -(p * np.log(p)).sum(-1)


class SurfaceAccumulator:
    """Streaming sums for :func:`surface_stats`; memory is ``O(K)`` whatever the corpus size."""

    def __init__(self, num_layers: int, num_heads: int, include_special_rows: bool = True):
        self.num_layers, self.num_heads = num_layers, num_heads
        self.include_special_rows = include_special_rows
        k = num_layers * num_heads
        self.sums = {key: np.zeros(k) for key in (*ROW_KEYS, "sep_sep", "cls_entropy")}
        self.counts = dict.fromkeys(self.sums, 0)
        self.uniform_sum = 0.0

    def update(self, maps, sentence) -> None:
        """Add one sentence: ``maps`` (K, T, T), ``sentence`` with n = T - 2 words."""
        a = as_maps(maps, len(sentence))
        k, t, _ = a.shape
        if k != self.num_layers * self.num_heads:
            raise ValueError(f"maps hold {k} heads, expected {self.num_layers}x{self.num_heads}")
        rows = np.arange(t) if self.include_special_rows else np.arange(1, t - 1)
        r = a[:, rows]  # (K, R, T)
        punct = 1 + np.flatnonzero([w in PUNCT_WORDS for w in sentence.words])
        prev_rows, next_rows = rows[rows >= 1], rows[rows <= t - 2]
        rest_rows = rows[rows != t - 1]
        add = {
            "start": (r[:, :, 0].sum(1), len(rows)),
            "end": (r[:, :, t - 1].sum(1), len(rows)),
            "punct": (r[:, :, punct].sum((1, 2)), len(rows)),
            "self": (a[:, rows, rows].sum(1), len(rows)),
            "prev": (a[:, prev_rows, prev_rows - 1].sum(1), len(prev_rows)),
            "next": (a[:, next_rows, next_rows + 1].sum(1), len(next_rows)),
            "rest_sep": (a[:, rest_rows, t - 1].sum(1), len(rest_rows)),
            "entropy": (_entropy(r).sum(1), len(rows)),
            "sep_sep": (a[:, t - 1, t - 1], 1),
            "cls_entropy": (_entropy(a[:, 0]), 1),
        }
        for key, (total, count) in add.items():
            self.sums[key] += total
            self.counts[key] += count
        self.uniform_sum += len(rows) * np.log(t)

    def result(self) -> dict:
        """Averages as ``(L, H)`` arrays, plus ``cls_entropy_layer`` (L,) and scalar counts."""
        if self.counts["start"] == 0:
            raise ValueError("no sentences were accumulated")
        shape = (self.num_layers, self.num_heads)
        out = {
            key: (self.sums[key] / max(self.counts[key], 1)).reshape(shape) for key in self.sums
        }
        out["cls_entropy_layer"] = out["cls_entropy"].mean(1)
        out["uniform_entropy"] = self.uniform_sum / self.counts["entropy"]
        out["num_rows"] = self.counts["start"]
        out["num_sentences"] = self.counts["sep_sep"]
        return out


def surface_stats(
    pairs: Iterable, num_layers: int, num_heads: int, include_special_rows: bool = True
) -> dict:
    """Average attention per head over a stream of ``(maps (K, T, T), Sentence)`` pairs.

    Returns a dict of ``(L, H)`` arrays (``start``, ``end``, ``punct``, ``self``, ``prev``,
    ``next``, ``sep_sep``, ``rest_sep``, ``entropy``, ``cls_entropy``), ``cls_entropy_layer``
    ``(L,)``, ``uniform_entropy`` (float), ``num_rows`` and ``num_sentences``. See the module
    docstring for the exact row sets.
    """
    acc = SurfaceAccumulator(num_layers, num_heads, include_special_rows)
    for maps, sentence in pairs:
        acc.update(maps, sentence)
    return acc.result()


def _layer_panel(ax, stats: dict, keys: dict) -> None:
    """Per-head dots and per-layer mean lines, one colour per statistic."""
    num_layers, num_heads = stats["start"].shape
    layers = np.arange(1, num_layers + 1)
    for (key, label), colour in zip(keys.items(), ("C0", "C1", "C2", "C3")):
        vals = stats[key]
        ax.scatter(np.repeat(layers, num_heads), vals.ravel(), s=8, color=colour, alpha=0.4)
        ax.plot(layers, vals.mean(1), color=colour, marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("avg. attention")
    ax.set_xticks(layers)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)


def plot_surface(stats: dict, path, start_name: str = "[CLS]", end_name: str = "[SEP]") -> None:
    """Fig. 2: per-layer average attention to special tokens / punctuation, and to positions."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    _layer_panel(ax1, stats, {"start": start_name, "end": end_name, "punct": ". or ,"})
    ax1.set_title("attention to tokens")
    _layer_panel(ax2, stats, {"prev": "previous token", "next": "next token", "self": "self"})
    ax2.set_title("attention to positions")
    fig.savefig(path, dpi=120)


def plot_entropy(stats: dict, path, start_name: str = "[CLS]") -> None:
    """Fig. 4: per-head entropy by layer against uniform attention, and from the start token."""
    num_layers, num_heads = stats["entropy"].shape
    layers = np.arange(1, num_layers + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for ax, key, title in (
        (ax1, "entropy", "avg. attention entropy"),
        (ax2, "cls_entropy", f"entropy of attention from {start_name}"),
    ):
        ax.scatter(np.repeat(layers, num_heads), stats[key].ravel(), s=8, alpha=0.5)
        ax.plot(layers, stats[key].mean(1), marker="o", color="C1", label="layer mean")
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.set_ylabel("nats")
        ax.set_xticks(layers)
    ax1.axhline(stats["uniform_entropy"], ls="--", color="k", label="uniform")
    ax1.legend(fontsize=8)
    fig.savefig(path, dpi=120)
