"""What a probe predicts: a task turns a :class:`Sentence` into queries and their gold candidates.

A query is a span of words (a dependent is a one-word span, an aspect a multi-word one). Its
candidates are ROOT (candidate 0, when the task has one) and the words 1..n (candidate c = word c,
1-based as in CoNLL-U); its gold is a SET of candidates. A probe scores every candidate of every
query; a prediction is right when its argmax is in the gold set.

The data config names its task (``task:`` node with ``_target_`` in ``conf/data/*.yaml``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from probing.data.sentence import Sentence, relation_at


@dataclass
class Example:
    """One sentence's targets, Q queries.

    ``spans``: Q tuples of 0-based word indices. ``gold``: Q tuples of candidate indices (0 = ROOT,
    c = word c). ``labels``: Q label names, or None when the task has none. ``scored``: (Q,) bool,
    the queries the metrics count (dependencies leave punctuation out, as the paper does).
    """

    spans: list[tuple[int, ...]]
    gold: list[tuple[int, ...]]
    labels: list[str] | None
    scored: np.ndarray

    def __len__(self) -> int:
        return len(self.spans)


class Task:
    """Base. ``metric`` names the accuracy (``val/<metric>``); ``labeled_metric`` the one that also
    needs the label right and ``label_name`` what a label is (None: the task has no labels);
    ``root``: ROOT is a candidate; ``trees``: the queries are a sentence's words and their gold
    candidates form a tree (MST decoding applies)."""

    metric: ClassVar[str]
    labeled_metric: ClassVar[str | None] = None
    label_name: ClassVar[str | None] = None
    root: ClassVar[bool]
    trees: ClassVar[bool] = False

    def example(self, sentence: Sentence) -> Example:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class DependencyTask(Task):
    """Every word is a query; its gold is its head; labels are UD relations.

    ``label_level`` (:data:`probing.data.sentence.LABEL_LEVELS`, the names Table 1 uses too):
    "base" drops subtypes (``nsubj:pass`` -> ``nsubj``), as LAS in the CoNLL 2018 evaluation does;
    "exact" keeps them.
    """

    label_level: str
    metric: ClassVar[str] = "uas"
    labeled_metric: ClassVar[str | None] = "las"
    label_name: ClassVar[str | None] = "relation"
    root: ClassVar[bool] = True
    trees: ClassVar[bool] = True

    def __post_init__(self):
        relation_at("root", self.label_level)  # refuses an unknown level

    def example(self, sentence: Sentence) -> Example:
        if sentence.heads is None:
            raise ValueError(f"{sentence.sent_id}: the dependency task needs gold trees; this sentence has none")
        rels = sentence.relations(self.label_level)
        return Example(
            spans=[(w,) for w in range(len(sentence))],
            gold=[(int(h),) for h in sentence.heads],
            labels=list(rels) if rels is not None else None,
            scored=~sentence.is_punct,
        )

    def describe(self) -> str:
        return "each word's syntactic head (UAS, punctuation excluded)"


BEHAVIOURS = ("self", "first", "last")


@dataclass
class ControlDependencyTask(Task):
    """Hewitt & Liang's control task for dependency heads: each word type (lowercased) gets one of
    three behaviours, fixed by ``seed``: attach to itself, to the sentence's first word, or to its
    last word. The sentences, the queries and the output space are the dependency task's; the
    answer is no syntax, so a probe that scores well here learns the task itself. Punctuation is
    left out as in UAS; ROOT is a candidate but never gold; there are no labels."""

    seed: int
    metric: ClassVar[str] = "uas"
    root: ClassVar[bool] = True
    trees: ClassVar[bool] = False  # its gold is no tree: no MST decoding

    def behaviour(self, word: str) -> str:
        """The behaviour of a word type: a hash of the type and the seed, the same in every run."""
        digest = hashlib.blake2b(f"{self.seed}\t{word.lower()}".encode(), digest_size=8).digest()
        return BEHAVIOURS[int.from_bytes(digest, "big") % len(BEHAVIOURS)]

    def example(self, sentence: Sentence) -> Example:
        n = len(sentence)
        target = {"self": lambda w: w + 1, "first": lambda w: 1, "last": lambda w: n}
        return Example(spans=[(w,) for w in range(n)],
                       gold=[(target[self.behaviour(word)](w),) for w, word in enumerate(sentence.words)],
                       labels=None, scored=~sentence.is_punct)

    def describe(self) -> str:
        return (f"a control task (Hewitt & Liang 2019, seed {self.seed}): each word type attaches to itself, the "
                "first word or the last word")


@dataclass
class AspectOpinionTask(Task):
    """Every distinct aspect span of ``sentence.triplets`` is a query; its gold is every word of
    its opinion span(s). No ROOT candidate, no labels; metric ``acc``."""

    metric: ClassVar[str] = "acc"
    root: ClassVar[bool] = False

    def example(self, sentence: Sentence) -> Example:
        if sentence.triplets is None:
            raise ValueError(f"{sentence.sent_id}: the aspect-opinion task needs triplets; this sentence has none")
        gold: dict[tuple[int, ...], set[int]] = {}
        for t in sentence.triplets:  # an aspect with two opinions is one query with both spans
            gold.setdefault(tuple(t.aspect), set()).update(w + 1 for w in t.opinion)
        spans = list(gold)
        return Example(spans=spans, gold=[tuple(sorted(gold[s])) for s in spans], labels=None,
                       scored=np.ones(len(spans), dtype=bool))

    def describe(self) -> str:
        return "each aspect's opinion words (accuracy: the argmax is an opinion word of that aspect)"
