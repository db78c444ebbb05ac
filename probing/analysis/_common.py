"""Small helpers shared by the analysis modules: head names, map checks, Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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


def as_maps(maps, num_words: int | None = None, dtype=np.float64) -> np.ndarray:
    """Copy one sentence's word-level maps (possibly a float16 memmap) into RAM.

    Returns ``(K, T, T)``; checks ``T == num_words + 2`` when ``num_words`` is given.
    """
    a = np.array(maps, dtype=dtype)  # always a copy: callers may write into it
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"maps must be (K, T, T), got {a.shape}")
    if num_words is not None and a.shape[-1] != num_words + 2:
        raise ValueError(
            f"maps cover {a.shape[-1]} tokens but the sentence has {num_words} words "
            f"(+2 special tokens expected)"
        )
    return a


def with_specials(words: Sequence[str], num_tokens: int, start="[CLS]", end="[SEP]") -> list:
    """Token labels of length ``T``: ``words`` as given if already ``T`` long, else wrapped."""
    words = [str(w) for w in words]
    if len(words) == num_tokens:
        return words
    if len(words) + 2 == num_tokens:
        return [start, *words, end]
    raise ValueError(f"{len(words)} words do not fit maps over {num_tokens} tokens")


def to_markdown(
    rows: list[dict], columns: Sequence[str] | None = None, digits: int = 1, percent: bool = True
) -> str:
    """Render a list of dicts as a Markdown table; floats as percentages when ``percent``."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return f"{100 * v if percent else v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
