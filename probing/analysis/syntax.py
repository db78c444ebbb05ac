"""Table 1: the best single attention head per dependency relation vs fixed-offset baselines.

Defaults follow the released code (clarkkev/attention-analysis ``Syntax_Analysis.ipynb``); every
difference from the old behaviour is an option, so each can be measured.

Rules (word indices 0..n-1; attention restricted to the words, so special tokens are never
predicted, wherever the store's layout puts them; a word never predicts itself):

- ``pred[k, i]`` = the word that word i attends to most in head k.
- ``dep->head``: a dependent d is right when ``pred[k, d]`` is its gold head.
- ``head->dep``, ``head_dep_rule="column"`` (default; the released "transpose" mode): d's
  predicted head is the word that attends most TO d (argmax over column d).
  ``"head_row"``: d is right when its gold head attends most to d (``pred[k, head] == d``).
- Labels (:mod:`probing.analysis.labels`): ``label_level="exact"`` keeps full UD labels
  (``nmod:poss`` is the paper's ``poss``); ``"base"`` folds subtypes into their base.
- Words attached to ROOT count in the "All" row (heads never predict ROOT) and in no relation
  row; ``root`` and ``punct`` rows are dropped, and rows under ``min_count`` instances, as in
  the released code.
- Offset baseline ``o`` in ``offsets`` (default -3..+3, PAPER.md's; the released code used
  -3..+2): d predicts word ``d + o``. Out of the sentence counts as wrong; with
  ``offset_clip=True`` the prediction is clipped to the sentence as in the released code
  (``max(0, min(d + o, n))`` over ROOT + words: before the first word is ROOT, after the last
  word is the last word).
- Possessives (``nmod:poss`` / SD ``poss``) followed by a clitic are scored from the clitic's
  prediction in every predictor and baseline, as in the released code (BERT attends from 's to
  the possessee). The clitics are the released code's, ``'s`` and ``s'`` (``clitics``; UD writes a
  plural possessive as a bare ``'``, which the wider set ``'s s' ' ’s ’`` also takes). With
  ``head_row`` the head attending most to the clitic also counts. ``poss_clitic=False`` turns
  this off.
- Ties in argmax go to the earlier word, the earlier head, and dep->head. A word whose row (or
  column) holds no mass on any other word (float16 underflow) predicts nothing (wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from matplotlib.figure import Figure

from probing.analysis import labels, paper
from probing.analysis._common import BOTH, as_maps, head_name, token_labels
from probing.analysis.base import Context, Section, layout_of
from probing.attention.layout import Layout

DIRECTIONS = ("dep->head", "head->dep")
ALL = labels.ALL
EXCLUDED = frozenset({"root", "punct"})
POSS_LABELS = frozenset({"nmod:poss", "poss"})
RELEASED_CLITICS = ("'s", "s'")  # Syntax_Analysis.ipynb: words[i + 1] == "'s" or words[i + 1] == "s'"
HEAD_DEP_RULES = ("column", "head_row")
OFFSETS = (-3, -2, -1, 0, 1, 2, 3)


@dataclass
class SyntaxResult:
    """Per-relation accuracies; rows follow ``relations`` ("All" first, then by count)."""

    relations: list[str]
    counts: np.ndarray  # (R,)
    accuracy: np.ndarray  # (R, 2, K) per direction (DIRECTIONS) and flat head
    baseline: np.ndarray  # (R, O) per offset
    offsets: list[int]
    num_heads: int
    reachable: np.ndarray | None = None  # (R, 2) share of instances a causal model could score, per direction
    table: list[dict] = field(default_factory=list)

    @property
    def matrix(self) -> np.ndarray:
        """(R, K) accuracy of each head in its better direction, for the heatmap."""
        return self.accuracy.max(1)


@dataclass
class WordScores:
    """One sentence's per-word results under the module rules, before they are counted."""

    names: np.ndarray  # (n,) relation name of each word (label_level, label_names applied)
    correct: np.ndarray  # (2, K, n) bool: word right in each direction (DIRECTIONS) and head
    reach: np.ndarray  # (2, n) bool: gold head on the side each direction sees (causal bound)
    base: np.ndarray  # (O, n) bool: right under each offset baseline


def _argmax_or_none(scores: np.ndarray, axis: int) -> np.ndarray:
    """Argmax over ``axis``; -2 (matches no word and not ROOT) where nothing there has mass."""
    return np.where(scores.max(axis) > 0, scores.argmax(axis), -2)


class RelationAccumulator:
    """Streaming correct-counts per relation, direction, head and offset."""

    def __init__(
        self,
        num_heads_total: int,
        num_heads: int,
        layout: Layout = BOTH,
        *,
        label_level: str = "exact",
        label_names: str = "ud",
        offsets: Iterable[int] = OFFSETS,
        offset_clip: bool = False,
        head_dep_rule: str = "column",
        poss_clitic: bool = True,
        clitics: Iterable[str] = RELEASED_CLITICS,
    ):
        if head_dep_rule not in HEAD_DEP_RULES:
            raise ValueError(f"head_dep_rule must be one of {HEAD_DEP_RULES}, not {head_dep_rule!r}")
        labels.check(label_level, label_names)
        if num_heads_total % num_heads:
            raise ValueError(f"{num_heads_total} heads are not layers of {num_heads}")
        self.k, self.num_heads, self.layout = num_heads_total, num_heads, layout
        self.label_level, self.label_names = label_level, label_names
        self.offsets, self.offset_clip = np.array(list(offsets)), offset_clip
        self.head_dep_rule, self.poss_clitic, self.clitics = head_dep_rule, poss_clitic, list(clitics)
        self.n: dict[str, int] = {}
        self.heads: dict[str, np.ndarray] = {}  # (2, K) correct counts
        self.base: dict[str, np.ndarray] = {}  # (O,) correct counts
        self.reach: dict[str, np.ndarray] = {}  # (2,) instances whose head lies on that direction's side

    def score(self, maps, sentence) -> WordScores | None:
        """One parsed sentence's per-word results (None without a parse); ``maps`` is (K, T, T)
        with ``T = layout.num_tokens(n)``. :meth:`update` counts exactly these."""
        if sentence.heads is None or sentence.rels is None:
            return None
        n = len(sentence)
        a = as_maps(maps, n, self.layout, dtype=np.float32)
        if a.shape[0] != self.k:
            raise ValueError(f"maps hold {a.shape[0]} heads, expected {self.k}")
        idx = np.arange(n)
        words = self.layout.words(n)
        w = a[:, words, words]  # (K, n, n) word-to-word
        w[:, idx, idx] = -np.inf
        pred = _argmax_or_none(w, -1)  # (K, n) the word each word attends to most
        gold = np.asarray(sentence.heads) - 1  # (n,) 0-based, -1 = ROOT
        has_head = gold >= 0

        src = idx.copy()  # whose prediction scores each word (the clitic for possessives)
        clitic = np.zeros(n, dtype=bool)
        if self.poss_clitic:
            nxt = [sentence.words[i + 1].lower() if i + 1 < n else "" for i in range(n)]
            clitic = np.array([r in POSS_LABELS for r in sentence.rels]) & np.isin(nxt, self.clitics)
            src[clitic] += 1

        dep_head = pred[:, src] == gold  # pred is never ROOT (-1), so ROOT-attached words are wrong
        if self.head_dep_rule == "column":
            attended_by = _argmax_or_none(w, 1)  # (K, n) the word attending most to each word
            head_dep = attended_by[:, src] == gold
        else:
            chosen = pred[:, np.where(has_head, gold, 0)]  # what each word's gold head attends to most
            head_dep = ((chosen == idx) | (clitic & (chosen == idx + 1))) & has_head
        correct = np.stack([dep_head, head_dep])  # (2, K, n)
        # a causal model attends only leftwards: dep->head can score a head before the word that
        # predicts, head->dep one after it; this bounds what any head of such a model can reach
        reach = np.stack([has_head & (gold < src), has_head & (gold > src)])  # (2, n)
        target = src[None] + self.offsets[:, None]  # (O, n)
        if self.offset_clip:
            base = np.clip(target, -1, n - 1) == gold  # clipped to ROOT / the last word
        else:
            base = (target == gold) & (target >= 0)  # before the first word is out, not ROOT

        names = np.array([labels.relation_name(r, self.label_level, self.label_names) for r in sentence.rels])
        return WordScores(names, correct, reach, base)

    def update(self, maps, sentence) -> None:
        """Add one parsed sentence (a sentence without a parse is passed over)."""
        scores = self.score(maps, sentence)
        if scores is None:
            return
        names, correct, reach, base = scores.names, scores.correct, scores.reach, scores.base
        n = len(names)
        for name in (ALL, *np.unique(names)):
            sel = np.ones(n, dtype=bool) if name == ALL else names == name
            if name not in self.n:
                self.n[name] = 0
                self.heads[name] = np.zeros((2, self.k))
                self.base[name] = np.zeros(len(self.offsets))
                self.reach[name] = np.zeros(2)
            self.n[name] += int(sel.sum())
            self.reach[name] += reach[:, sel].sum(-1)
            self.heads[name] += correct[:, :, sel].sum(-1)
            self.base[name] += base[:, sel].sum(-1)

    def result(self, relations: Sequence[str] | None = None, min_count: int = 100) -> SyntaxResult:
        """Table rows: "All", then ``relations`` (default: all but root/punct) by count."""
        if relations is None:
            relations = [r for r in self.n if r != ALL and r not in EXCLUDED]
        keep = [r for r in relations if r != ALL and self.n.get(r, 0) >= max(min_count, 1)]
        keep.sort(key=lambda r: (-self.n[r], r))
        rels = ([ALL] if self.n.get(ALL, 0) else []) + keep
        if not rels:
            raise ValueError("no parsed sentences were accumulated")
        counts = np.array([self.n[r] for r in rels])
        acc = np.stack([self.heads[r] for r in rels]) / counts[:, None, None]  # (R, 2, K)
        base = np.stack([self.base[r] for r in rels]) / counts[:, None]  # (R, O)
        reachable = np.stack([self.reach[r] for r in rels]) / counts[:, None]  # (R, 2)
        res = SyntaxResult(rels, counts, acc, base, self.offsets.tolist(), self.num_heads, reachable)
        for i, rel in enumerate(rels):
            d, k = np.unravel_index(np.argmax(acc[i]), acc[i].shape)
            o = int(np.argmax(base[i]))
            res.table.append(
                {
                    "relation": rel,
                    "count": int(counts[i]),
                    "head": head_name(int(k), self.num_heads),
                    "direction": DIRECTIONS[d],
                    "accuracy": float(acc[i, d, k]),
                    "baseline_offset": int(self.offsets[o]),
                    "baseline_accuracy": float(base[i, o]),
                    "reachable_dep_head": float(reachable[i, 0]),
                    "reachable_head_dep": float(reachable[i, 1]),
                }
            )
        return res


def relation_accuracies(
    pairs: Iterable,
    num_heads_total: int,
    relations: Sequence[str] | None = None,
    min_count: int = 100,
    *,
    num_heads: int,
    layout: Layout = BOTH,
    **options,
) -> SyntaxResult:
    """Table 1 over a stream of ``(maps (K, T, T), Sentence)`` pairs (see the module rules).

    ``num_heads`` (per layer) names heads ``"layer-head"``; ``options`` are
    :class:`RelationAccumulator`'s (label_level, label_names, offsets, offset_clip, head_dep_rule,
    poss_clitic). ``result.table`` holds one dict per row (relation, count, head, direction,
    accuracy, baseline_offset, baseline_accuracy); ``result.accuracy`` is (R, 2, K).
    """
    acc = RelationAccumulator(num_heads_total, num_heads, layout, **options)
    for maps, sentence in pairs:
        acc.update(maps, sentence)
    return acc.result(relations, min_count)


def plot_relation_heatmap(result: SyntaxResult) -> Figure:
    """Relation x head accuracy (better direction), heads grouped by layer along x."""
    mat = result.matrix
    r, k = mat.shape
    fig = Figure(figsize=(max(6, k / 10), 1 + 0.35 * r), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(mat, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(r), [f"{rel} ({n})" for rel, n in zip(result.relations, result.counts)])
    h = result.num_heads
    ax.set_xticks(np.arange(0, k, h) + (h - 1) / 2, [str(i + 1) for i in range(k // h)])
    for x in np.arange(h, k, h) - 0.5:
        ax.axvline(x, color="w", lw=0.5)
    ax.set_xlabel("layer (heads 1..H within each block)")
    fig.colorbar(im, ax=ax, label="accuracy")
    return fig


def paper_columns(relation: str, names: str) -> dict:
    """The paper's Table 1 numbers for a reported row (None where it has no twin there)."""
    p = paper.TABLE1.get(labels.paper_row(relation, names) or "")
    return {"paper_head": p[0] if p else None, "paper_acc": p[1] if p else None,
            "paper_baseline": p[2] if p else None, "paper_offset": p[3] if p else None}


@dataclass(kw_only=True)
class SyntaxJob:
    """§4, Table 1: best head per relation, both directions, against offset baselines."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["analysis.min_count=2"]  # the tiny dev split has 3 sentences
    min_count: int
    label_level: str  # or "base": fold nmod:poss into nmod etc. (the old behaviour)
    label_names: str  # or "sd": the paper's SD names where UD has a twin
    head_dep_rule: str  # or "head_row"
    offsets: list[int]
    offset_clip: bool  # true: the released code's clipping to the sentence
    poss_clitic: bool
    clitics: list[str]  # what follows a possessor to be scored from it
    num_examples: int

    def run(self, ctx: Context) -> Section:
        store, sentences = ctx.attention()
        H, K, layout = store.num_heads, store.num_maps, layout_of(store)
        res = relation_accuracies(
            store.pairs(sentences), K, min_count=self.min_count, num_heads=H, layout=layout,
            label_level=self.label_level, label_names=self.label_names, offsets=self.offsets,
            offset_clip=self.offset_clip, head_dep_rule=self.head_dep_rule, poss_clitic=self.poss_clitic,
            clitics=self.clitics)
        causal = ctx.encoder.family == "causal_lm"
        reach = ("reachable_dep_head", "reachable_head_dep")
        # only a causal model is bounded by word order; for an encoder the columns would say 100%
        rows = [{**{k: v for k, v in r.items() if k not in reach}, "accuracy": round(100 * r["accuracy"], 1),
                 "baseline_accuracy": round(100 * r["baseline_accuracy"], 1),
                 **({"d->h reachable": round(100 * r[reach[0]], 1), "h->d reachable": round(100 * r[reach[1]], 1)}
                    if causal else {}),
                 **paper_columns(r["relation"], self.label_names)} for r in res.table]
        text = ctx.writer.table("syntax_heads", rows, digits=1)
        figs = [ctx.writer.figure(plot_relation_heatmap(res), "syntax_heatmap")[0]]
        figs += self._examples(ctx, store, sentences, res.table, H, layout)
        summary = {"relations": len(rows), "all_accuracy": rows[0]["accuracy"] if rows else None,
                   "rows": {r["relation"]: {k: r[k] for k in ("count", "head", "direction", "accuracy",
                                                              "baseline_offset", "baseline_accuracy",
                                                              "d->h reachable", "h->d reachable") if k in r}
                            for r in rows}}
        clip = "clipped to the sentence" if self.offset_clip else "out of the sentence counted wrong"
        md = (f"Relations ({self.label_level} UD labels, {self.label_names} names) with at "
              f"least {self.min_count} instances; accuracy and baseline in %; heads `layer-head`, 1-indexed; "
              f"head->dep rule `{self.head_dep_rule}`; offsets {min(self.offsets)}..{max(self.offsets)} "
              f"({clip}). Paper columns: WSJ-SD dev, n/a where the paper has no twin of the row."
              + (" Causal attention looks only leftwards: `reachable` is the share of a relation's instances "
                 "whose head lies on the side each direction can see, an upper bound on its accuracy."
                 if causal else "") + f"\n\n{text}")
        return Section("Syntactic heads (§4, Table 1)", md, figs, summary)

    def _examples(self, ctx, store, sentences, table, H, layout) -> list[Path]:
        from probing.analysis.view import draw_heads

        # the best heads of the four most frequent relations; only "All" on a tiny corpus
        heads = list(dict.fromkeys(r["head"] for r in (table[1:5] or table[:1])))
        picks = [i for i in store.kept if 8 <= len(sentences[i]) <= 16][: self.num_examples]
        start, end = ctx.special_names(layout)
        paths = []
        for n, i in enumerate(picks):
            tokens = token_labels(sentences[i].words, layout, start, end)
            fig = draw_heads(store.maps(i), tokens, heads, num_heads=H)
            paths.append(ctx.writer.figure(fig, f"syntax_example_{n + 1}")[0])
        return paths
