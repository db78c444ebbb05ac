"""Two-segment inputs: hand-computed [SEP] statistics, the pairing of sentences, and the job."""

from types import SimpleNamespace

import numpy as np
import pytest

from probing.analysis.segment_pairs import (
    PairPositions,
    SegmentPairsJob,
    document_pairs,
    pair_positions,
    pair_stats,
    segment_pair_stats,
)
from probing.attention.encoders.tiny import TinyRandom
from probing.data.sentence import Sentence

from ..conftest import analyze, model_node


def run_job(cfg):
    return analyze(cfg)


def test_pair_positions_of_bert_and_mpnet_templates():
    # [CLS] a [SEP] b [SEP]  and  <s> a </s></s> b </s>
    assert pair_positions([1, 0, 1, 0, 1]) == PairPositions(0, (2,), 4)
    assert pair_positions([1, 0, 1, 1, 0, 1]) == PairPositions(0, (2, 3), 5)
    with pytest.raises(ValueError, match="ends in no special token"):
        pair_positions([1, 0, 0])  # <bos> a b: a causal LM's "pair"
    with pytest.raises(ValueError, match="no special token between"):
        pair_positions([1, 0, 0, 1])


# [CLS] a1 a2 [SEP] b1 [SEP]: one head; rows are the attention FROM each piece
MAP = np.array([
    [0.5, 0.1, 0.1, 0.2, 0.0, 0.1],  # [CLS]: 0.3 on the separators
    [0.2, 0.2, 0.2, 0.2, 0.1, 0.1],  # a1: 0.3
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],  # a2: 1.0
    [0.0, 0.0, 0.0, 0.9, 0.0, 0.1],  # [SEP]: 1.0
    [0.1, 0.1, 0.1, 0.3, 0.1, 0.3],  # b1: 0.6
    [0.0, 0.0, 0.0, 0.4, 0.2, 0.4],  # [SEP]: 0.8
])
POS = PairPositions(0, (3,), 5)


def test_pair_stats_by_hand():
    s = pair_stats(MAP[None, None], POS)
    expected = {
        "sep": (0.3 + 0.3 + 1.0 + 1.0 + 0.6 + 0.8) / 6,  # every row, both separators
        "sep_a": (0.2 + 0.2 + 1.0 + 0.9 + 0.3 + 0.4) / 6,  # column 3
        "sep_b": (0.1 + 0.1 + 0.0 + 0.1 + 0.3 + 0.4) / 6,  # column 5
        "sep_sep": (1.0 + 0.8) / 2,  # the two separator rows: 0.9, the paper's "over 90%" just missed
        "rest_sep": (0.3 + 0.3 + 1.0 + 0.6) / 4,  # [CLS], a1, a2, b1
        "start": (0.5 + 0.2 + 0.0 + 0.0 + 0.1 + 0.0) / 6,
    }
    assert set(s) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(s[key], [[value]], err_msg=key)


class UniformModel:
    """Every real row spreads its attention evenly over the real pieces (2 layers x 1 head)."""

    def __call__(self, input_ids, attention_mask, output_attentions):
        m = attention_mask[:, None, None, :].float()
        a = m / m.sum(-1, keepdim=True) * attention_mask[:, None, :, None]
        return SimpleNamespace(attentions=(a, a))


def test_inputs_weigh_the_same_whatever_their_length():
    # [CLS] x [SEP] y [SEP] (5 pieces) and a 10-piece pair, padded into one batch: each real row
    # puts 2/n on the two separators. Mean over inputs: (2/5 + 2/10) / 2 = 0.3. Pooling the rows
    # would give (5 * 2/5 + 10 * 2/10) / 15 = 0.267; counting the 5 padded rows of the short input
    # (all zero) would give (2/10 + 2/10) / 2 = 0.2.
    encoded = [([1] * 5, PairPositions(0, (2,), 4)), ([1] * 10, PairPositions(0, (4,), 9))]
    stats = segment_pair_stats(UniformModel(), encoded, pad_id=0, device="cpu", batch_size=2)
    np.testing.assert_allclose(stats["sep"], [[0.3], [0.3]])
    np.testing.assert_allclose(stats["sep_sep"], [[0.3], [0.3]])  # a separator row is uniform too
    np.testing.assert_allclose(stats["start"], [[(1 / 5 + 1 / 10) / 2]] * 2)


def sent(n, doc):
    return Sentence(words=["the"] * n, sent_id=f"{doc}{n}", doc_id=doc)  # "the": one piece each


def test_document_pairs_split_consecutive_sentences_of_one_document():
    tok = TinyRandom(**model_node("tiny_random")).load_tokenizer()
    sents = [sent(3, "d1"), sent(2, "d1"), sent(4, "d1"), sent(5, "d2"), sent(2, "d3"), sent(2, "d3")]
    pairs = list(document_pairs(sents, tok, budget=6))
    # d1: 3 + 2 + 4 = 9 >= 6 pieces; A = 3 + 2 (5 against 4) is closer to half than A = 3 (3 against
    # 6). d2: one sentence, no B: dropped. d3: ends the data under the budget: 2 | 2.
    assert [([len(s) for s in a], [len(s) for s in b]) for a, b in pairs] == [([3, 2], [4]), ([2], [2])]
    assert all(len({s.doc_id for s in a + b}) == 1 for a, b in pairs)


def test_job_on_the_tiny_encoder(compose_tiny, tmp_path):
    cfg = compose_tiny("analyze", "analysis=segment_pairs", "~logger", *SegmentPairsJob.tiny_overrides)
    summary = run_job(cfg)
    # tiny train: 3 documents of 3, 3 and 2 sentences, each under 125 pieces: one pair each
    assert summary["inputs"] == 3 and summary["separators_between"] == 1 and summary["end_token"] == "[SEP]"
    for key in ("sep", "sep_a", "sep_b", "sep_sep", "rest_sep", "start"):
        assert len(summary[f"{key}_by_layer"]) == 2
        assert summary[f"{key}_max"] == max(summary[f"{key}_by_layer"])
    # both separators together are the sum of each
    np.testing.assert_allclose(summary["sep_by_layer"],
                               np.add(summary["sep_a_by_layer"], summary["sep_b_by_layer"]))
    assert (tmp_path / "run" / "segment_pairs_layers.md").is_file()


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_gemma3"])
def test_causal_models_cannot_be_tested(compose_tiny, model, tmp_path):
    summary = run_job(compose_tiny("analyze", "analysis=segment_pairs", "~logger", f"model={model}"))
    assert "cannot be tested: no end token" in summary["skipped"]
    assert not (tmp_path / "run" / "segment_pairs_layers.csv").exists()

