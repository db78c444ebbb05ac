"""Hand-built probe items shared by the probe tests."""

from __future__ import annotations

import numpy as np
import torch

from probing.attention.layout import BOTH, Layout
from probing.probes.batch import ProbeItem


def where_from(n: int, num_maps: int = 1, layout: Layout = BOTH) -> np.ndarray:
    """maps[k, i, j] = 100k + 10i + j: every entry says which token row/column it came from."""
    T = layout.num_tokens(n)
    k, i, j = np.meshgrid(np.arange(num_maps), np.arange(T), np.arange(T), indexing="ij")
    return (100 * k + 10 * i + j).astype(np.float32)


def item(maps: np.ndarray | torch.Tensor | None, heads: list[int], *, spans=None, gold=None, vectors=None,
         labels=None, punct=None, root: bool = True, layout: Layout = BOTH) -> ProbeItem:
    """A dependency item (one-word queries, gold = head) unless ``spans``/``gold`` say otherwise."""
    n = len(heads)
    spans = spans if spans is not None else [(w,) for w in range(n)]
    gold = gold if gold is not None else [(h,) for h in heads]
    width = max(len(s) for s in spans)
    span_arr = np.array([list(s) + [-1] * (width - len(s)) for s in spans], dtype=np.int64)
    gwidth = max(len(g) for g in gold)
    gold_arr = np.array([list(g) + [-1] * (gwidth - len(g)) for g in gold], dtype=np.int64)
    if isinstance(maps, torch.Tensor):
        maps = maps.numpy()
    return ProbeItem(
        n=n, spans=span_arr, gold=gold_arr,
        labels=np.array(labels if labels is not None else [0] * len(spans), dtype=np.int64),
        scored=~np.array(punct if punct is not None else [False] * len(spans), dtype=bool),
        vectors=np.asarray(vectors, dtype=np.float32) if vectors is not None else np.zeros((n, 2), np.float32),
        root=root, maps=maps, layout=layout,
    )
