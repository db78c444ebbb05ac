"""Attention rollout (Abnar & Zuidema, ACL 2020, "Quantifying Attention Flow in Transformers").

A layer's attention, averaged over its heads, is mixed half and half with the identity for the
residual connection: ``Â_l = ½ mean_h A_l + ½ I``, rows renormalised to sum to 1. Rollout
multiplies these down the stack, ``R_1 = Â_1`` and ``R_l = Â_l R_{l-1}``, so ``R_l[i, j]`` is
how much of token ``j``'s layer-0 input reaches token ``i``'s output of layer ``l``.

It reads one sentence's cached word-level maps and runs no model: ``L`` products of ``T x T``
matrices per sentence.
"""

from __future__ import annotations

import numpy as np


def rollout(maps: np.ndarray, num_layers: int, num_heads: int) -> np.ndarray:
    """``(K, T, T)`` maps (layer-major, ``K = num_layers * num_heads``) -> ``(L, T, T)`` float32 ``R_l``."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != num_layers * num_heads or maps.shape[1] != maps.shape[2]:
        raise ValueError(f"rollout needs ({num_layers}*{num_heads}, T, T) maps, got {maps.shape}")
    T = maps.shape[-1]
    # float64: a product of L row-stochastic matrices loses nothing, whatever the cache's float16
    mixed = 0.5 * maps.astype(np.float64).reshape(num_layers, num_heads, T, T).mean(1) + 0.5 * np.eye(T)
    # rows of A may not sum to 1 (raw norms, a row merged from several pieces); the ½ I keeps them > 0
    mixed /= mixed.sum(-1, keepdims=True)
    out = np.empty((num_layers, T, T))
    out[0] = mixed[0]
    for layer in range(1, num_layers):
        out[layer] = mixed[layer] @ out[layer - 1]
    return out.astype(np.float32)
