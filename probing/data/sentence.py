"""The one in-memory sentence type that every reader yields and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SENTIMENTS = ("POS", "NEG", "NEU")
# how a UD relation is named wherever one is scored (Table 1 rows, LAS): "exact" keeps the subtype
# (nmod:poss, aux:pass), "base" folds it into its base (nmod, aux)
LABEL_LEVELS = ("exact", "base")


def relation_at(label: str, level: str) -> str:
    """A UD relation at ``level`` (one of :data:`LABEL_LEVELS`)."""
    if level not in LABEL_LEVELS:
        raise ValueError(f"label_level must be one of {LABEL_LEVELS}, not {level!r}")
    return label if level == "exact" else label.split(":")[0]


@dataclass(frozen=True)
class Triplet:
    """One ASTE (aspect, opinion, sentiment) triplet; spans are sorted tuples of 0-based word indices."""

    aspect: tuple[int, ...]
    opinion: tuple[int, ...]
    sentiment: str  # one of SENTIMENTS


@dataclass
class Sentence:
    """One sentence of syntactic words.

    ``heads`` is ``(n,)`` int, 1-based as in CoNLL-U (0 = ROOT); ``None`` for unparsed text.
    ``rels`` are full UD labels (``nsubj:pass``); ``relations("base")`` drops the subtype.
    ``misc`` keeps each word's parsed MISC column (GUM's ``Entity=`` lives there).
    ``tags`` holds per-word sequence labels (SemEval aspects/opinions) when a reader has them.
    ``triplets`` holds ASTE (aspect, opinion, sentiment) triplets; ``None`` when the data has none.
    """

    words: list[str]
    sent_id: str
    heads: np.ndarray | None = None
    rels: list[str] | None = None
    upos: list[str] | None = None
    doc_id: str | None = None
    misc: list[dict | None] | None = None
    tags: dict[str, list[str]] = field(default_factory=dict)
    triplets: list[Triplet] | None = None

    def __len__(self) -> int:
        return len(self.words)

    def relations(self, level: str = "exact") -> list[str] | None:
        """``rels`` at ``level`` ("exact" or "base"); None for unparsed text."""
        return None if self.rels is None else [relation_at(r, level) for r in self.rels]

    @property
    def is_punct(self) -> np.ndarray:
        """(n,) bool: UD ``punct`` relation, falling back to UPOS PUNCT for unparsed text."""
        if self.rels is not None:
            return np.array([r == "punct" for r in self.rels], dtype=bool)
        if self.upos is not None:
            return np.array([u == "PUNCT" for u in self.upos], dtype=bool)
        return np.array([not any(c.isalnum() for c in w) for w in self.words], dtype=bool)
