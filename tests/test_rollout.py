import numpy as np
import pytest

from probing.attention.rollout import rollout

# 2 layers x 2 heads over 3 tokens, layer-major (k = layer * 2 + head)
MAPS = np.array([
    [[1, 0, 0], [1, 0, 0], [1, 0, 0]],  # layer 1 head 1: all on token 0
    [[1, 0, 0], [0, 0, 1], [0, 0, 1]],  # layer 1 head 2
    [[1, 0, 0], [0, 1, 0], [0, 1, 0]],  # layer 2 head 1
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],  # layer 2 head 2
], dtype=np.float32)


def test_hand_computed_two_layers_two_heads():
    # layer 1: mean_h A = [[1,0,0],[.5,0,.5],[.5,0,.5]] -> Â_1 = ½ mean + ½ I
    r1 = np.array([[1, 0, 0], [0.25, 0.5, 0.25], [0.25, 0, 0.75]])
    # layer 2: mean_h A = [[1,0,0],[0,1,0],[0,.5,.5]] -> Â_2 = [[1,0,0],[0,1,0],[0,.25,.75]]; R_2 = Â_2 R_1:
    # row 2 = .25 * (.25, .5, .25) + .75 * (.25, 0, .75)
    r2 = np.array([[1, 0, 0], [0.25, 0.5, 0.25], [0.25, 0.125, 0.625]])
    got = rollout(MAPS, num_layers=2, num_heads=2)
    assert got.shape == (2, 3, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.stack([r1, r2]), atol=1e-7)


def test_rows_that_do_not_sum_to_one_are_renormalised():
    # raw norms twice the weights in layer 1: ½ mean + ½ I = [[1.5,0,0],[.5,.5,.5],[.5,0,1]], rows / their sums
    got = rollout(MAPS * np.array([2, 2, 1, 1], dtype=np.float32)[:, None, None], num_layers=2, num_heads=2)
    np.testing.assert_allclose(got[0], [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 0, 2 / 3]], atol=1e-7)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)


def test_one_head_per_layer_and_float16_input():
    """A cache of one "head" per layer (rollout itself, ALTI) reads the same way; float16 as the cache stores."""
    one = MAPS.reshape(2, 2, 3, 3).mean(1).astype(np.float16)
    np.testing.assert_allclose(rollout(one, num_layers=2, num_heads=1), rollout(MAPS, 2, 2), atol=1e-3)


def test_residual_zero_multiplies_the_maps_as_they_are():
    """ALTI's per-layer maps hold the residual already: R_2 = C_2 C_1 (Ferrando et al.'s rollout)."""
    c = np.array([[[1, 0], [0.5, 0.5]], [[0.5, 0.5], [0, 1]]], dtype=np.float32)
    # C_2 C_1 = [[.5*1 + .5*.5, .5*.5], [.5, .5]] = [[.75, .25], [.5, .5]]
    np.testing.assert_allclose(rollout(c, num_layers=2, num_heads=1, residual=0.0)[1], [[0.75, 0.25], [0.5, 0.5]])
    with pytest.raises(ValueError, match="residual share must be in"):
        rollout(c, 2, 1, residual=1.5)


def test_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"needs \(2\*3, T, T\) maps, got \(4, 3, 3\)"):
        rollout(MAPS, num_layers=2, num_heads=3)


def test_rollout_is_a_stored_quantity_derived_from_the_attention_cache(compose_tiny, monkeypatch):
    import dataclasses

    from hydra.utils import instantiate

    from probing.attention import extract as ex
    from probing.attention import store as st

    cfg = compose_tiny("extract", "split=dev")
    encoder, corpus, settings = instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)
    attention, _ = st.open_split(encoder, corpus, "dev", settings, cfg.paths.attention_cache)
    # no forward pass: the model is never loaded for it
    monkeypatch.setattr(ex, "plan_extraction", lambda *a, **k: pytest.fail("rollout ran the model"))
    rolled, _ = st.open_split(encoder, corpus, "dev", dataclasses.replace(settings, quantity="rollout"),
                              cfg.paths.attention_cache)
    assert rolled.key["quantity"] == "rollout" and rolled.dir != attention.dir
    assert (rolled.num_layers, rolled.num_heads) == (attention.num_layers, 1)  # one map per layer
    for i in attention.kept:
        want = rollout(attention.maps(i), attention.num_layers, attention.num_heads)
        np.testing.assert_allclose(rolled.maps(i), want, atol=1e-3)  # float16 in the cache
