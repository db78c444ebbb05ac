"""Hand-written explorer data: three parsed sentences and maps whose statistics can be counted by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from probing.analysis.explorer import RESTAURANT, ExplorerData, pick_sentences, quantity_data
from probing.attention.layout import Layout
from probing.data.sentence import Sentence

BOTH, NONE = Layout(True, True), Layout(False, False)


def parsed(words: str, heads: list[int], rels: list[str], sent_id: str) -> Sentence:
    return Sentence(words=words.split(), sent_id=sent_id, heads=np.array(heads), rels=rels)


SENTENCES = [
    parsed("the dog barked", [2, 3, 0], ["det", "nsubj", "root"], "s1"),
    parsed(RESTAURANT, [2, 5, 5, 5, 0, 7, 5, 9, 5, 11, 9, 5],
           ["det", "nsubj", "cop", "advmod", "root", "cc", "conj", "punct", "parataxis", "mark", "xcomp", "punct"],
           "s2"),
    parsed("a cat sat", [2, 3, 0], ["det", "nsubj", "root"], "s3"),
]


def rule_a(sentence: Sentence, layout: Layout, swap: bool = False) -> np.ndarray:
    """2 x 2 heads over [CLS] words [SEP]: 1-1 all on [CLS]; 1-2 the previous token (row 0 itself);
    2-1 the next token (the last row itself); 2-2 0.75 on the gold head (ROOT: [SEP]) and 0.25 on
    itself from each word, the special tokens' rows on [SEP]. ``swap``: 1-1 and 1-2 swapped."""
    t = layout.num_tokens(len(sentence))
    a = np.zeros((4, t, t))
    rows = np.arange(t)
    a[0, :, 0] = 1
    a[1, rows, np.maximum(rows - 1, 0)] = 1
    a[2, rows, np.minimum(rows + 1, t - 1)] = 1
    f = layout.first_word
    a[3, 0, t - 1] = a[3, t - 1, t - 1] = 1
    for d, head in enumerate(sentence.heads):
        a[3, f + d, f + head - 1 if head else t - 1] = 0.75
        a[3, f + d, f + d] = 0.25
    return a[[1, 0, 2, 3]] if swap else a


def rule_b(sentence: Sentence, layout: Layout) -> np.ndarray:
    """3 x 2 heads over the words only: head 1 of every layer on the first word, head 2 on itself."""
    t = layout.num_tokens(len(sentence))
    a = np.zeros((6, t, t))
    a[0::2, :, 0] = 1
    a[1::2, np.arange(t), np.arange(t)] = 1
    return a


class FakeStore:
    """Hand-written maps in place of the attention store."""

    def __init__(self, sentences, maps, layout, num_layers, num_heads):
        self._maps = [m.astype(np.float16) for m in maps]
        self.layout, self.num_layers, self.num_heads = layout, num_layers, num_heads
        self.num_maps = num_layers * num_heads
        self.kept, self.skipped = np.arange(len(sentences)), {}

    def maps(self, i):
        return self._maps[i]

    def pairs(self, sentences):
        for i in self.kept:
            yield self._maps[i], sentences[i]


def hand_data(name, layout, num_layers, num_heads, rules: dict, family="encoder") -> ExplorerData:
    quantities, picks = {}, None
    for quantity, rule in rules.items():
        store = FakeStore(SENTENCES, [rule(s, layout) for s in SENTENCES], layout, num_layers, num_heads)
        picks = pick_sentences(store, SENTENCES, 10) if picks is None else picks
        quantities[quantity] = quantity_data(store, SENTENCES, picks, min_count=1)
    special = ("[CLS]", "[SEP]") if layout.start else (None, None)
    return ExplorerData(name=name, caveat=f"Model `{name}`: hand-written maps.", family=family,
                        num_layers=num_layers, num_heads=num_heads, layout=layout, special=special,
                        corpus="hand", split="dev", sentences=[SENTENCES[i] for i in picks], quantities=quantities,
                        rules={"label_level": "exact", "head_dep_rule": "column", "min_count": 1})


@pytest.fixture(scope="session")
def hand() -> SimpleNamespace:
    """``models``: "alpha" (2 x 2, [CLS]/[SEP], raw and norm: rule_a and rule_a swapped) and "beta"
    (3 x 2, no special tokens, rule_b); ``sentences`` and the rules, for expected values."""
    alpha = hand_data("alpha", BOTH, 2, 2, {"attention": rule_a, "norm": lambda s, lay: rule_a(s, lay, swap=True)})
    beta = hand_data("beta", NONE, 3, 2, {"attention": rule_b}, family="causal_lm")
    return SimpleNamespace(models=[alpha, beta], sentences=SENTENCES, rule_a=rule_a, rule_b=rule_b, store=FakeStore,
                           make=hand_data)
