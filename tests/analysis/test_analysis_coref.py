import numpy as np
import pytest

from probing.analysis.coref import (
    coref_accuracies,
    document_chunks,
    mention_head,
    parse_entity_field,
    parse_mentions,
)
from probing.attention.layout import Layout
from probing.data.sentence import Sentence


def sent(words, heads, upos, entity, doc="d1", sid="s"):
    misc = [{"Entity": e} if e else None for e in entity]
    return Sentence(
        words=words,
        sent_id=sid,
        heads=np.array(heads),
        upos=upos,
        doc_id=doc,
        misc=misc,
        rels=["dep"] * len(words),
    )


# "Mary saw the dog . She smiled ." -- She (PRON) corefers with Mary (entity 1)
MARY = [
    sent(
        ["Mary", "saw", "the", "dog", "."],
        [2, 0, 4, 2, 2],
        ["PROPN", "VERB", "DET", "NOUN", "PUNCT"],
        ["(1-person-new-sssss-cf1-1-coref)", None, "(2-animal-new-nnnnn-cf2-2-sgl", "2)", None],
    ),
    sent(
        ["She", "smiled", "."],
        [2, 0, 2],
        ["PRON", "VERB", "PUNCT"],
        ["(1-person-giv:act-sssss-cf1-1-ana)", None, None],
    ),
]


def chunk_maps(n, rows_per_head):
    """(K, n+2, n+2): uniform over words, except ``rows_per_head[k] = {word: target_word}``."""
    t = n + 2
    maps = np.full((len(rows_per_head), t, t), 1.0 / t)
    for k, rows in enumerate(rows_per_head):
        for i, j in rows.items():
            maps[k, i + 1] = 0.0
            maps[k, i + 1, j + 1] = 1.0
    return maps


def test_parse_entity_field_gum_examples():
    assert parse_entity_field(
        "(7-abstract-new-nnnss-cf6-2-coref(3-abstract-giv:act-sssss-cf1-1-coref)"
    ) == [("open", "7"), ("single", "3")]
    assert parse_entity_field("7)6)5)4)") == [("close", e) for e in "7654"]
    assert parse_entity_field("(175-time-giv:inact-nnnnn-cf5-1-coref)189)188)") == [
        ("single", "175"),
        ("close", "189"),
        ("close", "188"),
    ]
    with pytest.raises(ValueError):
        parse_entity_field("12")


def test_mentions_and_head_words():
    ms = parse_mentions(MARY)
    assert [(m.entity, m.start, m.end, m.head) for m in ms] == [
        ("1", 0, 0, 0),
        ("2", 2, 3, 3),
        ("1", 5, 5, 5),
    ]  # "the dog": head is dog (-> saw)
    heads = np.array([1, -1, 1, 1])  # words 0, 2, 3 hang on word 1; word 1 is ROOT
    assert mention_head(0, 2, heads) == 1  # first word whose head leaves the span
    assert mention_head(2, 3, heads) == 2
    assert mention_head(0, 3, None) == 3  # no tree: last word


def test_pronoun_attending_to_antecedent():
    # head 0 ("1-1"): She -> Mary; head 1 ("1-2"): She -> dog
    maps = chunk_maps(8, [{5: 0}, {5: 3}])
    res = coref_accuracies([(maps, MARY)], 2, num_heads=2)
    assert res.counts.tolist() == [1, 1, 0, 0]  # all, pronoun, proper, nominal
    np.testing.assert_allclose(res.head_accuracy[:2], [[1.0, 0.0], [1.0, 0.0]])
    assert res.best_head == "1-1"
    # nearest preceding mention is "the dog" (wrong); no earlier mention headed "she"
    assert res.nearest[0] == 0.0 and res.same_head[0] == 0.0
    assert res.table[3]["model"] == "head 1-1" and res.table[3]["Pronoun"] == 1.0


@pytest.mark.parametrize("layout", [Layout(True, True), Layout(True, False), Layout(False, True),
                                    Layout(False, False)], ids=lambda lay: lay.describe())
def test_every_layout_reads_the_mention_rows(layout):
    # the same She -> Mary head as above, with the special tokens wherever the layout puts them;
    # every other row attends to a special token (or, without any, to its own word)
    n = 8
    t = layout.num_tokens(n)
    special = layout.start_index if layout.start else layout.end_index(n)
    maps = np.zeros((1, t, t))
    for i in range(t):
        maps[0, i, i if special is None else special] = 1.0
    she, mary = layout.word_token(5), layout.word_token(0)
    maps[0, she] = 0.0
    maps[0, she, mary] = 1.0
    res = coref_accuracies([(maps, MARY)], 1, num_heads=1, layout=layout)
    assert res.counts.tolist() == [1, 1, 0, 0] and res.head_accuracy[0, 0] == 1.0


def test_baselines_on_hand_checked_document():
    # John met the dog . The dog liked John .
    doc = [
        sent(
            ["John", "met", "the", "dog", "."],
            [2, 0, 4, 2, 2],
            ["PROPN", "VERB", "DET", "NOUN", "PUNCT"],
            ["(1-person-x)", None, "(2-animal-x", "2)", None],
        ),
        sent(
            ["The", "dog", "liked", "John", "."],
            [2, 3, 0, 3, 3],
            ["DET", "NOUN", "VERB", "PROPN", "PUNCT"],
            ["(2-animal-x", "2)", None, "(1-person-x)", None],
        ),
    ]
    res = coref_accuracies([(chunk_maps(10, [{}]), doc)], 1, num_heads=1)
    # scored: "The dog" (nominal; nearest = the dog, same head = the dog) and John (proper;
    # nearest = The dog, wrong; same head = John, right)
    assert res.counts.tolist() == [2, 0, 1, 1]
    np.testing.assert_allclose(res.nearest, [0.5, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(res.same_head, [1.0, 0.0, 1.0, 1.0])
    # uniform attention puts no more mass on any word: argmax goes to the first word (John),
    # which is the antecedent of the second John only
    np.testing.assert_allclose(res.head_accuracy[:, 0], [0.5, 0.0, 1.0, 0.0])


def test_truncated_chunk_drops_mentions_past_the_cut():
    # maps cover only the first sentence: nothing there has an antecedent
    res = coref_accuracies([(chunk_maps(5, [{}]), MARY)], 1, num_heads=1)
    assert res.counts.tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        coref_accuracies([(chunk_maps(9, [{}]), MARY)], 1, num_heads=1)


def test_document_chunks():
    def s(n, doc):
        return Sentence(words=["w"] * n, sent_id=f"{doc}{n}", doc_id=doc)

    sents = [s(3, "A"), s(4, "A"), s(2, "A"), s(1, "B"), s(10, "B"), s(1, "B")]
    chunks = list(document_chunks(iter(sents), max_words=7))
    assert [[len(x) for x in c] for c in chunks] == [[3, 4], [2], [1], [10], [1]]
    assert all(len({x.doc_id for x in c}) == 1 for c in chunks)


# John met Mary . She waved . John smiled . He left . The woman waved .
# words: John0 met1 Mary2 .3 | She4 waved5 .6 | John7 smiled8 .9 | He10 left11 .12 | The13 woman14 waved15 .16
# entities: 1 = Mary, She, The woman; 2 = John, John, He
FALLBACK_DOC = [
    sent(["John", "met", "Mary", "."], [2, 0, 2, 2], ["PROPN", "VERB", "PROPN", "PUNCT"],
         ["(2-person-x)", None, "(1-person-x)", None]),
    sent(["She", "waved", "."], [2, 0, 2], ["PRON", "VERB", "PUNCT"], ["(1-person-x)", None, None]),
    sent(["John", "smiled", "."], [2, 0, 2], ["PROPN", "VERB", "PUNCT"], ["(2-person-x)", None, None]),
    sent(["He", "left", "."], [2, 0, 2], ["PRON", "VERB", "PUNCT"], ["(2-person-x)", None, None]),
    sent(["The", "woman", "waved", "."], [2, 3, 0, 3], ["DET", "NOUN", "VERB", "PUNCT"],
         ["(1-person-x", "1)", None, None]),
]


def test_same_head_baseline_under_both_readings():
    # scored mentions (an earlier mention of the same entity exists), with the mention just before
    # each and the latest earlier one with the same head word:
    #   She (pronoun):      nearest Mary (right);   same head "she": none
    #   John7 (proper):     nearest She (wrong);    same head John0 (right)
    #   He (pronoun):       nearest John7 (right);  same head "he": none
    #   The woman (nominal): nearest He (wrong);    same head "woman": none
    res = coref_accuracies([(chunk_maps(17, [{}]), FALLBACK_DOC)], 1, num_heads=1)
    assert res.counts.tolist() == [4, 2, 1, 1]  # all, pronoun, proper, nominal
    np.testing.assert_allclose(res.nearest, [2 / 4, 2 / 2, 0 / 1, 0 / 1])
    # none -> wrong: only John7 is right
    np.testing.assert_allclose(res.same_head_under("none"), [1 / 4, 0 / 2, 1 / 1, 0 / 1])
    # none -> the nearest mention: She (Mary) and He (John7) become right; The woman (He) stays wrong
    np.testing.assert_allclose(res.same_head_under("nearest"), [3 / 4, 2 / 2, 1 / 1, 0 / 1])
    rows = {r["model"]: r["All"] for r in res.table}
    assert rows["nearest with same head word (none: wrong)"] == 0.25
    assert rows["nearest with same head word, else nearest mention"] == 0.75
    with pytest.raises(ValueError, match="same_head_fallback must be one of"):
        res.same_head_under("closest")
