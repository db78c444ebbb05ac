"""Attention rollout (Abnar & Zuidema, ACL 2020, "Quantifying Attention Flow in Transformers").

A layer's attention, averaged over its heads, is mixed half and half with the identity for the
residual connection: ``Â_l = ½ mean_h A_l + ½ I``, rows renormalised to sum to 1. Rollout
multiplies these down the stack, ``R_1 = Â_1`` and ``R_l = Â_l R_{l-1}``, so ``R_l[i, j]`` is
how much of token ``j``'s layer-0 input reaches token ``i``'s output of layer ``l``.

It reads one sentence's cached word-level maps and runs no model: ``L`` products of ``T x T``
matrices per sentence. ``residual=0`` multiplies the maps as they are: the way Ferrando et al.
(2022) roll their per-layer ALTI contributions, which hold the residual already
(``compute_joint_attention`` in mt-upc/transformer-contributions ``src/utils_contributions.py``).
"""

from __future__ import annotations

import numpy as np


def rollout(maps: np.ndarray, num_layers: int, num_heads: int, residual: float = 0.5) -> np.ndarray:
    """``(K, T, T)`` maps (layer-major, ``K = num_layers * num_heads``) -> ``(L, T, T)`` float32 ``R_l``,
    with ``Â_l = (1 - residual) mean_h A_l + residual I`` (Abnar & Zuidema: ``residual = ½``)."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != num_layers * num_heads or maps.shape[1] != maps.shape[2]:
        raise ValueError(f"rollout needs ({num_layers}*{num_heads}, T, T) maps, got {maps.shape}")
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"rollout's residual share must be in [0, 1], not {residual}")
    T = maps.shape[-1]
    # float64: a product of L row-stochastic matrices loses nothing, whatever the cache's float16
    mean = maps.astype(np.float64).reshape(num_layers, num_heads, T, T).mean(1)
    mixed = (1.0 - residual) * mean + residual * np.eye(T)
    # rows of A may not sum to 1 (raw norms); a row of zeros (residual 0) stays zero
    total = mixed.sum(-1, keepdims=True)
    mixed /= np.where(total > 0, total, 1.0)
    out = np.empty((num_layers, T, T))
    out[0] = mixed[0]
    for layer in range(1, num_layers):
        out[layer] = mixed[layer] @ out[layer - 1]
    return out.astype(np.float32)
