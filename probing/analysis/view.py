"""Pictures of single attention maps: Fig. 5-style line drawings and heatmaps (the interactive view
is the explorer, :mod:`probing.analysis.explorer`).

``maps`` is (K, T, T) for one sentence (FROM row i TO column j); ``tokens`` are its T labels, the
words with whatever special tokens the layout has (:func:`probing.analysis._common.token_labels`).
Heads are flat indices or ``"layer-head"`` strings (those need ``num_heads``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from probing.analysis._common import as_maps, head_index, head_name, token_labels
from probing.analysis.base import Context, Section
from probing.attention.layout import Layout
from probing.data.sentence import Sentence


def _check_tokens(tokens: Sequence[str], t: int) -> list[str]:
    tokens = [str(x) for x in tokens]
    if len(tokens) != t:
        raise ValueError(f"{len(tokens)} token labels do not fit maps over {t} tokens")
    return tokens


def _title(k: int, num_heads: int | None) -> str:
    return head_name(k, num_heads) if num_heads else f"head {k}"


def draw_heads(maps, tokens: Sequence[str], heads_to_draw: Sequence, *, num_heads: int | None = None) -> Figure:
    """One panel per head: tokens in two columns, a line from left i to right j, alpha = A[i, j]."""
    a = as_maps(maps)
    t = a.shape[-1]
    tokens = _check_tokens(tokens, t)
    ks = [head_index(h, num_heads) for h in heads_to_draw]
    fig = Figure(figsize=(2.4 * len(ks), 0.6 + 0.22 * t), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ks)))
    y = -np.arange(t, dtype=float)
    ii, jj = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
    segments = np.stack([np.zeros(t * t), y[ii.ravel()], np.ones(t * t), y[jj.ravel()]], 1)
    for ax, k in zip(axes, ks):
        colours = np.zeros((t * t, 4))
        colours[:, 2] = 0.7  # one blue, so the alpha channel alone carries the weight
        colours[:, 3] = np.clip(a[k].ravel(), 0, 1)
        ax.add_collection(LineCollection(segments.reshape(-1, 2, 2), colors=colours, lw=2))
        for yi, tok in zip(y, tokens):
            ax.text(-0.05, yi, tok, ha="right", va="center", fontsize=8)
            ax.text(1.05, yi, tok, ha="left", va="center", fontsize=8)
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylim(-t + 0.5, 0.5)
        ax.set_title(_title(k, num_heads), fontsize=9)
        ax.axis("off")
    return fig


def draw_heatmap(maps, tokens: Sequence[str], head, *, num_heads: int | None = None) -> Figure:
    """One head's (T, T) map as a heatmap: rows attend FROM, columns TO."""
    a = as_maps(maps)
    t = a.shape[-1]
    tokens = _check_tokens(tokens, t)
    k = head_index(head, num_heads)
    fig = Figure(figsize=(1.5 + 0.25 * t, 1.2 + 0.25 * t), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(a[k], cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(t), tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(t), tokens, fontsize=7)
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.set_title(_title(k, num_heads))
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def pick_heads(maps: np.ndarray, layout: Layout, num_heads: int) -> list[str]:
    """The heads that attend most to the previous token, the next token, the end token (the start
    token where there is no end token; neither: skipped) and the word itself, over the word rows."""
    k, t, _ = maps.shape
    n = layout.num_words(t)
    rows = np.arange(t)[layout.words(n)]
    scores = [maps[:, rows[rows >= 1], rows[rows >= 1] - 1].mean(1),
              maps[:, rows[rows <= t - 2], rows[rows <= t - 2] + 1].mean(1)]
    special = layout.end_index(n) if layout.end else layout.start_index
    if special is not None:
        scores.append(maps[:, rows, special].mean(1))
    scores.append(maps[:, rows, rows].mean(1))
    return list(dict.fromkeys(head_name(int(np.argmax(s)), num_heads) for s in scores if s.size))


@dataclass(kw_only=True)
class AttentionViewJob:
    """Word-level attention of one sentence: line drawings and heatmaps (PNG, SVG, PDF)."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = []
    sentence: str
    heads: list[str] | None  # "layer-head"; default: see pick_heads
    mode: str | None  # word-piece merge for "from"; None: the run's extract.mode

    def maps(self, ctx: Context) -> tuple[np.ndarray, list[str], Layout, int, int]:
        """``(maps (K, T, T), token labels, layout, num_layers, num_heads)`` of the sentence."""
        from probing.attention.extract import word_level_attention

        settings = ctx.extraction if self.mode is None else dataclasses.replace(ctx.extraction, mode=self.mode)
        words = self.sentence.split()
        (maps,), plan = word_level_attention(ctx.encoder, [Sentence(words=words, sent_id="view")], settings)
        if maps is None:
            raise ValueError(f"the view sentence is longer than the model reads: {self.sentence!r}")
        start, end = ctx.special_names(plan.layout)
        return maps, token_labels(words, plan.layout, start, end), plan.layout, plan.num_layers, plan.num_heads

    def run(self, ctx: Context) -> Section:
        maps, tokens, layout, L, H = self.maps(ctx)
        heads = self.heads or pick_heads(maps, layout, H)
        figs = [ctx.writer.figure(draw_heads(maps, tokens, heads, num_heads=H), "attention_heads")[0]]
        for h in heads:
            figs.append(ctx.writer.figure(draw_heatmap(maps, tokens, h, num_heads=H), f"attention_heatmap_{h}")[0])
        summary = {"sentence": self.sentence, "heads": heads, "layout": layout.describe()}
        md = (f"\"{self.sentence}\": heads {', '.join(heads)}. Browse every head offline with "
              "`analysis=explorer`.")
        return Section("Attention view", md, figs, summary)
