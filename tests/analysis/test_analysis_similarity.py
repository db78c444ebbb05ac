import math
import warnings

import numpy as np
import pytest

from probing.analysis.similarity import (
    behaviour_labels,
    head_distances,
    js_divergence,
    mds_embedding,
    plot_mds,
    same_layer_ratio,
)
from probing.data.sentence import Sentence


def test_js_divergence_hand_values():
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-15)
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4)
    kl_pm = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_qm = math.log(1 / 0.75)
    assert js_divergence([0.5, 0.5], [1, 0]) == pytest.approx(0.5 * kl_pm + 0.5 * kl_qm)
    assert js_divergence([0.5, 0.5], [1, 0]) == pytest.approx(js_divergence([1, 0], [0.5, 0.5]))


def test_smoothed_two_token_distance():
    # T = 2: head 0 puts every row on token 0, head 1 on token 1
    maps = np.zeros((2, 2, 2))
    maps[0, :, 0] = 1.0
    maps[1, :, 1] = 1.0
    d = head_distances([(maps, None)], 2)
    # each row smoothed to (0.9995, 0.0005) vs (0.0005, 0.9995); mixture is (1/2, 1/2)
    h = -(0.9995 * math.log(0.9995) + 0.0005 * math.log(0.0005))
    expected_row = math.log(2) - h
    np.testing.assert_allclose(d, [[0, 2 * expected_row], [2 * expected_row, 0]], rtol=1e-9)


def test_identical_heads_symmetric_and_streaming():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(5), size=(3, 5))
    a[2] = a[0]  # heads 0 and 2 identical
    b = rng.dirichlet(np.ones(4), size=(3, 4))
    s = Sentence(words=["x"] * 3, sent_id="a")
    d_a, d_b = head_distances([(a, s)], 3), head_distances([b], 3)
    assert d_a[0, 2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(d_a, d_a.T)
    np.testing.assert_allclose(np.diag(d_a), 0.0, atol=1e-12)
    assert d_a[0, 1] > 0.01
    np.testing.assert_allclose(head_distances(iter([(a, s), (b, s)]), 3), d_a + d_b)
    # the vectorised sum equals the direct per-row definition
    sm = 0.999 * a + 0.001 / 5
    assert d_a[0, 1] == pytest.approx(js_divergence(sm[0], sm[1]).sum())


def test_mds_recovers_planar_distances():
    pts = np.array([[0, 0], [3, 0], [3, 4], [0, 4], [1.5, 2]], dtype=float)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning from sklearn's renamed arguments
        emb = mds_embedding(dist, seed=0)
    assert emb.shape == (5, 2)
    got = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(got, dist, atol=1e-3)


def test_same_layer_ratio_direction():
    layer = np.array([0, 0, 1, 1])
    dist = np.where(layer[:, None] == layer[None], 1.0, 3.0)
    np.fill_diagonal(dist, 0.0)
    assert same_layer_ratio(dist, num_layers=2, num_heads=2) == pytest.approx(3.0)


def test_behaviour_labels_thresholds_and_precedence():
    z = np.zeros((1, 6))
    stats = {key: z.copy() for key in ("next", "prev", "start", "end", "punct", "self")}
    stats["entropy"] = np.full((1, 6), 1.0)
    stats["uniform_entropy"] = 2.0  # broad above 0.783 * 2 = 1.57 nats
    stats["next"][0, 0] = 0.51
    stats["prev"][0, 1] = 0.6
    stats["entropy"][0, 2] = 1.9
    stats["start"][0, 3] = 0.7
    stats["next"][0, 4], stats["end"][0, 4] = 0.9, 0.61  # sep wins over next, as in the paper
    stats["punct"][0, 5] = 0.59  # just under 0.6
    labels = behaviour_labels(stats)
    assert labels == ["next", "prev", "broad", "cls", "sep", "other"]


def test_behaviour_labels_without_special_tokens():
    # a layout without start and end tokens has no "start"/"end" statistics: those rules never fire
    stats = {"next": np.array([[0.9, 0.0]]), "prev": np.zeros((1, 2)), "entropy": np.zeros((1, 2)),
             "punct": np.zeros((1, 2)), "self": np.zeros((1, 2)), "start": None, "end": None,
             "uniform_entropy": 2.0}
    assert behaviour_labels(stats) == ["next", "other"]


def test_plot_mds_legend():
    emb = np.random.default_rng(0).normal(size=(6, 2))
    fig = plot_mds(emb, ["other", "next", "prev", "broad", "cls", "other"], [1, 1, 1, 2, 2, 2])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["other", "next", "prev", "broad", "cls"]


def test_the_layer_ratio_against_random_assignments_of_heads_to_layers():
    from probing.analysis.similarity import layer_permutation_p

    L, H = 4, 3
    layer = np.repeat(np.arange(L), H)
    blocks = np.where(layer[:, None] == layer[None], 1.0, 2.0)  # same layer closer: ratio 2
    np.fill_diagonal(blocks, 0.0)
    # a random partition of 12 heads into 4 layers of 3 is the true one with chance 1/15,400:
    # no permutation of 1,000 reaches ratio 2, so p is the floor 1/1001
    assert layer_permutation_p(blocks, L, H) == pytest.approx(1 / 1001)
    flat = np.ones((L * H, L * H)) - np.eye(L * H)  # no structure: every assignment ties (>=): p = 1
    assert layer_permutation_p(flat, L, H) == 1.0
