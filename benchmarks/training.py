"""Probe training benchmark: sentences/s of a training epoch once the cache exists, and peak RSS,
training on EWT dev and on EWT train (peak RSS should not grow with the corpus).

    PROBING_DATA_DIR=../shared/data python benchmarks/training.py [--models minilm_l6 mpnet_base]
        [--probe attn_plus_glove] [--splits dev train] [--epochs 2] [--workers 0]
        [--out outputs/benchmarks/training.md]

An epoch's time runs from Lightning's on_train_epoch_start to on_train_epoch_end, so it includes
the validation pass over EWT dev at the epoch's end; the best of ``--epochs`` epochs is reported,
because epoch times on a shared 2-core machine vary by 10-25%. Peak RSS is the process's (and,
with loader workers, the largest worker's, reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import markdown_table, write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(model: str, probe: str, train_split: str, epochs: int, threads: int, workers: int,
           batch_size: int | None) -> dict:
    import pytorch_lightning as pl
    import torch

    from probing import runner
    from probing.training import train

    torch.set_num_threads(threads)

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.seconds, self.sentences = [], 0

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds.append(time.perf_counter() - self.start)
            self.sentences = len(trainer.datamodule.datasets["train"])

    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as tmp:
        cfg, _ = runner.compose("train", [
            f"model={model}", f"probe={probe}", "~logger", "callbacks=none", f"trainer.max_epochs={epochs}",
            f"split.train={train_split}", f"datamodule.num_workers={workers}", f"paths.root_dir={ROOT}",
            "++trainer.enable_progress_bar=false", "++trainer.enable_checkpointing=false",
            *([f"datamodule.batch_size={batch_size}"] if batch_size else [])], tmp)
        import probing.training as tr

        real = tr.instantiate

        def with_timer(node, *a, **k):
            if k.get("callbacks") is not None:
                k["callbacks"] = [*k["callbacks"], timer]
            return real(node, *a, **k)

        tr.instantiate = with_timer
        metrics = train(cfg).metrics
    best = min(timer.seconds)
    return {"model": model, "probe": probe, "train_split": train_split, "threads": threads,
            "batch_size": cfg.datamodule.batch_size,
            "workers": workers, "sentences": timer.sentences, "epoch_seconds": best, "sent_per_s": timer.sentences / best,
            "val_uas": metrics.get("val/uas"), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers else None,
            "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["minilm_l6", "mpnet_base"])
    parser.add_argument("--probe", default="attn_plus_glove")
    parser.add_argument("--splits", nargs="+", default=["dev", "train"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores, as train.py)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "training.md")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[0],
                        help="sentences per batch, one row each (default: conf/datamodule/default.yaml's)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "SPLIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.probe, args.worker[1], args.epochs, args.threads, args.workers,
                                args.batch_sizes[0])))
        return
    rows = []
    for model, split, batch in ((m, s, b) for m in args.models for s in args.splits for b in args.batch_sizes):
        cmd = [sys.executable, __file__, "--worker", model, split, "--probe", args.probe, "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--workers", str(args.workers), "--batch-sizes", str(batch)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{model} {split} batch {rows[-1]['batch_size']}: {rows[-1]['sent_per_s']:.0f} sent/s", file=sys.stderr)
    columns = ["model", "probe", "trained on", "device", "threads", "loader workers", "batch", "sentences",
               "epoch s (best)", "sent/s", "val UAS", "peak RSS (MB)"]
    text = markdown_table(columns, [[r["model"], r["probe"], f"EWT {r['train_split']}", r["device"], r["threads"],
                                     r["workers"], r["batch_size"], r["sentences"], f"{r['epoch_seconds']:.1f}",
                                     f"{r['sent_per_s']:.0f}", f"{100 * r['val_uas']:.1f}",
                                     f"{r['peak_rss_mb']:.0f}"] for r in rows]) + "\n"
    write_results(args.out, text, rows)


if __name__ == "__main__":
    main()
