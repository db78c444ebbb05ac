"""The sink's share per layer of raw attention, of norm-weighted attention, and of norm-weighted
attention without Gemma 3's post-attention RMSNorm (the definition before issue 18 §6), on the
first sentences of a split. Sink layers: raw share above 0.5 (the families page's rule).

    PROBING_DATA_DIR=../shared/data python scripts/sink_share.py [--model gemma3_270m] [--limit 300]

The sink is token 0 (the start token, or the first word without one), as the surface job's
``first`` statistic. Rows are averaged with and without row 0, whose attention is forced in a
causal model (issue 18 §5). Word-level maps come from the extraction's own path (mode=mean).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing.attention import extract as ex  # noqa: E402
from probing.attention import norm  # noqa: E402


def shares(plan: ex.Plan, settings: ex.ExtractionSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, the mass on token 0 averaged over all rows and over rows 1.. (L,) each."""
    total, total_rest, rows, rows_rest = 0.0, 0.0, 0, 0
    for _, maps in ex.word_maps(plan, settings):
        for m in maps:  # (K, T, T)
            col = m[:, :, 0].reshape(plan.num_layers, plan.num_heads, -1).mean(1)  # (L, T)
            total, rows = total + col.sum(1), rows + col.shape[1]
            total_rest, rows_rest = total_rest + col[:, 1:].sum(1), rows_rest + col.shape[1] - 1
    return total / rows, total_rest / rows_rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3_270m")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from extraction import compose

    with tempfile.TemporaryDirectory() as tmp:
        spec, data, settings = compose(args.model, tmp, "extract.batch_size=32", "extract.max_tokens=2048")
        sentences = data.read(args.split)[0][: args.limit]
        plan = ex.plan_extraction(spec, sentences, settings, f"{data.name}-{args.split}")
        base = type(norm._base(plan.model)).__name__
        out = {"attention": shares(plan, settings)}
        out["norm"] = shares(plan, dataclasses.replace(settings, quantity="norm"))
        arch = norm.ARCHITECTURES[base]
        if arch.post_attention is not None:
            norm.ARCHITECTURES[base] = dataclasses.replace(arch, post_attention=None)
            try:
                out["norm without post-attention norm"] = shares(plan, dataclasses.replace(settings, quantity="norm"))
            finally:
                norm.ARCHITECTURES[base] = arch
    n = len(sentences) - len(plan.skipped)
    for rows, k in (("all rows", 0), ("rows 1.. (forced row 0 left out)", 1)):
        sink = np.flatnonzero(out["attention"][k] > args.threshold)
        print(f"\n{args.model}, EWT {args.split}, first {n} sentences, {rows}; sink layers (raw > "
              f"{args.threshold}): {[int(s) + 1 for s in sink]}\n")
        print("| layer | " + " | ".join(out) + " |\n|---|" + "---|" * len(out))
        for layer in range(plan.num_layers):
            mark = "*" if layer in sink else ""
            print(f"| {layer + 1}{mark} | " + " | ".join(f"{v[k][layer]:.3f}" for v in out.values()) + " |")
        if len(sink):
            print("| sink-layer mean | " + " | ".join(f"{v[k][sink].mean():.3f}" for v in out.values()) + " |")


if __name__ == "__main__":
    main()
