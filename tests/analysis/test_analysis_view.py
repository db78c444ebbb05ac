import numpy as np
import pytest

from probing.analysis._common import token_labels
from probing.analysis.view import draw_heads, draw_heatmap, pick_heads
from probing.attention.layout import Layout

WORDS = ["the", "dog", "</script><b>", "."]
TOKENS = token_labels(WORDS)  # [CLS] ... [SEP]


def maps(num_layers=2, num_heads=2, t=6, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(t), size=(num_layers * num_heads, t))


def test_draw_heads_panels():
    fig = draw_heads(maps(), TOKENS, [0, "2-1"], num_heads=2)
    assert [ax.get_title() for ax in fig.axes] == ["1-1", "2-1"]
    assert [t.get_text() for t in fig.axes[0].texts[::2]] == TOKENS  # left column, top to bottom
    with pytest.raises(ValueError):
        draw_heads(maps(), TOKENS, ["2-1"])  # "L-H" needs num_heads
    with pytest.raises(ValueError):
        draw_heads(maps(), WORDS, [0])  # 4 labels do not fit T = 6


def test_draw_heatmap_labels():
    fig = draw_heatmap(maps(), TOKENS, 3)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == TOKENS
    assert fig.axes[0].get_title() == "head 3"


def test_token_labels_follow_the_layout():
    assert token_labels(["a"], Layout(True, False), "<bos>", None) == ["<bos>", "a"]
    assert token_labels(["a"], Layout(False, False)) == ["a"]
    assert token_labels(["a"], Layout(False, True), None, "</s>") == ["a", "</s>"]


def test_pick_heads_per_layout():
    # K=4 heads over "x y z": previous word, next word, self, and the special token
    for layout in (Layout(True, True), Layout(False, False)):
        t = layout.num_tokens(3)
        a = np.zeros((4, t, t))
        a[0, np.arange(1, t), np.arange(t - 1)] = 1.0
        a[1, np.arange(t - 1), np.arange(1, t)] = 1.0
        a[2, np.arange(t), np.arange(t)] = 1.0
        a[3, :, t - 1 if layout.end else 0] = 1.0
        # no special token: the special-token head is not asked for
        expected = ["1-1", "1-2", "1-4", "1-3"] if layout.end else ["1-1", "1-2", "1-3"]
        assert pick_heads(a, layout, 4) == expected
