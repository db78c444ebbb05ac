"""Probe nets on hand-built batches: exact scores, ROOT forms, init, distance features, rules."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from probing.attention.layout import Layout
from probing.probes.attention import AttnOnly, AttnPlusGlove, PairWeightedSum
from probing.probes.baselines import DistancesPlusGlove, NearestOpinion, RightBranching
from probing.probes.batch import collate
from probing.probes.features import clipped_distance_features, released_distance_features

from ..conftest import make_net
from ._items import item, where_from


def _set(param: torch.Tensor, values) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(values, dtype=param.dtype))


def test_attn_only_scores_with_given_weights_and_the_released_root():
    # 3 words, one map A[i, j] = 10 i + j (tokens 0 = start, 4 = end); M = 2 weights: A and A^T
    batch = collate([item(where_from(3), [2, 0, 2])])
    net = make_net("attn_only", num_maps=1)
    _set(net.weight, [1.0, 0.5])
    _set(net.root.start, 2.0)
    _set(net.root.end, -1.0)
    scores = net(batch)[0]
    for q in range(3):
        d = q + 1  # the query's token
        for c in range(1, 4):
            assert scores[q, c] == 1.0 * (10 * d + c) + 0.5 * (10 * c + d)
        # ROOT: per map s * attn(.., start) + e * attn(.., end); for A^T FROM start/end TO the word
        root_a = 2.0 * (10 * d + 0) - 1.0 * (10 * d + 4)
        root_at = 2.0 * (0 + d) - 1.0 * (40 + d)
        assert scores[q, 0] == 1.0 * root_a + 0.5 * root_at


def test_start_end_root_is_the_old_form():
    # ROOT = w * A(q -> start) + u * A(q -> end): the transpose weight meets the query's attention to end
    batch = collate([item(where_from(3), [2, 0, 2])])
    net = make_net("attn_only", num_maps=1, root="start_end")
    _set(net.weight, [1.0, 0.5])
    assert not list(net.root.parameters())
    assert net(batch)[0, :, 0].tolist() == [1.0 * (10 * d) + 0.5 * (10 * d + 4) for d in (1, 2, 3)]


def test_root_feature_of_a_token_the_layout_lacks_is_zero():
    layout = Layout(False, False)
    plain = item(where_from(2, layout=layout), [0, 1], layout=layout)
    plain.first_as_start = False  # no start token and no stand-in: ROOT's logit is a constant 0
    net = make_net("attn_only", num_maps=1)
    _set(net.weight, [1.0, 1.0])
    assert net(collate([plain]))[0, :, 0].tolist() == [0.0, 0.0]
    # by default the first position stands in for the start token: s * attn(q -> word 1) + e * 0
    # (transposed map: s * attn(word 1 -> q)), the released ROOT form's two scalars
    s = float(net.root.start)
    got = net(collate([item(where_from(2, layout=layout), [0, 1], layout=layout)]))[0, :, 0]
    # where_from's weight from token i to token j is 10 i + j: q=0 (word 1) -> token 0 is 0 both
    # ways, q=1 -> token 0 is 10, token 0 -> q=1 is 1
    assert s != 0 and got.tolist() == pytest.approx([0.0, s * 10 + s * 1])


def test_attn_plus_glove_matches_its_formula():
    gen = torch.Generator().manual_seed(1)
    maps = torch.rand(2, 6, 6, generator=gen)
    vectors = torch.randn(4, 3, generator=gen)
    batch = collate([item(maps / maps.sum(-1, keepdim=True), [0, 1, 2, 3], vectors=vectors)])
    net = make_net("attn_plus_glove", num_maps=2, vector_dim=3)
    scores = net(batch)[0]
    W = torch.cat([net.cand.weight, net.query.weight], 1)  # (M, 2D): the released dense over [v_c ; v_q]
    for q in range(4):
        for c in range(5):
            v_c = torch.zeros(3) if c == 0 else vectors[c - 1]  # candidate c's OWN vector
            w = W @ torch.cat([v_c, vectors[q]]) + net.query.bias
            feats = net.root(batch.special_attn)[0, q] if c == 0 else batch.word_attn[0, q, c - 1]
            assert torch.allclose(scores[q, c], (w * feats).sum(), atol=1e-5)


def test_pair_weighted_sum_matches_autograd_on_the_whole_batch():
    gen = torch.Generator().manual_seed(3)
    attn = torch.rand(3, 4, 5, 6, generator=gen)
    query = torch.randn(3, 4, 6, generator=gen, requires_grad=True)
    cand = torch.randn(3, 5, 6, generator=gen, requires_grad=True)
    grad = torch.randn(3, 4, 5, generator=gen)
    expected = (attn * (query[:, :, None] + cand[:, None])).sum(-1)
    expected_grads = torch.autograd.grad(expected, (query, cand), grad)
    got = PairWeightedSum.apply(attn, query, cand)
    assert torch.allclose(got, expected, atol=1e-6)
    for g, e in zip(torch.autograd.grad(got, (query, cand), grad), expected_grads):
        assert torch.allclose(g, e, atol=1e-5)


def test_released_init_is_glorot_uniform():
    torch.manual_seed(0)
    net = make_net("attn_only", num_maps=144)
    bound = math.sqrt(6 / 576)  # a 1-D [288] variable: fan_in = fan_out = 288
    assert net.weight.abs().max() <= bound and net.weight.abs().max() > 0.9 * bound
    assert 0 < abs(net.root.start) <= math.sqrt(3) and 0 < abs(net.root.end) <= math.sqrt(3)
    glove = make_net("attn_plus_glove", num_maps=144, vector_dim=50)
    bound = math.sqrt(6 / (100 + 288))  # the (2D -> 288) dense
    for w in (glove.cand.weight, glove.query.weight):
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert not glove.query.bias.any()
    mlp = make_net("distances_plus_glove", vector_dim=50)
    bound = math.sqrt(6 / (8 + 100 + 256))
    assert mlp.dist_in.weight.abs().max() <= bound and not mlp.query_in.bias.any()
    assert mlp.out.weight.abs().max() <= math.sqrt(6 / 257)


def test_zeros_and_pytorch_init():
    assert not any(p.any() for p in make_net("attn_only", num_maps=4, init="zeros").parameters())
    # with zero map weights and zero ROOT scalars the ROOT path has no gradient: a saddle
    net = make_net("attn_only", num_maps=1, init="zeros")
    batch = collate([item(where_from(3) / 50, [0, 0, 0])])
    F.cross_entropy(net(batch)[0], torch.zeros(3, dtype=torch.long)).backward()
    assert net.root.start.grad == 0 and net.root.end.grad == 0 and net.weight.grad.any()
    torch.manual_seed(0)
    old = make_net("attn_only", num_maps=4, init="pytorch")
    assert not old.weight.any()  # the old AttnOnly started at zero
    glove = make_net("attn_plus_glove", num_maps=4, vector_dim=50, init="pytorch")
    assert glove.cand.weight.abs().max() <= 1 / math.sqrt(50)  # nn.Linear's kaiming-uniform
    with pytest.raises(ValueError):
        make_net("attn_only", num_maps=4, init="xavier")


def _released_make_distance_features(seq_len: int) -> np.ndarray:
    """clarkkev/attention-analysis Syntax_Analysis.ipynb, verbatim but for xrange."""
    distances = np.zeros((seq_len, seq_len))
    for i in range(seq_len):
        for j in range(seq_len):
            if i < j:
                distances[i, j] = (j - i) / float(seq_len)
    feature_matrices = [distances, distances.T]
    for k in range(3):
        for direction in [1] if k == 0 else [-1, 1]:
            feature_matrices.append(np.eye(seq_len, k=k * direction))
    features = np.stack(feature_matrices)
    features = np.concatenate([np.zeros([8 - 1, seq_len, 1]), features], -1)
    root = np.zeros((1, seq_len, seq_len + 1))
    root[:, :, 0] = 1
    return np.concatenate([features, root], 0)


def test_released_distance_features_of_a_three_word_sentence():
    feats = released_distance_features(collate([item(None, [0, 1, 2])]))[0]  # (Q, N+1, 8)
    third = 1 / 3
    assert torch.allclose(feats[0], torch.tensor([
        [0, 0, 0, 0, 0, 0, 0, 1],  # ROOT
        [0, 0, 1, 0, 0, 0, 0, 0],  # itself
        [third, 0, 0, 0, 1, 0, 0, 0],  # one to the right: (c-d)/n and c == d+1
        [2 * third, 0, 0, 0, 0, 0, 1, 0],  # two to the right
    ]))
    assert feats[2, 1].tolist() == pytest.approx([0, 2 * third, 0, 0, 0, 1, 0, 0])  # c == d-2
    assert feats[2, 2].tolist() == pytest.approx([0, third, 0, 1, 0, 0, 0, 0])  # c == d-1
    for n in (3, 7):
        ours = released_distance_features(collate([item(None, list(range(n)))]))[0]
        assert np.allclose(ours.permute(2, 0, 1).numpy(), _released_make_distance_features(n))


def test_clipped_distance_features_and_spans():
    feats = clipped_distance_features(collate([item(None, [0, 1, 2])]), max_distance=2)[0]
    assert feats[0, 3].tolist() == [1.0, 0, 0, 0, 0, 1, 0]  # word 1 -> word 3: +2
    assert feats[2, 1].tolist() == [-1.0, 1, 0, 0, 0, 0, 0]
    assert feats[1, 0].tolist() == [0.0, 0, 0, 0, 0, 0, 1]  # ROOT
    # a span measures from its nearest edge: words 2-3 -> word 5 is +2, word 1 is -1, word 3 inside
    span = released_distance_features(collate([item(None, [0] * 5, spans=[(1, 2)], gold=[(5,)], root=False)]))
    assert span[0, 0, 5, 0] == pytest.approx(2 / 5) and span[0, 0, 5, 6] == 1
    assert span[0, 0, 1, 3] == 1 and span[0, 0, 3, 2] == 1


@pytest.mark.parametrize("features", ["released", "clipped"])
def test_distances_plus_glove_learns_fixed_offsets(features):
    # head = previous word, the first word -> ROOT: only the distance features can tell this
    batch = collate([item(None, list(range(n)), vectors=np.random.default_rng(n).normal(size=(n, 2)))
                     for n in (3, 5, 6)])
    torch.manual_seed(0)
    net = make_net("distances_plus_glove", vector_dim=2, hidden_dim=16, features=features, max_distance=3)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    mask = batch.query_mask
    gold = batch.gold_index
    for _ in range(100):
        optimizer.zero_grad()
        scores = net(batch).masked_fill(~batch.cand_mask, float("-inf"))
        F.cross_entropy(scores[mask], gold[mask]).backward()
        optimizer.step()
    pred = net(batch).masked_fill(~batch.cand_mask, float("-inf")).argmax(-1)
    assert torch.equal(pred[mask], gold[mask])


def test_right_branching_on_words_and_spans():
    # "The cat sat on the mat ." -> 2 3 4 5 6 7 0
    batch = collate([item(None, [2, 3, 0, 6, 6, 3, 3]), item(None, [0, 1])])
    scores = RightBranching()(batch).masked_fill(~batch.cand_mask, float("-inf"))
    assert scores.argmax(-1)[0].tolist() == [2, 3, 4, 5, 6, 7, 0]
    assert scores.argmax(-1)[1, :2].tolist() == [2, 0]
    assert scores[0, 0, 2] == 0.0 and scores[0, 0, 3] == RightBranching.WRONG
    # a span's next word is the one after its last word
    span = collate([item(None, [0] * 4, spans=[(0, 1), (3,)], gold=[(3,), (1,)], root=False)])
    assert RightBranching()(span)[0].argmax(-1).tolist() == [3, 0]


def test_nearest_opinion():
    # "The fish tacos were great but the service was painfully slow ." aspects 2-3 -> 5, 8 -> 10-11
    batch = collate([item(None, [0] * 12, spans=[(1, 2), (7,)], gold=[(5,), (10, 11)], root=False)])
    scores = NearestOpinion()(batch)[0]
    assert scores.argmax(-1).tolist() == [5, 10]
    assert scores[0, 5] == -2 and scores[1, 10] == -2 and scores[1, 5] == -3 and scores[0, 1] == NearestOpinion.WRONG
    # equally near on both sides: the left one
    tie = collate([item(None, [0] * 5, spans=[(2,)], gold=[(2, 4)], root=False)])
    assert NearestOpinion()(tie)[0].argmax(-1).tolist() == [2]


def test_attention_free_nets_say_so():
    assert not DistancesPlusGlove.uses_attention and not RightBranching.uses_attention
    assert not NearestOpinion.uses_attention and AttnOnly.uses_attention and AttnPlusGlove.uses_attention

