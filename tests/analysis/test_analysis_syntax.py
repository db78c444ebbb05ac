import numpy as np
import pytest

from probing.analysis.syntax import (
    UD_TO_SD,
    plot_relation_heatmap,
    relation_accuracies,
    relation_name,
)
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
    # head 1: the gold head (the noun) attends most to its determiner
    assert res.accuracy[det, 1, 1] == 1.0
    assert res.accuracy[det, 0, 1] == 0.0  # but the determiner does not attend to the noun
    assert res.matrix.shape == (4, 4) and res.matrix[det, 1] == 1.0
    # heads 2-3 put all mass on the end token: no word is predicted, so nothing is right
    # (argmax over an all-zero row would otherwise "predict" the first word)
    assert not res.accuracy[:, :, 2:].any()
    col = relation_accuracies(
        [(dog_maps(), DOG)], 4, min_count=1, num_heads=2, head_dep_rule="column"
    )
    assert col.accuracy[col.relations.index("det"), 1, 1] == 1.0


def test_min_count_and_label_map():
    res = relation_accuracies([(dog_maps(), DOG)] * 2, 4, min_count=3, num_heads=2)
    assert res.relations == ["All", "det"]  # det: 4 instances, nsubj and obj: 2 each
    assert res.counts.tolist() == [10, 4]
    sd = relation_accuracies([(dog_maps(), DOG)], 4, min_count=1, label_map=UD_TO_SD, num_heads=2)
    assert "dobj" in sd.relations and "obj" not in sd.relations
    assert relation_name("nmod:poss", UD_TO_SD) == "poss"
    assert relation_name("aux:pass", UD_TO_SD) == "auxpass"
    assert relation_name("aux:pass", None) == "aux"
    assert relation_name("advmod", UD_TO_SD) == "advmod"  # not relabelled as neg
    assert relation_name("case", UD_TO_SD) == "case"  # not relabelled as possessive


def test_possessive_scored_from_clitic():
    # John 's dog barked: John->dog (nmod:poss), 's->John, dog->barked, barked->ROOT
    s = Sentence(
        words=["John", "'s", "dog", "barked"],
        sent_id="p",
        heads=np.array([3, 1, 4, 0]),
        rels=["nmod:poss", "case", "nsubj", "root"],
    )
    maps = word_maps(4, [[1, 2, None, None]])  # John -> 's, 's -> dog
    with_rule = rows_by_relation(relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1))
    assert with_rule["nmod"]["accuracy"] == 1.0
    assert with_rule["nmod"]["baseline_offset"] == 1  # scored from 's: 's + 1 = dog
    without = rows_by_relation(
        relation_accuracies([(maps, s)], 1, min_count=1, num_heads=1, poss_clitic=False)
    )
    assert without["nmod"]["accuracy"] == 0.0
    assert without["nmod"]["baseline_offset"] == 2


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
    plot_relation_heatmap(res, tmp_path / "heat.png")
    data = (tmp_path / "heat.png").read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 3000


def test_empty_stream_raises():
    with pytest.raises(ValueError):
        relation_accuracies([], 4, num_heads=2)
