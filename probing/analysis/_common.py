"""Small helpers shared by the analysis modules: head names, map checks, token labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probing.attention.layout import Layout

BOTH = Layout(True, True)


def head_name(k: int, num_heads: int) -> str:
    """Flat layer-major index ``k`` -> the paper's 1-indexed ``"layer-head"`` (0 -> ``"1-1"``)."""
    return f"{k // num_heads + 1}-{k % num_heads + 1}"


def head_index(name: str | int, num_heads: int | None = None) -> int:
    """Inverse of :func:`head_name`; ints pass through as flat indices."""
    if isinstance(name, (int, np.integer)):
        return int(name)
    if num_heads is None:
        raise ValueError(f"head {name!r} given as 'layer-head' needs num_heads")
    layer, head = (int(x) for x in str(name).split("-"))
    return (layer - 1) * num_heads + head - 1


def head_layers(num_layers: int, num_heads: int) -> np.ndarray:
    """(K,) 1-based layer number of every flat head."""
    return np.repeat(np.arange(1, num_layers + 1), num_heads)


def as_maps(maps, num_words: int | None = None, layout: Layout = BOTH, dtype=np.float64) -> np.ndarray:
    """Copy one sentence's word-level maps (possibly a float16 memmap) into RAM.

    Returns ``(K, T, T)``; checks ``T == layout.num_tokens(num_words)`` when ``num_words`` is given.
    """
    a = np.array(maps, dtype=dtype)  # always a copy: callers may write into it
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"maps must be (K, T, T), got {a.shape}")
    if num_words is not None and a.shape[-1] != layout.num_tokens(num_words):
        raise ValueError(
            f"maps cover {a.shape[-1]} tokens but the sentence has {num_words} words "
            f"({layout.num_tokens(num_words)} tokens expected with the {layout.describe()} layout)"
        )
    return a


def token_labels(words: Sequence[str], layout: Layout = BOTH, start: str | None = "[CLS]",
                 end: str | None = "[SEP]") -> list[str]:
    """The ``T`` labels of a map's rows/columns: the words with the layout's special tokens."""
    return ([start or "<start>"] if layout.start else []) + [str(w) for w in words] + (
        [end or "<end>"] if layout.end else [])
