"""Extraction benchmark: sentences/s, overhead over the bare forward pass, speed-up over a naive
loop, cache bytes per weight and peak RSS, one row per (model, variant).

    PROBING_DATA_DIR=../shared/data python benchmarks/extraction.py [--models minilm_l6 mpnet_base]
        [--split dev] [--limit N] [--out outputs/benchmarks/extraction.md]

Each variant runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing.attention import extract as ex  # noqa: E402
from probing.attention.encoders import BundledMiniLM, BundledMPNet  # noqa: E402
from probing.data.corpus import Corpus  # noqa: E402

VARIANTS = ("bare_forward", "pipeline", "naive_loop")


def encoder(name: str, cache: str):
    if name == "minilm_l6":
        return BundledMiniLM(name=name)
    return BundledMPNet(name=name, cache_dir=cache)


def corpus() -> Corpus:
    return Corpus(
        name="ud_ewt", format="conllu", root=os.environ.get("PROBING_DATA_DIR"),
        files={s: f"ud-english-ewt/en_ewt-ud-{s}.conllu" for s in ("train", "dev", "test")},
    )


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def naive_merge(attn: np.ndarray, word_ids: list, n: int) -> np.ndarray:
    """The released code's way: Python loops over words, numpy per group. (K, P, P) -> (K, T, T)."""
    P = attn.shape[-1]
    groups = [[0]] + [[p for p, w in enumerate(word_ids) if w == i] for i in range(n)] + [[P - 1]]
    to_words = np.stack([attn[:, :, g].sum(-1) for g in groups], -1)
    return np.stack([to_words[:, g].mean(1) for g in groups], 1)


def worker(model: str, variant: str, split: str, limit: int | None, batch_size: int, max_tokens: int) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        spec = encoder(model, str(ROOT / ".cache" / "models"))
        data = corpus()
        sentences, _ = data.read(split)
        sentences = sentences[:limit] if limit else sentences
        device = ex.resolve_device("auto")
        tokenizer, net = spec.load(device)
        settings = ex.ExtractionSettings(batch_size=batch_size, max_tokens=max_tokens, flush_every=10**9)
        result = {"model": model, "variant": variant, "device": device_label(device), "sentences": len(sentences)}
        start = time.perf_counter()
        if variant == "bare_forward":
            # tokenising is part of any forward pass from words, so both timings include it
            tok = ex.tokenize(tokenizer, sentences)
            todo = {i: len(ids) for i, ids in enumerate(tok.input_ids)}
            batches = ex.length_sorted_batches(todo, batch_size, max_tokens)
            with torch.inference_mode():
                for batch in batches:
                    ids, mask = ex.pad_batch([tok.input_ids[i] for i in batch], tokenizer.pad_token_id, device)
                    ex.forward_attention(net, ids, mask)
                if device.type == "cuda":
                    torch.cuda.synchronize()
        elif variant == "pipeline":
            key = {"bench": model, "split": split, "limit": limit}
            tok = ex.tokenize(tokenizer, sentences)
            writer = ex.CacheWriter(Path(tmp) / "c", key, len(sentences), net.config.num_hidden_layers,
                                    net.config.num_attention_heads)
            todo = {i: len(ids) for i, ids in enumerate(tok.input_ids)}
            batches = ex.length_sorted_batches(todo, batch_size, max_tokens)
            ex.extract_into(writer, tokenizer, net, tok, batches, settings, device)
            cache = writer.finish({})
            on_disk = sum(f.stat().st_size for f in cache.dir.iterdir())
            result["bytes_per_weight"] = on_disk / (cache.meta["data_bytes"] / 2)
        else:
            with torch.inference_mode():
                for sent in sentences:
                    enc = tokenizer(sent.words, is_split_into_words=True)
                    out = net(input_ids=torch.tensor([enc["input_ids"]], device=device), output_attentions=True)
                    attn = torch.cat(out.attentions, 1)[0].cpu().numpy()
                    naive_merge(attn, enc.word_ids(), len(sent))
        result["seconds"] = time.perf_counter() - start
    result["sent_per_s"] = result["sentences"] / result["seconds"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def table(rows: list[dict]) -> str:
    lines = [
        "| model | variant | device | sentences | seconds | sent/s | × bare forward | speed-up vs naive | cache bytes/weight | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = {v["variant"]: v for v in rows if v["model"] == r["model"]}
        ratio = r["seconds"] / base["bare_forward"]["seconds"] if "bare_forward" in base else float("nan")
        speed = base["naive_loop"]["seconds"] / r["seconds"] if "naive_loop" in base else float("nan")
        bpw = f"{r['bytes_per_weight']:.4f}" if "bytes_per_weight" in r else ""
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['device']} | {r['sentences']} | {r['seconds']:.1f} | "
            f"{r['sent_per_s']:.1f} | {ratio:.2f} | {speed:.2f} | {bpw} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["minilm_l6", "mpnet_base"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "extraction.md")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.split, args.limit, args.batch_size, args.max_tokens)))
        return
    rows = []
    for model in args.models:
        for variant in args.variants:
            cmd = [sys.executable, __file__, "--worker", model, variant, "--split", args.split,
                   "--batch-size", str(args.batch_size), "--max-tokens", str(args.max_tokens)] + (["--limit", str(args.limit)] if args.limit else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{model} {variant}: {rows[-1]['sent_per_s']:.1f} sent/s", file=sys.stderr)
    text = (f"EWT {args.split}, batches of at most {args.batch_size} sentences and {args.max_tokens} padded pieces, "
            f"torch {torch.__version__}\n\n{table(rows)}\n")
    write_results(args.out, text, rows)


if __name__ == "__main__":
    main()
