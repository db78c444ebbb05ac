"""Cost of each stored quantity: attention, norm-weighted attention, ALTI, and rollout read from the
attention cache, against the bare forward pass. One row per (model, quantity).

    PROBING_DATA_DIR=../shared/data python benchmarks/quantities.py [--models minilm_l6 smollm2_135m]
        [--limit 256] [--out outputs/benchmarks/quantities.md]

- ``bare_forward``: the base model on the same padded batches, no attention weights asked for.
- ``attention`` / ``norm`` / ``alti``: the extraction pipeline (forward, quantity, word-level
  merge, float16 cache written to disk), as ``python extract.py extract.quantity=...`` runs it.
- ``rollout``: read every sentence's maps back from the attention cache just written and roll them
  out (:func:`probing.attention.rollout.rollout`); its ratio is to the attention extraction it
  reads from, and its bytes are what storing its ``(L, T, T)`` maps in float16 would take.

Each quantity runs in its own process (its peak RSS is its own), ``--repeat`` times over the same
sentences; the fastest is kept, since on a shared machine the slower runs measure the neighbours.
Cache bytes per stored value: bytes on disk (data, index, meta) over the float16 values stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import extraction_parser, markdown_table, time_over, timed, write_results  # noqa: E402  (benchmarks/ is the script's folder)
from extraction import compose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing import provenance  # noqa: E402
from probing.attention import build  # noqa: E402
from probing.attention import extract as ex  # noqa: E402
from probing.attention.cache import CacheWriter  # noqa: E402
from probing.attention.norm import _base  # noqa: E402
from probing.attention.rollout import rollout  # noqa: E402

VARIANTS = ("bare_forward", "attention", "norm", "alti")


def worker(model: str, variant: str, split: str, limit: int, batch_size: int, max_tokens: int,
           repeat: int) -> list[dict]:
    torch.set_num_threads(os.cpu_count() or 1)
    quantity = "attention" if variant == "bare_forward" else variant
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec, data, settings = compose(model, tmp, f"extract.batch_size={batch_size}",
                                       f"extract.max_tokens={max_tokens}", "extract.flush_every=1000000000",
                                       f"extract.quantity={quantity}")
        sentences = data.read(split)[0][:limit]
        plan = ex.plan_extraction(spec, sentences, settings, f"{data.name}-{split}")  # loads the model
        row = {"model": model, "variant": variant, "split": split, "device": provenance.device(),
               "sentences": len(sentences) - len(plan.skipped), "num_layers": plan.num_layers,
               "maps_per_layer": None if variant == "bare_forward" else plan.num_heads}
        with torch.inference_mode():  # one untimed batch: first-call set-up is no quantity's cost
            ids, mask = ex.pad_batch([plan.pieces.input_ids[i] for i in plan.batches[0][:2]],
                                     plan.tokenizer.pad_token_id, plan.device)
            ex.forward_layers(plan.model, ids, mask, quantity)
        times = []
        for run in range(repeat):
            start = time.perf_counter()
            if variant == "bare_forward":
                with torch.inference_mode():
                    for batch in plan.batches:
                        ids, mask = ex.pad_batch([plan.pieces.input_ids[i] for i in batch],
                                                 plan.tokenizer.pad_token_id, plan.device)
                        _base(plan.model)(input_ids=ids, attention_mask=mask)
            else:
                writer = CacheWriter(Path(tmp) / f"c{run}", {"bench": model}, len(sentences), plan.num_layers,
                                     plan.num_heads, plan.layout)
                build.write_batches(writer, plan, settings, plan.batches)
                cache = writer.finish(plan.skipped)
            if plan.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        row["seconds"], row["runs"] = min(times), [round(t, 3) for t in times]
        if variant != "bare_forward":
            values = cache.meta["data_bytes"] / 2
            row["bytes_per_value"] = sum(f.stat().st_size for f in cache.dir.iterdir()) / values
            row["cache_mb"] = sum(f.stat().st_size for f in cache.dir.iterdir()) / 2**20
        rows.append(row)
        if variant == "attention":
            done = [i for i in range(len(sentences)) if i not in plan.skipped]
            times = []
            for _ in range(repeat):
                start, stored = time.perf_counter(), 0
                for i in done:
                    stored += rollout(cache.maps(i), plan.num_layers, plan.num_heads).size
                times.append(time.perf_counter() - start)
            seconds = min(times)
            rows.append({**row, "variant": "rollout", "maps_per_layer": 1, "seconds": seconds,
                         "runs": [round(t, 4) for t in times],
                         "reads": "attention", "bytes_per_value": None, "cache_mb": stored * 2 / 2**20})
    return [timed(r) for r in rows]


def table(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        bare, attn = (time_over(rows, r, v, "model") for v in ("bare_forward", "attention"))
        bpv = "" if r.get("bytes_per_value") is None else f"{r['bytes_per_value']:.4f}"
        mb = "" if r.get("cache_mb") is None else f"{r['cache_mb']:.1f}" + (" (if stored)" if r["variant"] == "rollout"
                                                                         else "")
        cells.append([r["model"], r["variant"], r["device"], r["sentences"], r["maps_per_layer"] or "",
                      f"{r['seconds']:.3f}", f"{r['sent_per_s']:.1f}", f"{bare:.3f}", f"{attn:.4f}", bpv, mb,
                      f"{r['peak_rss_mb']:.0f}"])
    return markdown_table(["model", "quantity", "device", "sentences", "maps per layer", "seconds", "sent/s",
                           "× bare forward", "× attention extraction", "cache bytes/value", "cache MB",
                           "peak RSS (MB)"], cells)


def main() -> None:
    parser = extraction_parser(__doc__, ["minilm_l6", "smollm2_135m"], VARIANTS, 256, "quantities.md")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.split, args.limit, args.batch_size, args.max_tokens,
                                args.repeat)))
        return
    rows = []
    for model in args.models:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--worker", model, variant, "--split", args.split, "--limit",
                   str(args.limit), "--batch-size", str(args.batch_size), "--max-tokens", str(args.max_tokens),
                   "--repeat", str(args.repeat)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows += json.loads(out.strip().splitlines()[-1])
            print(f"{model} {variant}: {rows[-1]['seconds']:.1f} s", file=sys.stderr)
    text = (f"EWT {args.split}, first {args.limit} sentences, batches of at most {args.batch_size} sentences and "
            f"{args.max_tokens} padded pieces; the fastest of {args.repeat} runs.\n\n{table(rows)}\n")
    write_results(args.out, text, rows, " ".join(["python", "benchmarks/quantities.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
