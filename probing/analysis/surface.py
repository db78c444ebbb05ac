"""Surface-level attention statistics (paper §3, Figs. 2 and 4), accumulated over a stream.

Conventions: ``maps[k, i, j]`` (K, T, T) is attention FROM token i TO token j; where the words and
the special tokens sit is the store's :class:`~probing.attention.layout.Layout` (BERT: start and
end token, Gemma: start only, SmolLM2: none).

Definitions (``rows`` = every token row of every sentence, pooled over the corpus, so longer
sentences weigh more; the original averaged per document first, which is the same for its
fixed-length segments; ``include_special_rows=False`` keeps only the word rows):

- ``start`` / ``end`` / ``punct``: mass a row puts on the start token / the end token / the words
  whose text is exactly "." or ",", averaged over rows.
- ``self``: mass on i itself. ``prev``: mass from i on i-1, averaged over the rows that have a
  previous token (i >= 1); ``next``: mass from i on i+1, over rows with i <= T-2. The first row
  has no previous token and the last no next one, so they are left out of those averages only.
- ``sep_sep``: mass the end-token row puts on the end token, averaged over sentences (our
  sequences hold one end token, so this is the paper's "[SEP] rows on [SEP] tokens").
  ``rest_sep``: mass the other rows put on the end token (the original's "rest_sep").
- ``entropy``: row entropy in nats after the original's smoothing ``0.9999*A + 0.0001/T``,
  averaged over rows; ``uniform_entropy`` is the row mean of ``log T`` (the uniform reference).
- ``uniform_share``: the row mean of what uniform attention puts on one token (1/T; in a causal
  model 1/(i+1) for row i): the control a sink's share is set against.
- ``cls_entropy``: entropy of the start-token row (smoothed the same way), averaged over
  sentences; ``cls_entropy_layer`` is its per-layer mean over heads (paper: 3.89 in the last
  layer of BERT-base).

A statistic about a token the layout lacks (``start`` and ``cls_entropy`` without a start token;
``end``, ``sep_sep`` and ``rest_sep`` without an end token) is ``None`` in the result: missing,
never 0. ``first`` is the mass on token 0 whatever it is: the start token where there is one, else
the first word. In a causal LM that is the attention sink, the part [CLS] and [SEP] play in BERT.
In a causal LM (``causal=True``) a token cannot attend to the next one, so ``next`` is ``None``
(impossible) rather than a 0 that would read as a finding; and the first position's row is left
out of every row statistic (and ``cls_entropy`` is ``None``): it can attend to nothing but
itself, so its 1.0 on token 0 is forced by the mask, not chosen, and would inflate the sink share
(SmolLM2 layer 12: 0.151 with it, 0.078 without).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import ClassVar

import numpy as np
from matplotlib.figure import Figure

from probing.analysis import paper
from probing.analysis._common import BOTH, as_maps, head_name
from probing.analysis.base import Context, Section, layout_of
from probing.attention.layout import Layout

PUNCT_WORDS = frozenset({".", ","})
# the original notebook smooths with 0.9999*A + 0.0001/T before taking logs
ENTROPY_SMOOTHING = 1e-4

START_KEYS = ("start", "cls_entropy")
END_KEYS = ("end", "sep_sep", "rest_sep")
ROW_KEYS = ("first", "punct", "self", "prev", "next", "entropy")


def _entropy(rows: np.ndarray, eps: float = ENTROPY_SMOOTHING) -> np.ndarray:
    """(..., T) attention rows -> (...) entropy in nats of ``(1-eps)*A + eps/T``."""
    p = (1.0 - eps) * rows + eps / rows.shape[-1]
    return -(p * np.log(p)).sum(-1)


class SurfaceAccumulator:
    """Streaming sums for :func:`surface_stats`; memory is ``O(K)`` whatever the corpus size."""

    def __init__(self, num_layers: int, num_heads: int, layout: Layout = BOTH,
                 include_special_rows: bool = True, causal: bool = False):
        self.num_layers, self.num_heads = num_layers, num_heads
        self.layout, self.include_special_rows = layout, include_special_rows
        row_keys = tuple(k for k in ROW_KEYS if not (causal and k == "next"))
        start_keys = tuple(k for k in START_KEYS if not (causal and k == "cls_entropy"))  # a forced row
        keys = row_keys + (start_keys if layout.start else ()) + (END_KEYS if layout.end else ())
        self.causal = causal
        k = num_layers * num_heads
        self.sums = {key: np.zeros(k) for key in keys}
        self.counts = dict.fromkeys(self.sums, 0)
        self.uniform_sum = self.uniform_share_sum = 0.0
        self.num_rows = self.num_sentences = 0

    def update(self, maps, sentence) -> None:
        """Add one sentence: ``maps`` (K, T, T), ``sentence`` with ``layout.num_words(T)`` words."""
        n, lay = len(sentence), self.layout
        a = as_maps(maps, n, lay)
        k, t, _ = a.shape
        if k != self.num_layers * self.num_heads:
            raise ValueError(f"maps hold {k} heads, expected {self.num_layers}x{self.num_heads}")
        words = np.arange(t)[lay.words(n)]
        rows = np.arange(t) if self.include_special_rows else words
        if self.causal:  # the first position's row is forced onto itself (see the module docstring)
            rows = rows[rows != 0]
        r = a[:, rows]  # (K, R, T)
        punct = words[[w in PUNCT_WORDS for w in sentence.words]]
        prev_rows, next_rows = rows[rows >= 1], rows[rows <= t - 2]
        add = {
            "first": (r[:, :, 0].sum(1), len(rows)),
            "punct": (r[:, :, punct].sum((1, 2)), len(rows)),
            "self": (a[:, rows, rows].sum(1), len(rows)),
            "prev": (a[:, prev_rows, prev_rows - 1].sum(1), len(prev_rows)),
            "next": (a[:, next_rows, next_rows + 1].sum(1), len(next_rows)),
            "entropy": (_entropy(r).sum(1), len(rows)),
        }
        if lay.start:
            s = lay.start_index
            add["start"] = (r[:, :, s].sum(1), len(rows))
            if not self.causal:
                add["cls_entropy"] = (_entropy(a[:, s]), 1)
        if lay.end:
            e = lay.end_index(n)
            rest = rows[rows != e]
            add["end"] = (r[:, :, e].sum(1), len(rows))
            add["sep_sep"] = (a[:, e, e], 1)
            add["rest_sep"] = (a[:, rest, e].sum(1), len(rest))
        for key, (total, count) in add.items():
            if key not in self.sums:  # "next" in a causal model
                continue
            self.sums[key] += total
            self.counts[key] += count
        self.uniform_sum += len(rows) * np.log(t)
        # what attention spread evenly would put on any one token: 1 / the keys a row can attend
        self.uniform_share_sum += float(np.sum(1.0 / ((rows + 1) if self.causal else np.full(len(rows), t))))
        self.num_rows += len(rows)
        self.num_sentences += 1

    def result(self) -> dict:
        """Averages as ``(L, H)`` arrays (None where the layout lacks the token), plus
        ``cls_entropy_layer`` (L,) or None, ``uniform_entropy``, ``num_rows``, ``num_sentences``."""
        if self.num_sentences == 0:
            raise ValueError("no sentences were accumulated")
        shape = (self.num_layers, self.num_heads)
        out = dict.fromkeys(ROW_KEYS + START_KEYS + END_KEYS)
        for key, total in self.sums.items():
            # a statistic with no rows at all (one-word sentences have no prev row without specials)
            # is missing too
            out[key] = (total / self.counts[key]).reshape(shape) if self.counts[key] else None
        out["cls_entropy_layer"] = None if out["cls_entropy"] is None else out["cls_entropy"].mean(1)
        out["uniform_entropy"] = self.uniform_sum / self.num_rows
        out["uniform_share"] = self.uniform_share_sum / self.num_rows
        out["num_rows"] = self.num_rows
        out["num_sentences"] = self.num_sentences
        return out


def surface_stats(pairs: Iterable, num_layers: int, num_heads: int, layout: Layout = BOTH,
                  include_special_rows: bool = True, causal: bool = False) -> dict:
    """Average attention per head over a stream of ``(maps (K, T, T), Sentence)`` pairs.

    Returns a dict of ``(L, H)`` arrays (``first``, ``start``, ``end``, ``punct``, ``self``,
    ``prev``, ``next``, ``sep_sep``, ``rest_sep``, ``entropy``, ``cls_entropy``; None where
    ``layout`` lacks the token, and ``next`` when ``causal``), ``cls_entropy_layer`` ``(L,)``,
    ``uniform_entropy`` (float), ``num_rows`` and ``num_sentences``. See the module docstring.
    """
    acc = SurfaceAccumulator(num_layers, num_heads, layout, include_special_rows, causal)
    for maps, sentence in pairs:
        acc.update(maps, sentence)
    return acc.result()


def _layer_panel(ax, stats: dict, keys: dict) -> None:
    """Per-head dots and per-layer mean lines, one colour per statistic; missing ones are left out."""
    num_layers, num_heads = stats["self"].shape
    layers = np.arange(1, num_layers + 1)
    for (key, label), colour in zip(keys.items(), ("C0", "C1", "C2", "C3")):
        vals = stats[key]
        if vals is None:
            continue
        ax.scatter(np.repeat(layers, num_heads), vals.ravel(), s=8, color=colour, alpha=0.4)
        ax.plot(layers, vals.mean(1), color=colour, marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel("avg. attention")
    ax.set_xticks(layers)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)


def plot_surface(stats: dict, start_name: str | None = "[CLS]", end_name: str | None = "[SEP]") -> Figure:
    """Fig. 2: per-layer average attention to special tokens / punctuation, and to positions."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    # without a start token, the first word is where a causal LM's spare attention goes
    sink = {"start": start_name} if stats["start"] is not None else {"first": "first word (sink)"}
    _layer_panel(ax1, stats, {**sink, "end": end_name, "punct": ". or ,"})
    ax1.set_title("attention to tokens")
    _layer_panel(ax2, stats, {"prev": "previous token", "next": "next token", "self": "self"})
    ax2.set_title("attention to positions")
    return fig


def plot_entropy(stats: dict, start_name: str | None = "[CLS]") -> Figure:
    """Fig. 4: per-head entropy by layer against uniform attention, and from the start token
    (that panel only where the layout has a start token)."""
    num_layers, num_heads = stats["entropy"].shape
    layers = np.arange(1, num_layers + 1)
    panels = [("entropy", "avg. attention entropy")]
    if stats["cls_entropy"] is not None:
        panels.append(("cls_entropy", f"entropy of attention from {start_name}"))
    fig = Figure(figsize=(5 * len(panels), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (key, title) in zip(axes, panels):
        ax.scatter(np.repeat(layers, num_heads), stats[key].ravel(), s=8, alpha=0.5)
        ax.plot(layers, stats[key].mean(1), marker="o", color="C1", label="layer mean")
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.set_ylabel("nats")
        ax.set_xticks(layers)
    axes[0].axhline(stats["uniform_entropy"], ls="--", color="k", label="uniform")
    axes[0].legend(fontsize=8)
    return fig


def _mean(stats: dict, key: str, layer: int) -> float | None:
    return None if stats[key] is None else float(stats[key][layer].mean())


@dataclass(kw_only=True)
class SurfaceJob:
    """§3: attention to the start/end tokens, punctuation, self, previous/next token; entropy."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = []
    max_sentences: int | None
    include_special_rows: bool

    def run(self, ctx: Context) -> Section:
        store, sentences = ctx.attention()
        L, H, layout = store.num_layers, store.num_heads, layout_of(store)
        pairs = islice(store.pairs(sentences), self.max_sentences)
        causal = ctx.encoder.family == "causal_lm"
        stats = surface_stats(pairs, L, H, layout, self.include_special_rows, causal)
        start, end = ctx.special_names(layout)
        keys = ["first", "start", "end", "punct", "self", "prev", "next", "entropy", "sep_sep", "cls_entropy"]
        per_head = [{"head": head_name(l * H + h, H), "layer": l + 1,
                     **{k: None if stats[k] is None else float(stats[k][l, h]) for k in keys}}
                    for l in range(L) for h in range(H)]
        ctx.writer.table("surface_heads", per_head)
        sink = {} if layout.start else {"to first word (sink)": None}
        start, end = start or "start token", end or "end token"
        # "impossible" rather than n/a: the model could not do it, it is no missing token
        nxt = (lambda l: "impossible (causal)") if causal else (lambda l: _mean(stats, "next", l))
        per_layer = [{"layer": l + 1, **{k: _mean(stats, "first", l) for k in sink},
                      f"to {start}": _mean(stats, "start", l), f"to {end}": _mean(stats, "end", l),
                      "to . ,": _mean(stats, "punct", l), "prev": _mean(stats, "prev", l),
                      "next": nxt(l), f"{end}->{end}": _mean(stats, "sep_sep", l),
                      "entropy": _mean(stats, "entropy", l), f"{start} entropy": _mean(stats, "cls_entropy", l)}
                     for l in range(L)]
        text = ctx.writer.table("surface_layers", per_layer)
        figs = [ctx.writer.figure(plot_surface(stats, start, end), "surface_by_layer")[0],
                ctx.writer.figure(plot_entropy(stats, start), "entropy")[0]]
        summary = {"sentences": stats["num_sentences"], "rows": stats["num_rows"], "layout": layout.describe(),
                   "family": ctx.encoder.family, "first_by_layer": stats["first"].mean(1),
                   "end_by_layer": None if stats["end"] is None else stats["end"].mean(1),
                   "end_to_end_by_layer": None if stats["sep_sep"] is None else stats["sep_sep"].mean(1),
                   "start_by_layer": None if stats["start"] is None else stats["start"].mean(1),
                   "uniform_entropy": float(stats["uniform_entropy"]), "uniform_share": float(stats["uniform_share"])}
        md = (f"Per-layer means over {stats['num_sentences']} sentences "
              f"({stats['num_rows']} token rows; special tokens: {layout.describe()}, n/a where the model "
              f"has no such token):\n\n{text}\n\nPaper: {paper.SURFACE_FINDINGS}")
        return Section("Surface statistics (§3)", md, figs, summary)
