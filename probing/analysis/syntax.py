"""Table 1: the best single attention head per dependency relation vs fixed-offset baselines.

Rules (word indices 0..n-1 inside the sentence; attention restricted to words, so the start and
end tokens are never predicted; a word never predicts itself):

- ``pred[k, i]`` = the word that word i attends to most in head k.
- ``dep->head``: a dependent d is right when ``pred[k, d]`` is its gold head.
- ``head->dep`` (``head_dep_rule="head_row"``, default): d is right when its gold head h attends
  most to d, i.e. ``pred[k, h] == d``. ``"column"`` is the released code's ``transpose`` mode:
  d's predicted head is the word that puts the most attention on d.
- Words attached to ROOT count in the "All" row (as wrong: neither heads nor offsets predict
  ROOT) and in no per-relation row; ``root`` and ``punct`` rows are dropped, as in the paper.
- Offset baseline ``o``: d predicts word ``d + o``; out of the sentence counts as wrong (the
  original clipped to the sentence ends, which could "predict" ROOT for the first word).
- Possessives (``nmod:poss`` / SD ``poss``) followed by a clitic ('s, ', ’s, ’) are scored from
  the clitic's prediction, as in the original notebook (BERT attends from 's to the possessee);
  in ``head->dep`` the head attending most to the clitic also counts. ``poss_clitic=False``
  turns this off.
- Ties in argmax go to the earlier word, the earlier head, and dep->head. A word whose row puts
  no mass on any other word (possible after float16 underflow) predicts nothing (wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from probing.analysis._common import as_maps, head_name

DIRECTIONS = ("dep->head", "head->dep")
ALL = "All"
EXCLUDED = frozenset({"root", "punct"})
POSS_LABELS = frozenset({"nmod:poss", "poss"})
CLITICS = frozenset({"'s", "'", "’s", "’"})

# PAPER.md's SD -> UD map for reading UD trees with the paper's SD relation names
SD_TO_UD = {
    "dobj": "obj",
    "nn": "compound",
    "poss": "nmod:poss",
    "possessive": "case",
    "auxpass": "aux:pass",
    "nsubjpass": "nsubj:pass",
    "num": "nummod",
    "rcmod": "acl:relcl",
    "prt": "compound:prt",
    "neg": "advmod",
    "tmod": "obl:tmod",
}
# neg and possessive are left out of the inverse: UD advmod / case are mostly not SD neg /
# possessive, so relabelling all of them would be wrong
UD_TO_SD = {ud: sd for sd, ud in SD_TO_UD.items() if sd not in {"neg", "possessive"}}


def relation_name(full: str, label_map: dict | None) -> str:
    """Reported name of one UD label: ``label_map`` on the full then base label, else base."""
    base = full.split(":")[0]
    if label_map is None:
        return base
    return label_map.get(full, label_map.get(base, base))


@dataclass
class SyntaxResult:
    """Per-relation accuracies; rows follow ``relations`` ("All" first, then by count)."""

    relations: list[str]
    counts: np.ndarray  # (R,)
    accuracy: np.ndarray  # (R, 2, K) per direction (DIRECTIONS) and flat head
    baseline: np.ndarray  # (R, O) per offset
    offsets: list[int]
    num_heads: int
    table: list[dict] = field(default_factory=list)

    @property
    def matrix(self) -> np.ndarray:
        """(R, K) accuracy of each head in its better direction, for the heatmap."""
        return self.accuracy.max(1)


class RelationAccumulator:
    """Streaming correct-counts per relation, direction, head and offset."""

    def __init__(
        self,
        num_heads_total: int,
        num_heads: int,
        label_map: dict | None = None,
        offsets: Iterable[int] = range(-3, 4),
        head_dep_rule: str = "head_row",
        poss_clitic: bool = True,
    ):
        if head_dep_rule not in ("head_row", "column"):
            raise ValueError(f"head_dep_rule must be 'head_row' or 'column', not {head_dep_rule}")
        if num_heads_total % num_heads:
            raise ValueError(f"{num_heads_total} heads are not layers of {num_heads}")
        self.k, self.num_heads = num_heads_total, num_heads
        self.label_map, self.offsets = label_map, np.array(list(offsets))
        self.head_dep_rule, self.poss_clitic = head_dep_rule, poss_clitic
        self.n: dict[str, int] = {}
        self.heads: dict[str, np.ndarray] = {}  # (2, K) correct counts
        self.base: dict[str, np.ndarray] = {}  # (O,) correct counts

    def update(self, maps, sentence) -> None:
        """Add one parsed sentence; ``maps`` is (K, T, T) with T = n + 2."""
        if sentence.heads is None or sentence.rels is None:
            return
        n = len(sentence)
        a = as_maps(maps, n, dtype=np.float32)
        if a.shape[0] != self.k:
            raise ValueError(f"maps hold {a.shape[0]} heads, expected {self.k}")
        idx = np.arange(n)
        w = a[:, 1 : n + 1, 1 : n + 1]  # (K, n, n) word-to-word
        w[:, idx, idx] = -np.inf
        # a row with no mass on any other word (e.g. float16 underflow) predicts nothing,
        # rather than the first word by argmax's tie rule
        pred = np.where(w.max(-1) > 0, w.argmax(-1), -2)  # (K, n); -2 matches no word or ROOT
        gold = np.asarray(sentence.heads) - 1  # (n,) 0-based, -1 = ROOT
        has_head = gold >= 0
        head_of = np.where(has_head, gold, 0)

        src = idx.copy()  # whose prediction scores each word (the clitic for possessives)
        clitic = np.zeros(n, dtype=bool)
        if self.poss_clitic:
            nxt = [sentence.words[i + 1].lower() if i + 1 < n else "" for i in range(n)]
            clitic = np.array([r in POSS_LABELS for r in sentence.rels]) & np.isin(
                nxt, list(CLITICS)
            )
            src[clitic] += 1

        dep_head = (pred[:, src] == gold) & has_head
        if self.head_dep_rule == "head_row":
            chosen = pred[:, head_of]  # what each word's gold head attends to most
            head_dep = ((chosen == idx) | (clitic & (chosen == idx + 1))) & has_head
        else:
            # (K, n): the word attending most to each word
            attended_by = np.where(w.max(1) > 0, w.argmax(1), -2)
            head_dep = (attended_by[:, src] == gold) & has_head
        correct = np.stack([dep_head, head_dep])  # (2, K, n)
        base = (src[None] + self.offsets[:, None] == gold) & has_head  # (O, n)

        names = np.array([relation_name(r, self.label_map) for r in sentence.rels])
        for name in (ALL, *np.unique(names)):
            sel = np.ones(n, dtype=bool) if name == ALL else names == name
            if name not in self.n:
                self.n[name] = 0
                self.heads[name] = np.zeros((2, self.k))
                self.base[name] = np.zeros(len(self.offsets))
            self.n[name] += int(sel.sum())
            self.heads[name] += correct[:, :, sel].sum(-1)
            self.base[name] += base[:, sel].sum(-1)

    def result(self, relations: Sequence[str] | None = None, min_count: int = 100) -> SyntaxResult:
        """Table rows: "All", then ``relations`` (default: all but root/punct) by count."""
        if relations is None:
            relations = [r for r in self.n if r != ALL and r not in EXCLUDED]
        keep = [r for r in relations if r != ALL and self.n.get(r, 0) >= max(min_count, 1)]
        keep.sort(key=lambda r: -self.n[r])
        rels = ([ALL] if self.n.get(ALL, 0) else []) + keep
        if not rels:
            raise ValueError("no parsed sentences were accumulated")
        counts = np.array([self.n[r] for r in rels])
        acc = np.stack([self.heads[r] for r in rels]) / counts[:, None, None]  # (R, 2, K)
        base = np.stack([self.base[r] for r in rels]) / counts[:, None]  # (R, O)
        res = SyntaxResult(rels, counts, acc, base, self.offsets.tolist(), self.num_heads)
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
                }
            )
        return res


def relation_accuracies(
    pairs: Iterable,
    num_heads_total: int,
    relations: Sequence[str] | None = None,
    min_count: int = 100,
    label_map: dict | None = None,
    offsets: Iterable[int] = range(-3, 4),
    *,
    num_heads: int,
    head_dep_rule: str = "head_row",
    poss_clitic: bool = True,
) -> SyntaxResult:
    """Table 1 over a stream of ``(maps (K, T, T), Sentence)`` pairs (see module rules).

    ``num_heads`` (per layer) is needed to name heads ``"layer-head"``. Use
    ``label_map=UD_TO_SD`` for the paper's SD relation names. ``result.table`` holds one dict
    per row (relation, count, head, direction, accuracy, baseline_offset, baseline_accuracy);
    ``result.accuracy`` is (R, 2, K) and ``result.matrix`` (R, K).
    """
    acc = RelationAccumulator(
        num_heads_total, num_heads, label_map, offsets, head_dep_rule, poss_clitic
    )
    for maps, sentence in pairs:
        acc.update(maps, sentence)
    return acc.result(relations, min_count)


def plot_relation_heatmap(result: SyntaxResult, path) -> None:
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
    fig.savefig(path, dpi=120)
