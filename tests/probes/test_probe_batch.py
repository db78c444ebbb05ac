"""collate -> ProbeBatch on hand-written maps: one-word and span queries, layouts, gold sets."""

import numpy as np
import torch

from probing.attention.layout import Layout
from probing.probes.batch import collate

from ._items import item, where_from

T_, F_ = True, False


def test_one_word_queries_of_a_three_word_sentence():
    # tokens: 0 = start, 1..3 = words, 4 = end; maps[k, i, j] = 100k + 10i + j
    batch = collate([item(where_from(3, 2), [2, 0, 2], punct=[F_, F_, T_], labels=[4, 0, -1],
                          vectors=[[1, 2], [3, 4], [5, 6]]),
                     item(where_from(2, 2), [0, 1], labels=[0, 3])])
    assert batch.word_attn.shape == (2, 3, 3, 4) and batch.special_attn.shape == (2, 3, 2, 4)
    for k in range(2):
        # FROM word q+1 TO word c+1, and (transpose slot K + k) FROM word c+1 TO word q+1
        to_words = torch.tensor([[11.0, 12, 13], [21, 22, 23], [31, 32, 33]]) + 100 * k
        assert torch.equal(batch.word_attn[0, :, :, k], to_words)
        assert torch.equal(batch.word_attn[0, :, :, 2 + k], to_words.T)
        # [start, end]: FROM the word TO them, and FROM them TO the word
        assert torch.equal(batch.special_attn[0, :, :, k], torch.tensor([[10.0, 14], [20, 24], [30, 34]]) + 100 * k)
        assert torch.equal(batch.special_attn[0, :, :, 2 + k], torch.tensor([[1.0, 41], [2, 42], [3, 43]]) + 100 * k)
    # the 2-word sentence: its end token is 3, and row/column 3 is padding
    assert torch.equal(batch.word_attn[1, :, :, 0], torch.tensor([[11.0, 12, 0], [21, 22, 0], [0, 0, 0]]))
    assert torch.equal(batch.special_attn[1, :, :, 0], torch.tensor([[10.0, 13], [20, 23], [0, 0]]))
    assert torch.equal(batch.special_attn[1, :, :, 2], torch.tensor([[1.0, 31], [2, 32], [0, 0]]))

    assert torch.equal(batch.lengths, torch.tensor([3, 2]))
    assert torch.equal(batch.word_vectors[0], torch.tensor([[1.0, 2], [3, 4], [5, 6]]))
    assert torch.equal(batch.query_vectors[0], batch.word_vectors[0])  # a one-word span's mean is the word
    assert torch.equal(batch.query_words[0], torch.eye(3, dtype=torch.bool))
    assert torch.equal(batch.query_mask, torch.tensor([[T_, T_, T_], [T_, T_, F_]]))
    assert torch.equal(batch.gold[0], torch.tensor([[F_, F_, T_, F_], [T_, F_, F_, F_], [F_, F_, T_, F_]]))
    assert not batch.gold[1, 2].any()
    assert torch.equal(batch.gold_index, torch.tensor([[2, 0, 2], [0, 1, 0]]))
    assert torch.equal(batch.labels, torch.tensor([[4, 0, -1], [0, 3, -100]]))
    assert torch.equal(batch.scored, torch.tensor([[T_, T_, F_], [T_, T_, F_]]))
    # candidates exist up to n; self-attachment is the module's choice, not masked here
    expected = torch.tensor([[[T_, T_, T_, T_]] * 3, [[T_, T_, T_, F_]] * 2 + [[F_] * 4]])
    assert torch.equal(batch.cand_mask, expected)
    assert torch.equal(batch.in_query[0], torch.tensor([[F_, T_, F_, F_], [F_, F_, T_, F_], [F_, F_, F_, T_]]))


def test_a_two_word_span_averages_its_rows_and_sums_its_columns():
    # query = words 2 and 3 (tokens 2, 3): FROM it = (row 2 + row 3) / 2 = 25 + t,
    # TO it = column 2 + column 3 = 20 t + 5
    batch = collate([item(where_from(3), [0, 0, 0], spans=[(1, 2), (0,)], gold=[(1,), (2, 3)],
                          vectors=[[1, 2], [3, 4], [5, 8]], root=False)])
    assert torch.equal(batch.word_attn[0, 0, :, 0], torch.tensor([26.0, 27, 28]))
    assert torch.equal(batch.word_attn[0, 0, :, 1], torch.tensor([25.0, 45, 65]))
    assert torch.equal(batch.special_attn[0, 0, :, 0], torch.tensor([25.0, 29]))  # to start (t=0), end (t=4)
    assert torch.equal(batch.special_attn[0, 0, :, 1], torch.tensor([5.0, 85]))  # from start, from end
    # the one-word query beside it is untouched
    assert torch.equal(batch.word_attn[0, 1, :, 0], torch.tensor([11.0, 12, 13]))
    assert torch.equal(batch.query_vectors[0, 0], torch.tensor([4.0, 6]))
    assert torch.equal(batch.query_words[0], torch.tensor([[F_, T_, T_], [T_, F_, F_]]))
    # gold sets; no ROOT candidate for this task
    assert torch.equal(batch.gold[0], torch.tensor([[F_, T_, F_, F_], [F_, F_, T_, T_]]))
    assert not batch.cand_mask[0, :, 0].any() and batch.cand_mask[0, :, 1:].all()


def test_one_word_spans_reproduce_the_word_bit_for_bit():
    # the span path (mean of rows, sum of columns) and the word path agree exactly on one-word spans
    gen = np.random.default_rng(0)
    maps = gen.random((3, 6, 6)).astype(np.float16)
    words = collate([item(maps, [0, 1, 2, 3])])
    # a dummy 2-word query forces the span path for the whole item
    spans = collate([item(maps, [0, 1, 2, 3], spans=[(0,), (1,), (2,), (3,), (0, 1)], gold=[(0,)] * 5)])
    assert torch.equal(spans.word_attn[0, :4], words.word_attn[0])
    assert torch.equal(spans.special_attn[0, :4], words.special_attn[0])
    assert words.word_attn.dtype == torch.float32


def test_layouts_without_an_end_or_any_special_token():
    # Gemma-like: <bos> then words, no end token (T = n + 1); its ROOT features from "end" are 0
    bos = collate([item(where_from(2, layout=Layout(True, False)), [0, 1], layout=Layout(True, False))])
    assert torch.equal(bos.word_attn[0, :, :, 0], torch.tensor([[11.0, 12], [21, 22]]))
    assert torch.equal(bos.special_attn[0, :, :, 0], torch.tensor([[10.0, 0], [20, 0]]))
    assert torch.equal(bos.special_attn[0, :, :, 1], torch.tensor([[1.0, 0], [2, 0]]))
    # SmolLM2-like: words only (T = n), word w at token w
    none = collate([item(where_from(2, layout=Layout(False, False)), [0, 1], layout=Layout(False, False))])
    assert torch.equal(none.word_attn[0, :, :, 0], torch.tensor([[0.0, 1], [10, 11]]))
    # ROOT's start slot reads the first position (word 1, the sink): query 1 -> token 0 is 10
    assert torch.equal(none.special_attn[0, :, 0, 0], torch.tensor([0.0, 10])) and not none.special_attn[0, :, 1].any()
    plain = item(where_from(2, layout=Layout(False, False)), [0, 1], layout=Layout(False, False))
    plain.first_as_start = False
    assert not collate([plain]).special_attn.any()  # the option that leaves ROOT without attention


def test_attention_free_batches_carry_no_attention():
    batch = collate([item(None, [2, 0, 2])])
    assert batch.word_attn is None and batch.special_attn is None and batch.num_maps == 0


def test_without_a_start_token_root_reads_the_first_position():
    from probing.probes.batch import _specials

    causal = Layout(start=False, end=False)
    assert _specials(causal, 3) == [(0, 0)]  # the first word: the causal LM's sink
    assert _specials(causal, 3, first_as_start=False) == []  # ROOT's attention features stay 0
    assert _specials(Layout(True, False), 3) == [(0, 0)]  # Gemma: <bos> is the start token
    assert _specials(Layout(True, True), 3) == [(0, 0), (1, 4)]  # [CLS] ... [SEP]
