"""Gu et al.'s sink metric: hand-computed α₁ and shares, the packing of inputs, and the job."""

import numpy as np
import pytest
import torch

from probing.analysis import paper, sink_metric
from probing.analysis.sink_metric import alpha_first, pack_inputs, sink_stats
from probing.attention.encoders.tiny import TinyRandom
from probing.data.sentence import Sentence

from ..conftest import analyze, model_node


def run_job(cfg):
    return analyze(cfg)


def maps_with_first_column(columns) -> np.ndarray:
    """``columns`` (..., T): attention of each row to position 0; the rest of row i goes to i itself
    (row 0 all on 0), so each row sums to 1 -> (..., T, T)."""
    c = np.asarray(columns, dtype=np.float64)
    T = c.shape[-1]
    m = np.zeros(c.shape + (T,))
    m[..., :, 0] = c
    rows = np.arange(1, T)
    m[..., rows, rows] += 1 - c[..., 1:]
    return m


# (input, layer, head, row) attention to position 0, T = 5 rows; row 0 is 1 as in a causal model
COLUMNS = [
    [[[1, 0.5, 0, 0, 0],           # α = 1.5/5 = 0.3 exactly: not over ε
      [1, 1, 0.5, 0, 0]],          # 2.5/5 = 0.5
     [[1, 0.25, 0.25, 0.25, 0.25],  # 2/5 = 0.4
      [1, 0, 0, 0, 0]]],           # 1/5 = 0.2
    [[[1, 1, 1, 1, 1],             # 1.0
      [1, 1, 1, 1, 1]],            # 1.0
     [[1, 1, 1, 1, 1],             # 1.0
      [1, 0, 0, 0, 0]]],           # 0.2
]


def test_alpha_and_share_on_hand_written_maps():
    maps = maps_with_first_column(COLUMNS)  # (2 inputs, 2 layers, 2 heads, 5, 5)
    alpha = alpha_first(maps)
    np.testing.assert_allclose(alpha, [[[0.3, 0.5], [0.4, 0.2]], [[1, 1], [1, 0.2]]])
    assert alpha[0, 0, 0] == 0.3  # right at ε
    stats = sink_stats(alpha, 0.3)
    # over ε: 0.5, 0.4 of input 0 and three 1.0s of input 1 -> 5 of 8 (0.3 itself does not count)
    assert stats["share"] == 5 / 8
    np.testing.assert_allclose(stats["share_by_layer"], [3 / 4, 2 / 4])
    np.testing.assert_allclose(stats["alpha_by_layer"], [(0.3 + 0.5 + 1 + 1) / 4, (0.4 + 0.2 + 1 + 0.2) / 4])
    np.testing.assert_allclose(stats["share_by_head"], [[1 / 2, 1], [1, 0]])
    # without the forced first row: 0.5/4, 1.5/4, 1/4, 0 | 1, 1, 1, 0 -> only 0.375 and the 1s
    free = sink_stats(alpha_first(maps, forced_rows=1), 0.3)
    assert free["share"] == 4 / 8


def test_share_is_computed_in_float64_whatever_the_maps_dtype():
    # float32(1.5) / 5 in float32 is 0.30000001 > 0.3: the cast keeps the strict threshold exact
    maps = maps_with_first_column(COLUMNS).astype(np.float32)
    assert sink_stats(alpha_first(maps), 0.3)["share"] == 5 / 8


def test_share_threshold_is_per_input_not_on_the_mean():
    # one head: α = 0.2 on one input, 0.5 on the other; mean 0.35 > 0.3 but one input of two counts
    alpha = np.array([[[0.2]], [[0.5]]])
    assert sink_stats(alpha, 0.3)["share"] == 0.5


def test_bad_shapes_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"maps must be \(..., T, T\)"):
        alpha_first(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at least one input"):
        sink_stats(np.zeros((0, 2, 2)))


def test_pack_inputs_fills_exactly_T_pieces_with_the_tokenizers_specials():
    tok = TinyRandom(**model_node("tiny_random")).load_tokenizer()  # MiniLM's WordPiece: "the", "dog" are one piece
    text = [Sentence(words=w.split(), sent_id=str(i)) for i, w in
            enumerate(["the dog ran", "a cat sat down", "it rained", "we left"])]
    inputs, layout = pack_inputs(tok, text, tokens=6)
    assert layout.start and layout.end
    # 4 words per input: "the dog ran" + "a cat sat down" (7 words, cut to 4); then "it rained we
    # left" (4 words) starts at the next unused sentence
    assert [tok.convert_ids_to_tokens(i) for i in inputs] == [
        ["[CLS]", "the", "dog", "ran", "a", "[SEP]"], ["[CLS]", "it", "rained", "we", "left", "[SEP]"]]
    assert pack_inputs(tok, text, tokens=6, max_inputs=1)[0] == inputs[:1]
    with pytest.raises(ValueError, match="leaves no room"):
        pack_inputs(tok, text, tokens=2)


def test_pack_inputs_of_a_bos_model():
    tok = TinyRandom(**model_node("tiny_gemma3")).load_tokenizer()
    inputs, layout = pack_inputs(tok, [Sentence(words=["abc", "de"], sent_id="x")], tokens=5, add_bos=True)
    # byte-level: one piece per character, the space on the next word; <bos> first
    assert (layout.start, layout.end) == (True, False)
    assert tok.convert_ids_to_tokens(inputs[0]) == ["<bos>", "a", "b", "c", "Ġ"]


def fake_forward(rule):
    """forward_layers replaced by hand-written maps: ``rule(layer, T)`` -> (T,) column 0."""

    def forward(model, ids, mask, quantity="attention", renormalize=True):
        B, T = ids.shape
        H = model.config.num_attention_heads
        out = []
        for layer in range(model.config.num_hidden_layers):
            col = torch.as_tensor(rule(layer, T), dtype=torch.float64)
            maps = torch.zeros(B, H, T, T, dtype=torch.float64)
            maps[..., :, 0] = col
            out.append(maps)
        return tuple(out)

    return forward


def test_job_on_a_causal_model_with_hand_written_maps(compose_tiny, monkeypatch):
    # tiny_llama, 2 layers x 4 heads, T = 16. Layer 1: row 0 is 1 (forced), the others 0.26:
    # α = (1 + 15 * 0.26) / 16 = 0.30625 > 0.3, but 0.26 without the forced row. Layer 2: all 1.
    def rule(layer, T):
        return [1.0] + [0.26 if layer == 0 else 1.0] * (T - 1)

    monkeypatch.setattr(sink_metric, "forward_layers", fake_forward(rule))
    cfg = compose_tiny("analyze", "analysis=sink_metric", "~logger", "model=tiny_llama",
                       *sink_metric.SinkMetricJob.tiny_overrides)
    summary = run_job(cfg)
    assert summary["tokens"] == 16 and summary["inputs"] > 1 and summary["first_token"] == "the first word piece"
    assert summary["sink_share"] == 1.0 and summary["sink_share_without_forced_row"] == 0.5
    np.testing.assert_allclose(summary["alpha1_by_layer"], [0.30625, 1.0])
    assert summary["share_by_layer"] == [1.0, 1.0] and summary["alpha1_max_layer"] == 2


def test_job_on_the_tiny_encoder(compose_tiny, tmp_path):
    cfg = compose_tiny("analyze", "analysis=sink_metric", "~logger", *sink_metric.SinkMetricJob.tiny_overrides)
    summary = run_job(cfg)
    # an encoder's first position is [CLS], and no row of it is forced
    assert summary["first_token"] == "[CLS]" and summary["sink_share"] == summary["sink_share_without_forced_row"]
    assert len(summary["alpha1_by_layer"]) == 2 and 0 <= summary["sink_share"] <= 1
    table = (tmp_path / "run" / "sink_metric.md").read_text()
    assert all(f"paper: {name}" in table for name in paper.SINK_METRIC)


def test_job_says_when_the_split_is_too_short(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=sink_metric", "~logger", "split=dev", "analysis.tokens=64")
    with pytest.raises(ValueError, match="no input could be packed"):
        run_job(cfg)
