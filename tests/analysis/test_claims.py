"""Every verdict rule of the families page on hand-made evidence: each must come out "does not
hold" where the paper's claim fails, and "holds" only where it holds."""

import pytest

from probing.analysis import claims as cl

UNIFORM = 0.1


def surface(end=None, start=None, first=(0.2, 0.2), end_self=None):
    return {"end_by_layer": end, "start_by_layer": start, "first_by_layer": list(first),
            "end_to_end_by_layer": end_self, "uniform_share": UNIFORM}


def test_the_sep_sink_is_tested_on_sep_and_the_broader_reading_is_its_own_row():
    # mpnet-like: the start token takes 0.59, [SEP] never over 0.32
    e = {"surface": surface(end=[0.1, 0.32], start=[0.59, 0.2], first=[0.0, 0.0])}
    assert cl.sep_sink(e).startswith("does not hold: at most 0.32 (layer 2/2)")
    assert cl.any_sink(e).startswith("holds: 0.59 on the start token in layer 1/2")
    assert cl.sep_sink({"surface": surface()}).startswith("cannot be tested: no end token")
    assert cl.sep_sink({"surface": surface(end=[0.6, 0.4])}).startswith("holds: at most 0.60 (layer 1/2); over 0.5 in layers 1")


def test_exactly_half_is_not_over_half():
    e = {"surface": surface(end=[0.5], start=[0.5], first=[0.5])}
    assert cl.sep_sink(e).startswith("does not hold") and cl.any_sink(e).startswith("does not hold")


def test_sep_rows_on_sep_under_both_inputs():
    assert cl.sep_self({"surface": surface(end=[0.1], end_self=[0.06, 0.28])}).startswith("does not hold: 0.06-0.28")
    assert cl.sep_self({"surface": surface(end=[0.1], end_self=[0.95])}).startswith("holds")
    assert cl.sep_self_pairs({"segment_pairs": {"sep_sep_by_layer": [0.9, 0.2]}}).startswith("does not hold")
    assert cl.sep_self_pairs({"segment_pairs": {"skipped": "no end token"}}).startswith("cannot be tested: no end")
    assert cl.sep_sink_pairs({"segment_pairs": {"sep_by_layer": [0.25, 0.22]}}).startswith("does not hold")


def test_the_gradient_verdict_needs_sink_layers_below_the_others():
    # Gemma-like: every layer's ratio is below 1, the non-sink ones too: the sink layers must be
    # lower than the others, not merely below 1
    e = {"surface": surface(start=[0.9, 0.9, 0.2, 0.3]), "gradient": {"ratio_by_layer": [0.5, 0.6, 0.4, 0.46],
                                                                      "sink": "<bos>"}}
    assert cl.gradient_noop(e).startswith("does not hold: median grad-to-<bos>/grad-to-others 0.55 in 2 sink "
                                          "layers vs 0.43 in 2 others")
    e["gradient"]["ratio_by_layer"] = [0.2, 0.3, 1.2, 0.9]
    assert cl.gradient_noop(e).startswith("holds: median grad-to-<bos>/grad-to-others 0.25 in 2 sink layers vs 1.05")
    e["surface"] = surface(start=[0.9, 0.9, 0.9, 0.9])
    assert cl.gradient_noop(e).startswith("cannot be tested: every layer is a sink layer")
    assert cl.gradient_noop({"surface": surface(start=[0.9])}).startswith("cannot be tested: no trained LM head")


def test_norms_must_shrink_the_sink():
    e = {"surface": surface(start=[0.7, 0.1]), "surface-norm": {"start_by_layer": [0.72, 0.1]}}
    assert cl.norm_small(e).startswith("does not hold: start token 0.70 of the weights, 0.72 of the norms")
    e["surface-norm"]["start_by_layer"] = [0.16, 0.1]
    assert cl.norm_small(e).startswith("holds")
    assert cl.norm_small({"surface": surface(start=[0.7])}).startswith("cannot be tested")


ROWS = {"All": {"accuracy": 30.0, "head": "2-1", "baseline_accuracy": 31.0, "baseline_offset": 1},
        "det": {"accuracy": 90.0, "baseline_accuracy": 50.0}, "amod": {"accuracy": 60.0, "baseline_accuracy": 60.0}}


def test_syntax_verdicts_on_all_words_and_on_every_relation():
    e = {"syntax_heads": {"rows": ROWS}}
    assert cl.syntax_all(e) == "does not hold: All 30.0 (2-1) vs 31.0 (offset +1); 1 of 2 relations"
    assert cl.syntax_every(e) == "does not hold: not for amod"  # a tie is no win


def test_coreference_under_both_readings_of_the_baseline():
    c = {"best_head": "4-4", "best_accuracy": 0.648, "nearest_accuracy": 0.207, "same_head_accuracy": 0.572,
         "same_head_accuracy_none": 0.572, "same_head_accuracy_nearest": 0.669}
    e = {"coref_heads": c}
    assert cl.coref_strict(e).startswith("holds: 4-4 64.8 vs nearest 20.7, same head word 57.2")
    assert cl.coref_fallback(e).startswith("does not hold: 4-4 64.8 vs nearest 20.7, same head word 66.9")


def test_similarity_needs_its_permutation_control():
    assert cl.similarity({"head_similarity": {"different_over_same_layer_distance": 1.3,
                                              "layer_permutation_p": 0.2}}).startswith("does not hold")
    assert cl.similarity({"head_similarity": {"different_over_same_layer_distance": 1.3,
                                              "layer_permutation_p": 0.001}}).startswith("holds")


def test_probe_orderings_over_seeds_with_their_spread():
    e = {"probes": {"attn_only": [0.553, 0.552, 0.554], "distances_plus_glove": [0.58, 0.585, 0.582],
                    "attn_plus_glove": [0.68]}}
    assert cl.attn_beats_distances(e) == ("does not hold: Attn 55.3 ± 0.1 (n=3) vs Distances + GloVe 58.2 ± 0.3 (n=3) "
                                          "dev UAS")
    assert cl.attn_glove_beats_distances(e).startswith("holds: Attn + GloVe 68.0 (n=1)")
    assert cl.attn_glove_beats_random(e) == "cannot be tested: no random-init runs"
    near = {"probes": {"attn_only": [0.60, 0.50], "distances_plus_glove": [0.56]}}
    assert cl.attn_beats_distances(near).endswith("within the seed spread")


@pytest.mark.parametrize("claim", cl.CLAIMS, ids=lambda c: c.judge.__name__)
def test_every_row_names_its_rule_control_and_seeds(claim):
    row = claim.row({"m": {"surface": surface(end=[0.2], start=[0.6], end_self=[0.1]),
                           "syntax_heads": {"rows": ROWS}, "head_similarity": {"different_over_same_layer_distance": 1.0,
                                                                               "layer_permutation_p": 1.0},
                           "coref_heads": {"best_head": "1-1", "best_accuracy": 0.1, "nearest_accuracy": 0.2,
                                           "same_head_accuracy": 0.3}}})
    assert row["rule (threshold)"] and row["control"] and row["seeds"]
    assert row["m"].split(":")[0] in (cl.HOLDS, cl.FAILS, cl.UNTESTED)
