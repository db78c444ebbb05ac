import numpy as np
import pytest

from probing.analysis.surface import plot_entropy, plot_surface, surface_stats
from probing.attention.layout import Layout
from probing.data.sentence import Sentence

BOTH, START, END, NONE = Layout(True, True), Layout(True, False), Layout(False, True), Layout(False, False)


def sent(words):
    return Sentence(words=list(words), sent_id="s")


def shift_maps(t):
    """(2, T, T): head 0 attends to the previous token, head 1 to the next token.

    Rows without such a token (row 0 for head 0, row T-1 for head 1) attend to themselves.
    """
    maps = np.zeros((2, t, t))
    maps[0, 0, 0] = 1.0
    maps[0, np.arange(1, t), np.arange(t - 1)] = 1.0
    maps[1, np.arange(t - 1), np.arange(1, t)] = 1.0
    maps[1, t - 1, t - 1] = 1.0
    return maps


def test_previous_and_next_are_not_swapped():
    stats = surface_stats([(shift_maps(5), sent("abc"))], num_layers=1, num_heads=2)
    np.testing.assert_allclose(stats["prev"], [[1.0, 0.0]])
    np.testing.assert_allclose(stats["next"], [[0.0, 1.0]])
    # head 0: only row 0 (no previous token) looks at itself; head 1: only row T-1
    np.testing.assert_allclose(stats["self"], [[0.2, 0.2]])
    # head 0: rows 0 and 1 land on the start token; head 1: rows 3 and 4 on the end token
    np.testing.assert_allclose(stats["start"], [[0.4, 0.0]])
    np.testing.assert_allclose(stats["end"], [[0.0, 0.4]])
    np.testing.assert_allclose(stats["sep_sep"], [[0.0, 1.0]])
    # rest_sep: rows 0..3 on the end token; only head 1's row 3 does
    np.testing.assert_allclose(stats["rest_sep"], [[0.0, 0.25]])


# Hand-written maps for the four layouts, one sentence "a , b", one head: every word attends to
# the token before it (the first word to the start token if there is one, else to itself), and
# the special tokens' rows attend to themselves. Expected values counted by hand per layout.
def previous_word_maps(layout: Layout) -> np.ndarray:
    n = 3
    t = layout.num_tokens(n)
    maps = np.zeros((1, t, t))
    for w in range(n):
        i = layout.word_token(w)
        maps[0, i, i - 1 if i > 0 else i] = 1.0
    for s in (layout.start_index, layout.end_index(n)):
        if s is not None:
            maps[0, s, s] = 1.0
    return maps


LAYOUT_CASES = {
    # T=5: rows [CLS]->[CLS], a->[CLS], ,->a, b->, , [SEP]->[SEP]; "," is token 2, hit by row "b"
    "start+end": (BOTH, dict(start=2 / 5, end=1 / 5, punct=1 / 5, self=2 / 5, prev=3 / 4, next=0.0,
                             sep_sep=1.0, rest_sep=0.0, num_rows=5)),
    # T=4 (<bos> a , b): rows <bos>->self, a-><bos>, ,->a, b->,
    "start only": (START, dict(start=2 / 4, end=None, punct=1 / 4, self=1 / 4, prev=1.0, next=0.0,
                               sep_sep=None, rest_sep=None, num_rows=4)),
    # T=4 (a , b </s>): rows a->self, ,->a, b->, , </s>->self; rows with a previous token: 1..3
    "end only": (END, dict(start=None, end=1 / 4, punct=1 / 4, self=2 / 4, prev=2 / 3, next=0.0,
                           sep_sep=1.0, rest_sep=0.0, num_rows=4)),
    # T=3 (a , b): rows a->self, ,->a, b->,
    "no specials": (NONE, dict(start=None, end=None, punct=1 / 3, self=1 / 3, prev=1.0, next=0.0,
                               sep_sep=None, rest_sep=None, num_rows=3)),
}


@pytest.mark.parametrize("case", LAYOUT_CASES)
def test_statistics_follow_the_layout(case):
    layout, expected = LAYOUT_CASES[case]
    stats = surface_stats([(previous_word_maps(layout), sent(["a", ",", "b"]))], 1, 1, layout)
    for key, value in expected.items():
        if value is None:
            assert stats[key] is None, key  # missing, not 0
        else:
            np.testing.assert_allclose(stats[key], value, err_msg=key)
    # the start row's entropy exists exactly when there is a start row (one-hot: near 0)
    assert (stats["cls_entropy"] is None) == (not layout.start)
    if layout.start:
        assert stats["cls_entropy"][0, 0] < 0.01 and stats["cls_entropy_layer"].shape == (1,)


@pytest.mark.parametrize("case", LAYOUT_CASES)
def test_plots_skip_missing_statistics(case):
    layout, _ = LAYOUT_CASES[case]
    stats = surface_stats([(previous_word_maps(layout), sent(["a", ",", "b"]))], 1, 1, layout)
    fig = plot_surface(stats, "S" if layout.start else None, "E" if layout.end else None)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # without a start token the first word (a causal LM's sink) takes its place
    first = "S" if layout.start else "first word (sink)"
    assert legend == [x for x, on in ((first, True), ("E", layout.end), (". or ,", True)) if on]
    assert len(plot_entropy(stats, "S").axes) == (2 if layout.start else 1)


def test_word_rows_only():
    stats = surface_stats(
        [(shift_maps(5), sent("abc"))], num_layers=1, num_heads=2, include_special_rows=False
    )
    np.testing.assert_allclose(stats["prev"], [[1.0, 0.0]])
    np.testing.assert_allclose(stats["start"], [[1 / 3, 0.0]])  # rows 1..3; row 1 -> token 0
    assert stats["num_rows"] == 3


def test_uniform_attention_entropy_is_log_t():
    pairs = [(np.full((2, t, t), 1.0 / t), sent("x" * (t - 2))) for t in (5, 7)]
    stats = surface_stats(pairs, num_layers=2, num_heads=1)
    pooled = (5 * np.log(5) + 7 * np.log(7)) / 12  # rows are pooled over the corpus
    np.testing.assert_allclose(stats["entropy"], pooled, rtol=1e-9)
    np.testing.assert_allclose(stats["uniform_entropy"], pooled, rtol=1e-9)
    np.testing.assert_allclose(stats["cls_entropy"], (np.log(5) + np.log(7)) / 2, rtol=1e-9)
    assert stats["cls_entropy_layer"].shape == (2,)
    assert stats["num_sentences"] == 2 and stats["num_rows"] == 12


def test_one_hot_entropy_is_near_zero_not_nan():
    stats = surface_stats([(shift_maps(5), sent("abc"))], num_layers=1, num_heads=2)
    assert np.all(np.isfinite(stats["entropy"]))
    assert np.all(stats["entropy"] < 0.01)


def test_punctuation_and_pooling():
    t = 6
    words = ["a", ",", "b", "."]
    stats = surface_stats([(np.full((1, t, t), 1 / t), sent(words))], 1, 1)
    np.testing.assert_allclose(stats["punct"], [[2 / 6]])
    # streaming pool: sentence A (T=4) is all-previous on rows 1..3, sentence B (T=3) uniform
    a = shift_maps(4)[:1]
    b = np.full((1, 3, 3), 1 / 3)
    stats = surface_stats(iter([(a, sent("xy")), (b, sent("z"))]), 1, 1)
    np.testing.assert_allclose(stats["prev"], [[(3 + 2 / 3) / 5]])


def test_float16_input_and_shape_checks():
    maps = shift_maps(5).astype(np.float16)
    stats = surface_stats([(maps, sent("abc"))], 1, 2)
    np.testing.assert_allclose(stats["prev"], [[1.0, 0.0]])
    with pytest.raises(ValueError):
        surface_stats([(maps, sent("abcd"))], 1, 2)  # T must be n + 2 with start and end tokens
    with pytest.raises(ValueError):
        surface_stats([(maps, sent("abc"))], 1, 2, NONE)  # and n without them
    with pytest.raises(ValueError):
        surface_stats([(maps, sent("abc"))], 2, 2)  # wrong head count


def test_a_causal_model_has_no_next_token_statistic_and_a_first_token_sink():
    # 3 words, no specials (SmolLM2): every row puts .5 on word 1 and .5 on itself, as causal
    # attention can; row 1 (word 1) is all on itself
    maps = np.array([[[1.0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]]])
    stats = surface_stats([(maps, sent(["a", "b", "c"]))], 1, 1, NONE, causal=True)
    assert stats["next"] is None and stats["start"] is None
    # the first row is forced onto itself and left out: first = (.5 + .5) / 2 rows, not
    # (1 + .5 + .5) / 3; prev: rows 2, 3 put .5 and 0 on their previous word
    np.testing.assert_allclose(stats["first"], [[0.5]])
    np.testing.assert_allclose(stats["prev"], [[0.25]])
    assert stats["num_rows"] == 2
    # as an encoder's, every row would count, the first one's forced 1.0 included
    np.testing.assert_allclose(surface_stats([(maps, sent(["a", "b", "c"]))], 1, 1, NONE)["first"], [[2 / 3]])
