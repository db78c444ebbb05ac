"""Analyses of word-level attention maps, one module per part of the paper, each with its job.

- ``base``: what a job gets (``Context``) and gives (``Section``); job discovery.
- ``surface``: §3 average attention to special tokens / positions and entropies (Figs. 2, 4).
- ``syntax``: §4.2 Table 1, best head per dependency relation vs offset baselines
  (``labels``: UD <-> Stanford Dependencies).
- ``coref``: §4.3 Table 2, antecedent selection accuracy on GUM ``Entity=`` mentions.
- ``similarity``: §6 JS distances between heads, MDS embedding, behaviour labels (Fig. 6).
- ``view``: Fig. 5-style drawings, heatmaps and a self-contained HTML viewer.
- ``gradient``: Fig. 3, the LM-loss gradient through attention to the special tokens (MLM or causal).
- ``aspect_opinion``: aspect -> opinion heads on SemEval-2014 restaurant triplets.
- ``sink_metric``: Gu et al. (ICLR 2025)'s attention-sink share over 64-piece inputs, beside theirs.
- ``segment_pairs``: §3's [SEP] statistics on the paper's ``[CLS] A [SEP] B [SEP]`` inputs.
- ``families``: the paper's claims, model family by model family, in one page.
- ``report``: every job of ``conf/analysis/`` into one report.

A new job is one module here plus one YAML in ``conf/analysis/``. Submodules are imported
explicitly (they pull in matplotlib / scikit-learn).
"""
