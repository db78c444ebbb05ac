"""Extraction benchmark: sentences/s, time over the bare forward pass, speed-up over a naive loop,
cache bytes per weight and peak RSS, one row per (model, variant, split).

    PROBING_DATA_DIR=../shared/data python benchmarks/extraction.py [--models minilm_l6 mpnet_base]
        [--split dev] [--variants bare_forward pipeline naive_loop] [--quantity attention|norm]
        [--limit N] [--out outputs/benchmarks/extraction.md]

Models are the Hydra configs of ``conf/model/`` (the causal LMs too). Each variant runs in its own
process so that its peak RSS is its own. All variants feed the model the same pieces
(``probing.attention.pieces.cut``); only what happens around the forward pass differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import extraction_parser, markdown_table, time_over, timed, write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing import provenance  # noqa: E402
from probing.attention import build  # noqa: E402
from probing.attention import extract as ex  # noqa: E402
from probing.attention.cache import CacheWriter  # noqa: E402

VARIANTS = ("bare_forward", "pipeline", "naive_loop")


def compose(model: str, tmp: str, *overrides: str):
    """The model, the data and the extraction settings of ``extract.py model=<model> <overrides>``."""
    from hydra.utils import instantiate

    from probing import runner

    cfg, _ = runner.compose("extract", [f"model={model}", f"paths.root_dir={ROOT}", *overrides], tmp)
    return instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)


def naive_merge(attn: np.ndarray, token_of_piece: list[int]) -> np.ndarray:
    """The released code's way: Python loops over tokens, numpy per group. (K, P, P) -> (K, T, T)."""
    groups = [[p for p, t in enumerate(token_of_piece) if t == tok] for tok in range(max(token_of_piece) + 1)]
    to_words = np.stack([attn[:, :, g].sum(-1) for g in groups], -1)
    return np.stack([to_words[:, g].mean(1) for g in groups], 1)


def worker(model: str, variant: str, split: str, limit: int | None, batch_size: int, max_tokens: int,
           quantity: str) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        spec, data, settings = compose(model, tmp, f"extract.batch_size={batch_size}",
                                       f"extract.max_tokens={max_tokens}", f"extract.quantity={quantity}")
        sentences, _ = data.read(split)
        sentences = sentences[:limit] if limit else sentences
        settings.flush_every = 10**9
        plan = ex.plan_extraction(spec, sentences, settings, f"{data.name}-{split}")  # loads the model
        result = {"model": model, "variant": variant, "split": split, "quantity": quantity,
                  "device": provenance.device(), "sentences": len(sentences) - len(plan.skipped)}
        start = time.perf_counter()
        if variant == "bare_forward":
            # cutting words into pieces is part of any forward pass from words, so all variants pay it
            pieces = ex.cut(plan.tokenizer, sentences, spec.add_bos)
            with torch.inference_mode():
                for batch in plan.batches:
                    ids, mask = ex.pad_batch([pieces.input_ids[i] for i in batch], plan.tokenizer.pad_token_id,
                                             plan.device)
                    ex.forward_layers(plan.model, ids, mask, quantity)
        elif variant == "pipeline":
            ex.cut(plan.tokenizer, sentences, spec.add_bos)
            writer = CacheWriter(Path(tmp) / "c", {"bench": model}, len(sentences), plan.num_layers, plan.num_heads,
                                 plan.layout)
            build.write_batches(writer, plan, settings, plan.batches)
            cache = writer.finish(plan.skipped)
            on_disk = sum(f.stat().st_size for f in cache.dir.iterdir())
            result["bytes_per_weight"] = on_disk / (cache.meta["data_bytes"] / 2)
            result["cache_mb"] = on_disk / 2**20
        else:
            pieces = ex.cut(plan.tokenizer, sentences, spec.add_bos)
            with torch.inference_mode():
                for i in sorted({i for b in plan.batches for i in b}):
                    ids = torch.tensor([pieces.input_ids[i]], device=plan.device)
                    attn = ex.forward_quantity(plan.model, ids, torch.ones_like(ids), quantity)[0]
                    naive_merge(attn.float().cpu().numpy(), pieces.token_of_piece[i])
        if plan.device.type == "cuda":
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - start
    return timed(result)


def table(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        ratio = time_over(rows, r, "bare_forward", "model", "split", "quantity")
        speed = 1 / time_over(rows, r, "naive_loop", "model", "split", "quantity")
        bpw = f"{r['bytes_per_weight']:.4f}" if "bytes_per_weight" in r else ""
        cells.append([r["model"], r["variant"], r["split"], r["quantity"], r["device"], r["sentences"],
                      f"{r['seconds']:.1f}", f"{r['sent_per_s']:.1f}", f"{ratio:.2f}", f"{speed:.2f}", bpw,
                      f"{r['peak_rss_mb']:.0f}"])
    return markdown_table(["model", "variant", "split", "quantity", "device", "sentences", "seconds", "sent/s",
                           "× bare forward", "speed-up vs naive", "cache bytes/weight", "peak RSS (MB)"], cells)


def main() -> None:
    parser = extraction_parser(__doc__, ["minilm_l6", "mpnet_base"], VARIANTS, None, "extraction.md")
    parser.add_argument("--quantity", default="attention", choices=ex.QUANTITIES)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.split, args.limit, args.batch_size, args.max_tokens, args.quantity)))
        return
    rows = []
    for model in args.models:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--worker", model, variant, "--split", args.split, "--quantity",
                   args.quantity, "--batch-size", str(args.batch_size), "--max-tokens", str(args.max_tokens)]
            cmd += ["--limit", str(args.limit)] if args.limit else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{model} {variant}: {rows[-1]['sent_per_s']:.1f} sent/s", file=sys.stderr)
    text = (f"EWT {args.split}, batches of at most {args.batch_size} sentences and {args.max_tokens} padded "
            f"pieces.\n\n{table(rows)}\n")
    write_results(args.out, text, rows)


if __name__ == "__main__":
    main()
