"""How much bf16 moves the word-level maps: the same split extracted in fp32 and in bf16, compared
map by map (``analysis=precision_diff``). The results command sets every statistic of the paper
beside it (``results/precision.md``); this job holds the map-level numbers.

Per sentence and head, ``|ΔA|`` over the word-level map (special tokens included); the share of
rows whose argmax (the most-attended token) moves; both over every head, row and sentence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from probing.analysis.base import Context, Section


@dataclass(kw_only=True)
class PrecisionDiffJob:
    """fp32 against bf16 word-level maps of the run's split."""

    in_report: ClassVar[bool] = False
    tiny_overrides: ClassVar[list[str]] = []
    max_sentences: int | None  # the first N sentences of the split; None: all

    def run(self, ctx: Context) -> Section:
        stores = {p: ctx_with(ctx, p).attention() for p in ("fp32", "bf16")}
        (a, _), (b, _) = stores["fp32"], stores["bf16"]
        kept = [i for i in a.kept if i in set(b.kept.tolist())][: self.max_sentences]
        largest, total, count, moved, rows = 0.0, 0.0, 0, 0, 0
        layer_moved = np.zeros(a.num_layers)
        for i in kept:
            x, y = a.maps(i).astype(np.float32), b.maps(i).astype(np.float32)
            d = np.abs(x - y)
            largest, total, count = max(largest, float(d.max())), total + float(d.sum()), count + d.size
            changed = x.argmax(-1) != y.argmax(-1)  # (K, T)
            moved, rows = moved + int(changed.sum()), rows + changed.size
            layer_moved += changed.reshape(a.num_layers, a.num_heads, -1).sum((1, 2))
        per_layer_rows = rows / a.num_layers
        summary = {"sentences": len(kept), "max_abs_diff": largest, "mean_abs_diff": total / count,
                   "argmax_moved_share": moved / rows,
                   "argmax_moved_by_layer": (layer_moved / per_layer_rows).tolist(),
                   "caches": {p: str(s.dir) for p, (s, _) in stores.items()}}
        md = (f"{len(kept)} sentences of `{ctx.split}`, every head and row of the word-level maps: max |ΔA| "
              f"{largest:.4f}, mean |ΔA| {total / count:.2e}; the most-attended token moves in "
              f"{100 * moved / rows:.2f}% of rows (fp32 against bf16 under `torch.autocast`).")
        return Section("bf16 against fp32 maps", md, [], summary)


def ctx_with(ctx: Context, precision: str) -> Context:
    """The run's context with the extraction in ``precision``."""
    return dataclasses.replace(ctx, extraction=dataclasses.replace(ctx.extraction, precision=precision))
