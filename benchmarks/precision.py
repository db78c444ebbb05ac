"""fp32 against bf16 extraction, per model: sentences/s and pieces/s, the achieved GFLOP/s of the
forward pass against this machine's measured matmul peak in the same precision, and the
extraction's time over the bare forward pass.

    PROBING_DATA_DIR=../shared/data python benchmarks/precision.py [--models mpnet_base smollm2_135m]
        [--limit 256] [--batch-size 32] [--out benchmarks/results/precision.md]
    python benchmarks/precision.py --random-weights DIR ...   # a config and tokenizer, random weights

Each (model, precision) runs in its own process: it measures the peak (a 2048 x 2048 matmul in
that precision, best of several), counts the forward pass's FLOPs once with
``torch.utils.flop_counter.FlopCounterMode``, then times the bare forward pass and the extraction
(forward, word-level merge) over the same batches (the plan's: sorted by length, at most
``--batch-size`` sentences). ``--random-weights DIR`` builds the model from ``DIR``'s config with
random weights (the same arithmetic as the trained ones: for a machine without the packages).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import markdown_table, write_results  # noqa: E402  (benchmarks/ is the script's folder)
from extraction import compose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing import provenance  # noqa: E402
from probing.attention import extract as ex  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def matmul_peak(device: torch.device, precision: str, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of the best of ``repeats`` n x n matmuls in ``precision`` on ``device``."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(repeats + 2):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plan_for(model: str, precision: str, limit: int, batch_size: int, random_weights: str | None, tmp: str):
    spec, data, settings = compose(model, tmp, f"extract.precision={precision}", f"extract.batch_size={batch_size}",
                                   "extract.max_tokens=null")
    sentences = data.read("dev")[0][:limit]
    if random_weights:  # the architecture without its weights: a spec that builds it from the config
        spec = RandomWeights(name=model, path=random_weights)
    return ex.plan_extraction(spec, sentences, settings, f"{data.name}-dev"), settings, sentences


@dataclasses.dataclass
class RandomWeights:
    """An encoder spec of just an architecture: ``path`` holds its config.json and tokenizer."""

    name: str
    path: str
    add_bos: bool | None = None
    random_init: bool = True

    def load(self, device="cpu", lm_head=False):
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(self.path), attn_implementation="eager")
        return AutoTokenizer.from_pretrained(self.path), model.to(device).eval()


def worker(model: str, precision: str, limit: int, batch_size: int, random_weights: str | None) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        plan, settings, sentences = plan_for(model, precision, limit, batch_size, random_weights, tmp)
        device, pieces = plan.device, plan.pieces
        batches = [ex.pad_batch([pieces.input_ids[i] for i in b], plan.tokenizer.pad_token_id, device)
                   for b in plan.batches]

        def forward():
            with torch.inference_mode(), ex.autocast(device, settings.compute_dtype()):
                for ids, mask in batches:
                    ex.forward_layers(plan.model, ids, mask, settings.quantity)
            sync(device)

        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            forward()  # also the warm-up
        flops = counter.get_total_flops()
        start = time.perf_counter()
        forward()
        bare = time.perf_counter() - start
        start = time.perf_counter()
        for _ in ex.word_maps(plan, settings):
            pass
        sync(device)
        extraction = time.perf_counter() - start
        peak = matmul_peak(device, precision)
    pieces_total = sum(len(pieces.input_ids[i]) for b in plan.batches for i in b)
    return {"model": model + (" (random weights)" if random_weights else ""), "precision": precision,
            "device": provenance.device(), "threads": torch.get_num_threads(), "sentences": len(sentences),
            "pieces": pieces_total, "batches": len(plan.batches), "forward_s": bare, "extraction_s": extraction,
            "sent_per_s": len(sentences) / extraction, "pieces_per_s": pieces_total / extraction,
            "gflop": flops / 1e9, "gflops_per_s": flops / bare / 1e9, "peak_gflops_per_s": peak,
            "fraction_of_peak": flops / bare / 1e9 / peak, "extraction_over_forward": extraction / bare}


def table(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        fp32 = next((x for x in rows if x["model"] == r["model"] and x["device"] == r["device"]
                     and x["precision"] == "fp32"), None)
        speed = f"{r['sent_per_s'] / fp32['sent_per_s']:.2f}" if fp32 and r["precision"] == "bf16" else ""
        cells.append([r["model"], r["precision"], r["device"], r["sentences"], f"{r['sent_per_s']:.1f}",
                      f"{r['pieces_per_s']:.0f}", f"{r['gflop']:.1f}", f"{r['gflops_per_s']:.0f}",
                      f"{r['peak_gflops_per_s']:.0f}", f"{r['fraction_of_peak']:.2f}",
                      f"{r['extraction_over_forward']:.2f}", speed])
    return markdown_table(["model", "precision", "device", "sentences", "sent/s", "pieces/s", "GFLOP per pass",
                           "achieved GFLOP/s", "measured peak GFLOP/s", "fraction of peak",
                           "extraction / bare forward", "bf16 speed-up"], cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mpnet_base", "minilm_l6", "smollm2_135m", "gemma3_270m"])
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--random-weights", nargs="+", metavar="DIR",
                        help="one folder per model (config.json + tokenizer): random weights, no package")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "precision.md")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--weights-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.limit, args.batch_size, args.weights_dir)))
        return
    rows = []
    folders = args.random_weights or [None] * len(args.models)
    for model, folder in zip(args.models, folders):
        for precision in PRECISIONS:
            cmd = [sys.executable, __file__, "--worker", model, precision, "--limit", str(args.limit),
                   "--batch-size", str(args.batch_size), *(["--weights-dir", folder] if folder else [])]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{model} {precision}: {rows[-1]['sent_per_s']:.1f} sent/s, "
                  f"{rows[-1]['fraction_of_peak']:.2f} of peak", file=sys.stderr)
    text = (f"EWT dev, the first {args.limit} sentences, batches of at most {args.batch_size} sentences sorted by "
            "length; bf16 = `extract.precision=bf16` (autocast, Linear weights in bf16). FLOPs counted with "
            "`torch.utils.flop_counter.FlopCounterMode` over one forward pass; the peak is the best 2048 x 2048 "
            f"matmul in the same precision and process.\n\n{table(rows)}\n")
    write_results(args.out, text, rows)


if __name__ == "__main__":
    main()
