"""Do heads link aspects to their opinion words? Best head per direction and sentiment on ASTE triplets.

Rules (words 0-based; a sentence's maps are ``(K, T, T)``, row = FROM, column = TO; the words are
found through the store's ``layout``, so no start or end token is assumed):

- Each distinct (aspect span A, opinion span O, sentiment) triplet of a sentence gives two pairs:
  ``aspect->opinion`` (source A, target O) and ``opinion->aspect`` (source O, target A). A
  triplet repeated on one line is scored once.
- A head's prediction for a source span is the word it attends to most from the span: the rows
  of the span's words averaged (as the word-level maps average a split word's pieces), special
  tokens and the span's own words excluded. It is right when it lies inside the target span. A
  row with no mass on any candidate (float16 underflow) predicts nothing, which is wrong. Ties go
  to the earlier word.
- A pair whose target lies wholly inside its source ("fresh mozzarella" -> "fresh") cannot be
  predicted once the source is excluded: it is left out of that direction and counted as
  ``unscorable``, for heads and baselines alike.
- Nearest-span baseline: the sentence's target-kind span (its opinion spans for aspect->opinion,
  its aspect spans for opinion->aspect) nearest the source, the distance being the smallest
  ``|i - j|`` over source word i and span word j (0 when they overlap); ties go to the span that
  starts first. Right when that span is the paired one.
- Offset baseline ``o`` in -3..-1, 1..3, relative to the source span's edges: ``o < 0`` predicts
  word ``first + o`` (left of the span), ``o > 0`` predicts ``last + o`` (right of it); outside
  the sentence is wrong. Right when the word lies in the target span. Like the best head, the
  best offset is chosen per direction and sentiment.
- Rows: "All" pairs and each sentiment (POS, NEG, NEU). The best head and offset are picked on
  the data they are scored on, as in the paper's Table 1; ties go to the earlier head and offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from probing.analysis._common import head_index, head_name
from probing.analysis.base import Context, Section
from probing.attention.layout import Layout
from probing.data.corpus import Corpus
from probing.data.sentence import SENTIMENTS, Sentence

DIRECTIONS = ("aspect->opinion", "opinion->aspect")
ALL = "All"
GROUPS = (ALL, *SENTIMENTS)
OFFSETS = (-3, -2, -1, 1, 2, 3)
ASPECT_COLOUR, OPINION_COLOUR, LINE_COLOUR = "#d95f02", "#1b9e77", "#1f5fbf"

Span = tuple[int, ...]


def word_maps(maps, n: int, layout: Layout) -> np.ndarray:
    """``(K, T, T)`` maps of an n-word sentence -> ``(K, n, n)`` float32 word-to-word block."""
    a = np.asarray(maps, dtype=np.float32)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[-1] != layout.num_tokens(n):
        raise ValueError(f"maps of shape {a.shape} do not fit {n} words in the {layout.describe()} layout")
    w = layout.words(n)
    return a[:, w, w]


def span_predictions(words: np.ndarray, source: Span) -> np.ndarray:
    """``(K, n, n)`` word maps -> ``(K,)`` each head's most-attended word outside ``source``; -1: none."""
    src = list(source)
    rows = words[:, src, :].mean(1)  # (K, n); fancy indexing copied, so masking is safe
    rows[:, src] = -np.inf
    return np.where(rows.max(-1) > 0, rows.argmax(-1), -1)


def span_distance(a: Span, b: Span) -> int:
    """Smallest word distance between two spans; 0 when they overlap."""
    return min(abs(i - j) for i in a for j in b)


def nearest_span(source: Span, candidates: Sequence[Span]) -> Span | None:
    """The candidate span nearest ``source``; ties go to the one that starts first."""
    return min(candidates, key=lambda c: (span_distance(source, c), c[0]), default=None)


def offset_predictions(source: Span, n: int, offsets: Sequence[int] = OFFSETS) -> np.ndarray:
    """``(O,)`` word each offset predicts from the span's edges (module rules); -1 outside the sentence."""
    p = np.array([source[0] + o if o < 0 else source[-1] + o for o in offsets])
    return np.where((p >= 0) & (p < n), p, -1)


@dataclass(frozen=True)
class PairScore:
    """One scored pair: which heads (``(K,)`` bool) and offsets (``(O,)`` bool) got it right."""

    direction: str
    sentiment: str
    heads: np.ndarray
    nearest: bool
    offsets: np.ndarray


def score_sentence(words: np.ndarray, sentence: Sentence, offsets: Sequence[int] = OFFSETS):
    """Score every pair of one sentence from its ``(K, n, n)`` word maps.

    Returns ``(scores, unscorable)``: a :class:`PairScore` per scorable pair and direction, and
    the number of unscorable pairs per direction (``{direction: count}``).
    """
    triplets = list(dict.fromkeys(sentence.triplets or []))
    spans = {"aspect": list(dict.fromkeys(t.aspect for t in triplets)),
             "opinion": list(dict.fromkeys(t.opinion for t in triplets))}
    scores, unscorable = [], dict.fromkeys(DIRECTIONS, 0)
    for t in triplets:
        for direction, source, target, kind in ((DIRECTIONS[0], t.aspect, t.opinion, "opinion"),
                                                (DIRECTIONS[1], t.opinion, t.aspect, "aspect")):
            if set(target) <= set(source):
                unscorable[direction] += 1
                continue
            gold = np.array(target)
            scores.append(PairScore(
                direction, t.sentiment,
                heads=np.isin(span_predictions(words, source), gold),
                nearest=nearest_span(source, spans[kind]) == target,
                offsets=np.isin(offset_predictions(source, len(sentence), offsets), gold),
            ))
    return scores, unscorable


@dataclass
class AspectOpinionResult:
    """Correct fractions per direction (``DIRECTIONS``) and group (``GROUPS``)."""

    counts: np.ndarray  # (2, G) scored pairs
    accuracy: np.ndarray  # (2, G, K) per head
    nearest: np.ndarray  # (2, G) nearest-span baseline
    offset_accuracy: np.ndarray  # (2, G, O) per offset
    offsets: list[int]
    num_heads: int
    unscorable: dict[str, int]
    sentences: int

    def best(self, d: int, g: int) -> dict:
        """Best head and best offset of direction ``d`` and group ``g`` (one table row)."""
        k, o = int(np.argmax(self.accuracy[d, g])), int(np.argmax(self.offset_accuracy[d, g]))
        return {"direction": DIRECTIONS[d], "sentiment": GROUPS[g], "pairs": int(self.counts[d, g]),
                "head": head_name(k, self.num_heads), "accuracy": float(self.accuracy[d, g, k]),
                "nearest_span": float(self.nearest[d, g]), "offset": self.offsets[o],
                "offset_accuracy": float(self.offset_accuracy[d, g, o])}

    def rows(self) -> list[dict]:
        """One row per direction and group that has pairs."""
        return [self.best(d, g) for d in range(len(DIRECTIONS)) for g in range(len(GROUPS)) if self.counts[d, g]]

    def head_rows(self) -> list[dict]:
        """Every head's accuracy on all pairs, both directions."""
        return [{"head": head_name(k, self.num_heads), **{d: float(self.accuracy[i, 0, k])
                                                          for i, d in enumerate(DIRECTIONS)}}
                for k in range(self.accuracy.shape[-1])]

    def summary(self) -> dict:
        """JSON-able ``{direction: {group: best row}}`` plus pair and sentence counts."""
        out = {d: {r["sentiment"]: {k: v for k, v in r.items() if k not in ("direction", "sentiment")}
                   for r in self.rows() if r["direction"] == d} for d in DIRECTIONS}
        return {**out, "unscorable": dict(self.unscorable), "sentences": self.sentences}


class PairAccumulator:
    """Streaming correct-counts per direction, group, head and offset: memory O(K)."""

    def __init__(self, num_maps: int, num_heads: int, layout: Layout, offsets: Iterable[int] = OFFSETS):
        self.k, self.num_heads, self.layout, self.offsets = num_maps, num_heads, layout, list(offsets)
        if 0 in self.offsets:
            raise ValueError("offset 0 would predict the span's own edge word; use offsets left or right of it")
        shape = (len(DIRECTIONS), len(GROUPS))
        self.n = np.zeros(shape, dtype=np.int64)
        self.heads = np.zeros((*shape, self.k), dtype=np.int64)
        self.nearest = np.zeros(shape, dtype=np.int64)
        self.offset = np.zeros((*shape, len(self.offsets)), dtype=np.int64)
        self.unscorable = dict.fromkeys(DIRECTIONS, 0)
        self.sentences = 0

    def update(self, maps, sentence: Sentence) -> None:
        """Add one sentence; ``maps`` is ``(K, T, T)``. Sentences without triplets are passed over."""
        if not sentence.triplets:
            return
        words = word_maps(maps, len(sentence), self.layout)
        if words.shape[0] != self.k:
            raise ValueError(f"maps hold {words.shape[0]} heads, expected {self.k}")
        scores, unscorable = score_sentence(words, sentence, self.offsets)
        for s in scores:
            d = DIRECTIONS.index(s.direction)
            for g in (0, GROUPS.index(s.sentiment)):
                self.n[d, g] += 1
                self.heads[d, g] += s.heads
                self.nearest[d, g] += s.nearest
                self.offset[d, g] += s.offsets
        for d, c in unscorable.items():
            self.unscorable[d] += c
        self.sentences += 1

    def result(self) -> AspectOpinionResult:
        if not self.n.any():
            raise ValueError("no scorable (aspect, opinion) pairs were accumulated")
        per = np.maximum(self.n, 1)  # empty groups stay 0 and are left out of the rows
        return AspectOpinionResult(self.n.copy(), self.heads / per[..., None], self.nearest / per,
                                   self.offset / per[..., None], self.offsets, self.num_heads,
                                   dict(self.unscorable), self.sentences)


def aspect_opinion_accuracies(pairs: Iterable, num_maps: int, num_heads: int, layout: Layout,
                              offsets: Iterable[int] = OFFSETS) -> AspectOpinionResult:
    """The module's rules over a stream of ``(maps (K, T, T), Sentence)`` pairs."""
    acc = PairAccumulator(num_maps, num_heads, layout, offsets)
    for maps, sentence in pairs:
        acc.update(maps, sentence)
    return acc.result()


def arcs_figure(panels: Sequence[tuple], head: str) -> Figure:
    """Fig. 5-style arcs, one panel per review, for one head.

    Each panel is ``(attn (T, T), labels (T,), aspect tokens, opinion tokens, title)``: a line
    from token i (left) to token j (right) with opacity ``attn[i, j]``; lines from aspect words
    and the aspect/opinion labels are coloured.
    """
    t_max = max(len(p[1]) for p in panels)
    fig = Figure(figsize=(3.2 * len(panels), 0.9 + 0.24 * t_max), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (attn, labels, aspect, opinion, title) in zip(axes, panels):
        t = len(labels)
        y = -np.arange(t, dtype=float)
        i, j = (x.ravel() for x in np.meshgrid(np.arange(t), np.arange(t), indexing="ij"))
        colours = np.zeros((t * t, 4))
        colours[:, :3] = to_rgb(LINE_COLOUR)
        colours[np.isin(i, list(aspect)), :3] = to_rgb(ASPECT_COLOUR)
        colours[:, 3] = np.clip(np.asarray(attn, dtype=float).ravel(), 0, 1)  # opacity carries the weight
        segments = np.stack([np.zeros(t * t), y[i], np.ones(t * t), y[j]], 1).reshape(-1, 2, 2)
        ax.add_collection(LineCollection(segments, colors=colours, lw=2))
        for yi, n, label in zip(y, range(t), labels):
            colour = ASPECT_COLOUR if n in aspect else OPINION_COLOUR if n in opinion else "black"
            weight = "bold" if colour != "black" else "normal"
            ax.text(-0.05, yi, label, ha="right", va="center", fontsize=8, color=colour, weight=weight)
            ax.text(1.05, yi, label, ha="left", va="center", fontsize=8, color=colour, weight=weight)
        ax.set_xlim(-0.8, 1.8)
        ax.set_ylim(-t_max + 0.5, 0.5)  # one row height across panels
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"aspect words (orange) and their opinion words (green), head {head}", fontsize=9)
    return fig


@dataclass(kw_only=True)
class AspectOpinionJob:
    """Aspect<->opinion heads on ASTE triplets (module rules), with nearest-span and offset baselines."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["data=tiny_triplets"]
    corpus: Corpus | None  # read when the run's data has no triplets (the YAML binds semeval14_triplets)
    num_examples: int

    def _corpus(self, ctx: Context) -> Corpus:
        if ctx.corpus.format == "triplets":
            return ctx.corpus
        if self.corpus is None:
            raise ValueError(f"analysis=aspect_opinion needs (aspect, opinion, sentiment) triplets; data "
                             f"{ctx.corpus.name} has none. Use data=semeval14_triplets (or data=tiny_triplets).")
        return self.corpus

    def run(self, ctx: Context) -> Section:
        corpus = self._corpus(ctx)
        store, sentences = ctx.attention(corpus=corpus)
        res = aspect_opinion_accuracies(store.pairs(sentences), store.num_maps, store.num_heads, store.layout)
        rows = [{**r, **{k: round(100 * r[k], 1) for k in ("accuracy", "nearest_span", "offset_accuracy")}}
                for r in res.rows()]
        text = ctx.writer.table("aspect_opinion", rows, digits=1)
        ctx.writer.table("aspect_opinion_heads", res.head_rows())
        summary = {"corpus": corpus.name, "split": ctx.split, **res.summary()}
        head = res.best(0, 0)["head"]
        figures = []
        panels = self._examples(ctx, store, sentences, head)
        if panels:
            figures.append(ctx.writer.figure(arcs_figure(panels, head), "aspect_opinion_examples")[0])
        skipped = ", ".join(f"{c} {d}" for d, c in res.unscorable.items() if c) or "none"
        md = (f"{res.sentences} reviews of `{corpus.name}` `{ctx.split}` with triplets. "
              "Accuracy and baselines in %: a head is right when the word it attends to most from the source "
              "span (the span's rows averaged, the span itself and special tokens excluded) lies in the paired "
              "span; `nearest_span` picks the sentence's nearest gold span of the target kind, `offset` is the "
              "best fixed offset from the span's edges. Pairs whose target lies inside the source are left "
              f"out ({skipped}).\n\n{text}")
        return Section("Aspect-opinion heads", md, figures, summary, corpus=corpus)

    def _examples(self, ctx: Context, store, sentences: list[Sentence], head: str) -> list[tuple]:
        """Up to ``num_examples`` short reviews where ``head`` finds an aspect's opinion word."""
        k, layout = head_index(head, store.num_heads), store.layout
        start, end = ctx.special_names(layout)
        short = [i for i in store.kept if sentences[i].triplets and 6 <= len(sentences[i]) <= 16]
        right, other = [], []
        for i in short:
            s = sentences[i]
            words = word_maps(store.maps(i), len(s), layout)
            pred = [span_predictions(words[k : k + 1], t.aspect)[0] for t in s.triplets]
            (right if any(p in t.opinion for p, t in zip(pred, s.triplets)) else other).append(i)
            if len(right) >= self.num_examples:
                break
        panels = []
        for i in (right + other)[: self.num_examples]:
            s = sentences[i]
            labels = ([start] if layout.start else []) + list(s.words) + ([end] if layout.end else [])
            aspect = {layout.word_token(w) for t in s.triplets for w in t.aspect}
            opinion = {layout.word_token(w) for t in s.triplets for w in t.opinion}
            attn = np.asarray(store.maps(i)[k], dtype=np.float32)  # (T, T), T = layout.num_tokens(n)
            panels.append((attn, labels, aspect, opinion, s.sent_id))
        return panels
