"""The paper's reported numbers (Clark et al. 2019, BERT-base on WSJ-SD / CoNLL-2012), for
printing beside ours. They are never compared as if the setups were the same."""

PAPER_SETUP = "BERT-base uncased, WSJ Penn Treebank (Stanford Dependencies), CoNLL-2012 coreference"

# Table 1: relation -> (best head, accuracy %, baseline accuracy %, baseline offset)
TABLE1 = {
    "All": ("7-6", 34.5, 26.3, 1),
    "prep": ("7-4", 66.7, 61.8, -1),
    "pobj": ("9-6", 76.3, 34.6, -2),
    "det": ("8-11", 94.3, 51.7, 1),
    "nn": ("4-10", 70.4, 70.2, 1),
    "nsubj": ("8-2", 58.5, 45.5, 1),
    "amod": ("4-10", 75.6, 68.3, 1),
    "dobj": ("8-10", 86.8, 40.0, -2),
    "advmod": ("7-6", 48.8, 40.2, 1),
    "aux": ("4-10", 81.1, 71.5, 1),
    "poss": ("7-6", 80.5, 47.7, 1),
    "auxpass": ("4-10", 82.5, 40.5, 1),
    "ccomp": ("8-1", 48.8, 12.4, -2),
    "mark": ("8-2", 50.7, 14.5, 2),
    "prt": ("6-7", 99.1, 91.4, -1),
}

# Table 2: model -> (All, Pronoun, Proper, Nominal) antecedent selection accuracy %
TABLE2 = {
    "nearest mention": (27, 29, 29, 19),
    "nearest with same head word": (52, 47, 67, 40),
    "rule-based (4 sieves)": (69, 70, 77, 60),
    "head 5-4": (65, 64, 73, 58),
}

# Table 3, in the paper's row order: probe config -> (the row's name, UAS % on WSJ-SD dev)
TABLE3 = {
    "right_branching": ("right-branching", 26),
    "distances_plus_glove": ("Distances + GloVe", 58),
    "random_init_attn_plus_glove": ("random-init Attn + GloVe", 30),
    "attn_only": ("Attn", 61),
    "attn_plus_glove": ("Attn + GloVe", 77),
}

SURFACE_FINDINGS = (
    "BERT-base: layers 6-10 put over half of their attention on [SEP]; early layers attend to "
    "[CLS] and the last layers to . and ,; [SEP] rows put over 90% on [SEP]; the MLM gradient "
    "through attention to [SEP] is very small from layer 5 on; last-layer [CLS] entropy 3.89 nats."
)

# Gu et al. (ICLR 2025), "When Attention Sink Emerges in Language Models: An Empirical View":
# Sink_1^eps, the % of (layer, head) pairs whose attention to the first token, averaged over the
# query positions, exceeds eps = 0.3, over inputs of T = 64 tokens (their eval_sink_open_source.py)
SINK_METRIC_SETUP = "Gu et al. (ICLR 2025), causal LMs on 64-token natural-text inputs, ε = 0.3"
SINK_METRIC = {"GPT2-XL": 77.0, "LLaMA2-7B": 92.5, "Mistral-7B": 97.5, "LLaMA3-8B": 99.0}
