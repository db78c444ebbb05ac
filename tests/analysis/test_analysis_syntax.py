import numpy as np
import pytest

from probing.analysis.syntax import plot_relation_heatmap, relation_accuracies
from probing.attention.layout import Layout
from probing.data.sentence import Sentence

# the dog saw a cat: the->dog, dog->saw, saw->ROOT, a->cat, cat->saw
DOG = Sentence(
    words=["the", "dog", "saw", "a", "cat"],
    sent_id="s1",
    heads=np.array([2, 3, 0, 5, 3]),
    rels=["det", "nsubj", "root", "det", "obj"],
)


def word_maps(n, targets_per_head):
    """(K, n+2, n+2) maps; ``targets_per_head[k][i]`` = the word (0-based) word i attends to,
    or None to attend to the end token (which the head predictors ignore)."""
    t = n + 2
    maps = np.zeros((len(targets_per_head), t, t))
    maps[:, :, t - 1] = 1.0
    for k, targets in enumerate(targets_per_head):
        for i, j in enumerate(targets):
            if j is not None:
                maps[k, i + 1] = 0.0
                maps[k, i + 1, j + 1] = 1.0
    return maps


def dog_maps():
    gold = [1, 2, None, 4, 2]  # head 0 ("1-1"): every word attends to its gold head
    det = [None, 0, None, None, 3]  # head 1 ("1-2"): nouns attend to their determiner
    other = [None] * 5
    return word_maps(5, [gold, det, other, other])


def rows_by_relation(result):
    return {row["relation"]: row for row in result.table}


def test_gold_head_attention_is_perfect_and_offsets_are_right():
    res = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, num_heads=2)
    rows = rows_by_relation(res)
    assert [r["relation"] for r in res.table] == ["All", "det", "nsubj", "obj"]
    for rel in ("det", "nsubj", "obj"):
        assert rows[rel]["head"] == "1-1"
        assert rows[rel]["direction"] == "dep->head"
        assert rows[rel]["accuracy"] == 1.0
    # ROOT-attached "saw" is in All and always wrong
    assert rows["All"]["count"] == 5 and rows["All"]["accuracy"] == pytest.approx(0.8)
    # offsets -3..+3 for All: the/dog/a are right at +1, cat at -2
    np.testing.assert_allclose(res.baseline[0], [0, 0.2, 0, 0, 0.6, 0, 0])  # -3..+3
    assert (rows["All"]["baseline_offset"], rows["All"]["baseline_accuracy"]) == (1, 0.6)
    assert (rows["det"]["baseline_offset"], rows["det"]["baseline_accuracy"]) == (1, 1.0)
    assert (rows["obj"]["baseline_offset"], rows["obj"]["baseline_accuracy"]) == (-2, 1.0)


def test_head_to_dependent_direction():
    res = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, num_heads=2)
    det = res.relations.index("det")
    # head 1: the noun attends most to its determiner, so the word attending most to each
    # determiner (column rule) is its gold head
    assert res.accuracy[det, 1, 1] == 1.0
    assert res.accuracy[det, 0, 1] == 0.0  # but the determiner does not attend to the noun
    assert res.matrix.shape == (4, 4) and res.matrix[det, 1] == 1.0
    # heads 2-3 put all mass on the end token: no word is predicted, so nothing is right
    # (argmax over an all-zero row would otherwise "predict" the first word)
    assert not res.accuracy[:, :, 2:].any()
    row = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, num_heads=2, head_dep_rule="head_row")
    assert row.accuracy[row.relations.index("det"), 1, 1] == 1.0


# "the dog saw a cat" again, but "saw" spreads its attention equally over its dependents
# (dog, cat); every other word attends to itself. The two head->dep rules then differ:
# column: the word attending most to "dog" and to "cat" is "saw" -> nsubj and obj right;
# head_row: "saw" attends most to its FIRST dependent (ties go to the earlier word) -> only "dog".
def spread_maps():
    maps = np.zeros((1, 7, 7))
    maps[0, np.arange(7), np.arange(7)] = 1.0
    maps[0, 3] = 0.0
    maps[0, 3, [2, 5]] = 0.5  # "saw" (token 3) -> "dog" (token 2) and "cat" (token 5)
    return maps


def test_column_rule_is_the_default_and_differs_from_head_row():
    col = rows_by_relation(relation_accuracies([(spread_maps(), DOG)], 1, min_count=1, num_heads=1))
    row = rows_by_relation(relation_accuracies([(spread_maps(), DOG)], 1, min_count=1, num_heads=1,
                                               head_dep_rule="head_row"))
    assert (col["nsubj"]["accuracy"], col["obj"]["accuracy"]) == (1.0, 1.0)
    assert (row["nsubj"]["accuracy"], row["obj"]["accuracy"]) == (1.0, 0.0)
    assert col["All"]["accuracy"] == pytest.approx(2 / 5) and row["All"]["accuracy"] == pytest.approx(1 / 5)
    assert col["obj"]["direction"] == "head->dep"
    with pytest.raises(ValueError):
        relation_accuracies([(spread_maps(), DOG)], 1, num_heads=1, head_dep_rule="transpose")


def test_min_count_and_label_names():
    res = relation_accuracies([(dog_maps(), DOG)] * 2, 4, min_count=3, num_heads=2)
    assert res.relations == ["All", "det"]  # det: 4 instances, nsubj and obj: 2 each
    assert res.counts.tolist() == [10, 4]
    sd = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, label_names="sd", num_heads=2)
    assert "dobj" in sd.relations and "obj" not in sd.relations


# "A hearing is scheduled": aux:pass and nsubj:pass are rows of their own at the exact level
# (the paper's auxpass and nsubjpass) and fold into aux / nsubj at the base level
PASSIVE = Sentence(
    words=["A", "hearing", "is", "scheduled", "and", "it", "will", "end"],
    sent_id="p",
    heads=np.array([2, 4, 4, 0, 8, 8, 8, 4]),
    rels=["det", "nsubj:pass", "aux:pass", "root", "cc", "nsubj", "aux", "conj"],
)


def test_label_levels():
    uniform = np.full((1, 10, 10), 0.1)
    exact = relation_accuracies([(uniform, PASSIVE)], 1, min_count=1, num_heads=1)
    base = relation_accuracies([(uniform, PASSIVE)], 1, min_count=1, num_heads=1, label_level="base")
    assert dict(zip(exact.relations, exact.counts)) == {
        "All": 8, "aux": 1, "aux:pass": 1, "cc": 1, "conj": 1, "det": 1, "nsubj": 1, "nsubj:pass": 1}
    assert dict(zip(base.relations, base.counts)) == {"All": 8, "aux": 2, "nsubj": 2, "cc": 1, "conj": 1, "det": 1}
    sd = relation_accuracies([(uniform, PASSIVE)], 1, min_count=1, num_heads=1, label_names="sd")
    assert {"auxpass", "nsubjpass"} <= set(sd.relations)
    with pytest.raises(ValueError):
        relation_accuracies([(uniform, PASSIVE)], 1, num_heads=1, label_level="folded")


def test_offset_clipping():
    uniform = np.full((1, 7, 7), 1 / 7)
    # offsets -3..+3 for All. Not clipped: the/dog/a are right at +1, cat at -2; ROOT-attached
    # "saw" is never right. Clipped to the sentence as in the released code: saw - 3 falls before
    # the first word and clips to ROOT, saw's head (-3 gains one); a + 2 and a + 3 fall after the
    # last word and clip to cat, a's head (+2 and +3 gain one).
    plain = relation_accuracies([(uniform, DOG)], 1, min_count=1, num_heads=1)
    clip = relation_accuracies([(uniform, DOG)], 1, min_count=1, num_heads=1, offset_clip=True)
    np.testing.assert_allclose(plain.baseline[0], [0, 0.2, 0, 0, 0.6, 0, 0])
    np.testing.assert_allclose(clip.baseline[0], [0.2, 0.2, 0, 0, 0.6, 0.2, 0.2])
    released = relation_accuracies([(uniform, DOG)], 1, min_count=1, num_heads=1, offsets=range(-3, 3))
    assert released.offsets == [-3, -2, -1, 0, 1, 2] and released.baseline.shape == (4, 6)


# The same gold-head attention in every layout: each word's row puts all its mass on its gold
# head's token; the root word and the special tokens' rows attend to a special token when there
# is one (never predicted), else to themselves (never predicted either). Head 1 attends only to
# special tokens (or itself): it must predict nothing, whatever the layout.
LAYOUTS = [Layout(True, True), Layout(True, False), Layout(False, True), Layout(False, False)]


def gold_maps(layout: Layout) -> np.ndarray:
    n = len(DOG)
    t = layout.num_tokens(n)
    special = layout.start_index if layout.start else layout.end_index(n)
    maps = np.zeros((2, t, t))
    for i in range(t):
        maps[:, i, i if special is None else special] = 1.0
    for w, h in enumerate(DOG.heads):
        if h > 0:
            i = layout.word_token(w)
            maps[0, i] = 0.0
            maps[0, i, layout.word_token(h - 1)] = 1.0
    return maps


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.describe())
def test_every_layout_finds_the_gold_head(layout):
    res = relation_accuracies([(gold_maps(layout), DOG)], 2, min_count=1, num_heads=2, layout=layout)
    rows = rows_by_relation(res)
    assert rows["All"]["head"] == "1-1" and rows["All"]["accuracy"] == pytest.approx(0.8)
    assert all(rows[r]["accuracy"] == 1.0 for r in ("det", "nsubj", "obj"))
    assert not res.accuracy[:, :, 1].any()  # the special-token head predicts nothing
    with pytest.raises(ValueError):  # maps of another layout do not fit
        other = Layout(not layout.start, layout.end)
        relation_accuracies([(gold_maps(other), DOG)], 2, num_heads=2, layout=layout)


def test_possessive_scored_from_clitic():
    # John 's dog barked: John->dog (nmod:poss), 's->John, dog->barked, barked->ROOT
    s = Sentence(
        words=["John", "'s", "dog", "barked"],
        sent_id="p",
        heads=np.array([3, 1, 4, 0]),
        rels=["nmod:poss", "case", "nsubj", "root"],
    )
    maps = word_maps(4, [[1, 2, None, None]])  # John -> 's, 's -> dog
    with_rule = rows_by_relation(relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1,
                                                     head_dep_rule="head_row"))
    assert with_rule["nmod:poss"]["accuracy"] == 1.0
    assert with_rule["nmod:poss"]["baseline_offset"] == 1  # scored from 's: 's + 1 = dog
    without = rows_by_relation(
        relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1, poss_clitic=False)
    )
    assert without["nmod:poss"]["accuracy"] == 0.0
    assert without["nmod:poss"]["baseline_offset"] == 2
    # column rule: John is scored from the word attending most to 's, which is John itself, not
    # dog (wrong); dep->head, scored from 's -> dog, is still right
    col = rows_by_relation(relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1))
    assert col["nmod:poss"]["accuracy"] == 1.0 and col["nmod:poss"]["direction"] == "dep->head"


def test_a_bare_apostrophe_is_a_clitic_only_in_the_wider_set():
    # the dogs ' owner left: dogs->owner (nmod:poss), '->dogs; UD writes the plural possessive as '
    s = Sentence(words=["the", "dogs", "'", "owner", "left"], sent_id="q", heads=np.array([2, 4, 2, 5, 0]),
                 rels=["det", "nmod:poss", "case", "nsubj", "root"])
    maps = word_maps(5, [[None, 2, 3, None, None]])  # dogs -> ', ' -> owner
    released = rows_by_relation(relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1))
    # the released code's clitics are 's and s': dogs is scored from its own row, which points at '
    assert released["nmod:poss"]["accuracy"] == 0.0 and released["nmod:poss"]["baseline_offset"] == 2
    wide = rows_by_relation(relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1,
                                                clitics=["'s", "s'", "'", "’s", "’"]))
    # the wider set scores dogs from ' (whose row points at owner: right), its baseline from ' + 1
    assert wide["nmod:poss"]["accuracy"] == 1.0 and wide["nmod:poss"]["baseline_offset"] == 1


def test_skips_unparsed_and_checks_shapes():
    unparsed = Sentence(words=["a", "b"], sent_id="u")
    res = relation_accuracies(
        [(np.full((4, 4, 4), 0.25), unparsed), (dog_maps(), DOG)], 4, min_count=1, num_heads=2
    )
    assert res.counts[0] == 5
    with pytest.raises(ValueError):
        relation_accuracies([(dog_maps()[:, :6, :6], DOG)], 4, num_heads=2)


def test_input_maps_are_not_modified():
    maps = dog_maps().astype(np.float32)
    before = maps.copy()
    relation_accuracies([(maps, DOG)], 4, min_count=1, num_heads=2)
    np.testing.assert_array_equal(maps, before)


def test_heatmap_png(tmp_path):
    res = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, num_heads=2)
    fig = plot_relation_heatmap(res)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["All (5)", "det (2)", "nsubj (1)", "obj (1)"]


def test_empty_stream_raises():
    with pytest.raises(ValueError):
        relation_accuracies([], 4, num_heads=2)


def test_reachable_shares_bound_what_a_causal_model_can_score():
    # "the dog barked": the -> dog (head after), dog -> barked (after), barked -> ROOT.
    # dep->head can reach no instance (every head lies to the right); head->dep reaches 2 of 3
    s = Sentence(words=["the", "dog", "barked"], sent_id="s", heads=np.array([2, 3, 0]),
                 rels=["det", "nsubj", "root"])
    maps = np.tril(np.ones((1, 5, 5))) / np.arange(1, 6)[None, :, None]  # causal, uniform over the past
    res = relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1)
    all_row = res.table[0]
    assert all_row["relation"] == "All"
    assert (all_row["reachable_dep_head"], all_row["reachable_head_dep"]) == (0.0, 2 / 3)
    by_rel = {r["relation"]: r for r in res.table}
    assert by_rel["det"]["reachable_head_dep"] == 1.0 and by_rel["det"]["reachable_dep_head"] == 0.0
