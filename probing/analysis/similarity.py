"""Head similarity (paper §6, Fig. 6): Jensen-Shannon distances between heads, embedded by MDS.

``d(H_a, H_b) = sum over sentences and token rows i of JS(A_a[i], A_b[i])``, natural log, each
row smoothed first as in the released ``head_distances.py``: ``0.999 * A + 0.001 / T``. Summed,
not averaged, like the original (so only ratios between distances are comparable across runs).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import ClassVar

import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import MDS

from probing.analysis._common import as_maps, head_layers, head_name
from probing.analysis.base import Context, Section, layout_of
from probing.analysis.surface import surface_stats

JS_SMOOTHING = 1e-3

# the original notebook's Fig. 6 thresholds (General_Analysis.ipynb)
POSITION_THRESHOLD = 0.5  # avg. attention to next / previous token
SPECIAL_TOKEN_THRESHOLD = 0.6  # avg. attention to [CLS] / [SEP] / ". ,"
# "attends broadly": the original used 3.8 nats on 128-token segments (uniform = log 128 =
# 4.85); our sentences are shorter, so the threshold is kept as that fraction of uniform entropy
BROAD_FRACTION = 3.8 / np.log(128)
BEHAVIOURS = ("other", "next", "prev", "broad", "cls", "sep", "punct")


def smooth(attn: np.ndarray, eps: float = JS_SMOOTHING) -> np.ndarray:
    """(..., T) rows -> ``(1 - eps) * A + eps / T`` (still rows summing to 1)."""
    return (1.0 - eps) * attn + eps / attn.shape[-1]


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in nats of distributions on the last axis: (..., n) -> (...).

    Zero entries are allowed (0 log 0 = 0); no smoothing here.
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log(a / m), 0.0).sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class DistanceAccumulator:
    """Streaming (K, K) sum of per-row JS divergences; cost O(K^2 T^2) per sentence."""

    def __init__(self, num_heads_total: int, eps: float = JS_SMOOTHING):
        self.k, self.eps = num_heads_total, eps
        self.dist = np.zeros((num_heads_total, num_heads_total))

    def update(self, maps) -> None:
        p = smooth(as_maps(maps), self.eps)  # (K, T, T)
        if p.shape[0] != self.k:
            raise ValueError(f"maps hold {p.shape[0]} heads, expected {self.k}")
        # JS(P, Q) = (sum P log P + sum Q log Q) / 2 - sum M log M, summed over rows; the
        # P log P part is per head, so only the mixture term is pairwise
        plogp = (p * np.log(p)).sum((1, 2))  # (K,)
        for a in range(self.k - 1):
            m = 0.5 * (p[a][None] + p[a + 1 :])  # (K-a-1, T, T)
            js = 0.5 * (plogp[a] + plogp[a + 1 :]) - (m * np.log(m)).sum((1, 2))
            self.dist[a, a + 1 :] += js
            self.dist[a + 1 :, a] += js

    def result(self) -> np.ndarray:
        return np.maximum(self.dist, 0.0)  # float cancellation can leave -1e-16 for equal heads


def head_distances(pairs: Iterable, num_heads_total: int, eps: float = JS_SMOOTHING) -> np.ndarray:
    """(K, K) symmetric summed JS distances over ``(maps (K, T, T), sentence)`` pairs.

    Bare ``maps`` arrays (no pair) are accepted too; the sentence is not used.
    """
    acc = DistanceAccumulator(num_heads_total, eps)
    for item in pairs:
        acc.update(item[0] if isinstance(item, tuple) else item)
    return acc.result()


def mds_embedding(dist: np.ndarray, seed: int = 0) -> np.ndarray:
    """(K, K) precomputed distances -> (K, 2) metric-MDS coordinates.

    scikit-learn 1.8 renamed ``dissimilarity`` to ``metric`` (and ``metric`` to ``metric_mds``);
    both spellings are handled. ``n_init``, ``eps`` and ``max_iter`` follow the original notebook.
    """
    params = inspect.signature(MDS).parameters
    kw = dict(n_components=2, n_init=5, max_iter=1000, eps=1e-10, random_state=seed)
    if "metric_mds" in params:
        kw.update(metric="precomputed", metric_mds=True)
    else:
        kw.update(dissimilarity="precomputed", metric=True)
    if "init" in params:
        kw["init"] = "random"  # random restarts as in the original; also silences 1.9's warning
    dist = np.asarray(dist, dtype=np.float64)
    return MDS(**kw).fit_transform(0.5 * (dist + dist.T))


def same_layer_ratio(dist: np.ndarray, num_layers: int, num_heads: int) -> float:
    """Mean distance between heads of DIFFERENT layers / mean distance within the SAME layer.

    Above 1 means heads in the same layer are closer to each other (the paper's finding). The
    diagonal (a head with itself) is left out.
    """
    layer = np.arange(num_layers * num_heads) // num_heads
    same = layer[:, None] == layer[None]
    np.fill_diagonal(same, False)
    diff = layer[:, None] != layer[None]
    if not same.any() or not diff.any():
        raise ValueError("need at least 2 layers and 2 heads per layer")
    dist = np.asarray(dist)
    return float(dist[diff].mean() / dist[same].mean())


def layer_permutation_p(dist: np.ndarray, num_layers: int, num_heads: int, permutations: int = 1000,
                        seed: int = 0) -> float:
    """The control of :func:`same_layer_ratio`: the share of random assignments of the heads to
    layers (``num_heads`` each) whose ratio is at least the real one, counting the real one
    ((1 + hits) / (1 + permutations)): below 0.05, heads of a layer sit closer than chance."""
    observed = same_layer_ratio(dist, num_layers, num_heads)
    rng = np.random.default_rng(seed)
    dist = np.asarray(dist)
    hits = 0
    for _ in range(permutations):
        order = rng.permutation(len(dist))
        hits += same_layer_ratio(dist[np.ix_(order, order)], num_layers, num_heads) >= observed
    return (1 + hits) / (1 + permutations)


def behaviour_labels(
    stats: dict,
    position_threshold: float = POSITION_THRESHOLD,
    special_threshold: float = SPECIAL_TOKEN_THRESHOLD,
    entropy_threshold: float | None = None,
) -> list[str]:
    """(K,) behaviour of each head from :func:`surface_stats` output, as in Fig. 6.

    Checked in the original's order, later ones winning: next (> 0.5 on i+1), prev (> 0.5 on
    i-1), broad (entropy > ``entropy_threshold``, default ``BROAD_FRACTION * uniform_entropy``),
    cls (> 0.6 on the start token), sep (> 0.6 on the end token), punct (> 0.6 on ". ,");
    "other" when none applies. A rule on a token the layout lacks (``stats[key] is None``) never
    applies.
    """
    if entropy_threshold is None:
        entropy_threshold = BROAD_FRACTION * float(stats["uniform_entropy"])

    def above(key, threshold):
        return None if stats.get(key) is None else stats[key] > threshold

    rules = (
        ("next", above("next", position_threshold)),
        ("prev", above("prev", position_threshold)),
        ("broad", above("entropy", entropy_threshold)),
        ("cls", above("start", special_threshold)),
        ("sep", above("end", special_threshold)),
        ("punct", above("punct", special_threshold)),
    )
    labels = np.full(np.size(stats["self"]), "other", dtype=object)
    for name, mask in rules:
        if mask is not None:
            labels[np.ravel(mask)] = name
    return labels.tolist()


def plot_mds(emb: np.ndarray, labels: Sequence[str], layers: Sequence[int]) -> Figure:
    """Fig. 6: the (K, 2) embedding coloured by behaviour (left) and by layer number (right)."""
    emb, layers = np.asarray(emb), np.asarray(layers)
    labels = np.asarray(labels, dtype=object)
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    markers = dict(zip(BEHAVIOURS, "o>^*sDp"))
    for i, name in enumerate(BEHAVIOURS):
        sel = labels == name
        if sel.any():
            colour = "0.7" if name == "other" else f"C{i}"
            ax1.scatter(*emb[sel].T, marker=markers[name], color=colour, s=25, label=name)
    ax1.legend(fontsize=8)
    ax1.set_title("behaviours")
    sc = ax2.scatter(*emb.T, c=layers, cmap="coolwarm", s=25)
    fig.colorbar(sc, ax=ax2, label="layer")
    ax2.set_title("coloured by layer")
    return without_ticks(fig)


def without_ticks(fig: Figure) -> Figure:
    """MDS coordinates have no units: drop the ticks of every panel."""
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


@dataclass(kw_only=True)
class SimilarityJob:
    """§6: Jensen-Shannon distance between heads, embedded in 2-D with metric MDS."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = []
    max_sentences: int | None  # the paper used 1000 segments
    seed: int

    def run(self, ctx: Context) -> Section:
        store, sentences = ctx.attention()
        L, H, K, layout = store.num_layers, store.num_heads, store.num_maps, layout_of(store)
        dist = head_distances(islice(store.pairs(sentences), self.max_sentences), K)
        stats = surface_stats(islice(store.pairs(sentences), self.max_sentences), L, H, layout)
        emb = mds_embedding(dist, seed=self.seed)
        labels = behaviour_labels(stats)
        layers = head_layers(L, H)
        ctx.out.mkdir(parents=True, exist_ok=True)
        np.save(ctx.out / "js_distances.npy", dist)
        fig = ctx.writer.figure(plot_mds(emb, labels, layers), "head_similarity_mds")[0]
        # one map per layer (rollout, ALTI) has no two heads of a layer to compare
        ratio = same_layer_ratio(dist, L, H) if H > 1 else None
        rows = [{"head": head_name(k, H), "layer": int(layers[k]), "behaviour": labels[k],
                 "x": float(emb[k, 0]), "y": float(emb[k, 1])} for k in range(K)]
        ctx.writer.table("head_similarity", rows)
        counts = {b: labels.count(b) for b in sorted(set(labels))}
        p = layer_permutation_p(dist, L, H, seed=self.seed) if H > 1 else None
        summary = {"different_over_same_layer_distance": ratio, "layer_permutation_p": p, "behaviours": counts,
                   "sentences": stats["num_sentences"]}
        if ratio is None:
            md = (f"One map per layer: no same-layer pairs to compare, so no ratio. Behaviours over "
                  f"{stats['num_sentences']} sentences: {counts}.")
        else:
            md = (f"Mean JS distance between heads of different layers over that within a layer, "
                  f"over {stats['num_sentences']} sentences: **{ratio:.2f}** (above 1: same-layer heads sit closer, "
                  f"as the paper found); {p:.3f} of 1,000 random assignments of the heads to layers reach it. "
                  f"Behaviours: {counts}.")
        return Section("Head similarity (§6)", md, [fig], summary)
