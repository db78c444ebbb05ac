import numpy as np
import pytest

from probing.analysis.surface import plot_entropy, plot_surface, surface_stats
from probing.data.sentence import Sentence


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
        surface_stats([(maps, sent("abcd"))], 1, 2)  # T must be n + 2
    with pytest.raises(ValueError):
        surface_stats([(maps, sent("abc"))], 2, 2)  # wrong head count


def test_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.dirichlet(np.ones(6), size=(4, 6))
    stats = surface_stats([(maps, sent(["a", ",", "b", "."]))], 2, 2)
    for fn, name in ((plot_surface, "surface.png"), (plot_entropy, "entropy.png")):
        fn(stats, tmp_path / name)
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
