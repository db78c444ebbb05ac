"""Analyses of word-level attention maps, one module per part of the paper.

- ``surface``: §3 average attention to special tokens / positions and entropies (Figs. 2, 4).
- ``syntax``: §4.2 Table 1, best head per dependency relation vs offset baselines.
- ``coref``: §4.3 Table 2, antecedent selection accuracy on GUM ``Entity=`` mentions.
- ``similarity``: §6 JS distances between heads, MDS embedding, behaviour labels (Fig. 6).
- ``view``: Fig. 5-style drawings, heatmaps and a self-contained HTML viewer.

Submodules are imported explicitly (they pull in matplotlib / scikit-learn).
"""
