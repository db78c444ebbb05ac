"""Peak RSS against corpus size: a probe training epoch and each analysis job, on EWT dev, train
and train+dev+test (coreference: GUM dev and train), each in its own process, once the caches
exist. Flat numbers down a column are the point: nothing may grow with the corpus.

    PROBING_DATA_DIR=../shared/data python benchmarks/memory.py [--model minilm_l6]
        [--out outputs/benchmarks/memory.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import markdown_table, write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
SIZES = ["dev", "train", "train+dev+test"]
DATA = {"EWT": "ud_ewt", "GUM": "ud_gum"}  # row labels -> data configs


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; its own peak RSS (not this process's, not other children's), seconds, output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start, output


def jobs(model: str) -> list[tuple[str, str, list[str]]]:
    """(what, corpus size, command) for every measurement."""
    runs = []
    for split in SIZES:
        runs.append(("probe epoch (attn_plus_glove)", f"EWT {split}", [
            sys.executable, "train.py", f"model={model}", "probe=attn_plus_glove", "~logger", "callbacks=none",
            "trainer.max_epochs=1", "+trainer.enable_progress_bar=false", "+trainer.enable_checkpointing=false",
            f"split.train={split}", "split.val=dev", "split.test=dev"]))
        for job, extra in (("surface", []), ("syntax_heads", []), ("head_similarity", [])):
            runs.append((job, f"EWT {split}", [sys.executable, "analyze.py", f"analysis={job}", f"model={model}",
                                               "~logger", f"split={split}", *extra]))
    for split in ("dev", "train"):
        # the job binds GUM itself (conf/analysis/coref_heads.yaml)
        runs.append(("coref_heads", f"GUM {split}", [sys.executable, "analyze.py", "analysis=coref_heads",
                                                      f"model={model}", "~logger", f"split={split}"]))
    return runs


def sentence_count(corpus: str) -> int:
    """Sentences in a row's corpus label ("EWT train+dev+test"), read through the data configs."""
    from hydra.utils import instantiate

    from probing import runner

    name, splits = corpus.split(" ")
    cfg, _ = runner.compose("train", [f"data={DATA[name]}"], "/tmp")
    data = instantiate(cfg.data)
    return sum(len(data.read(split)[0]) for split in splits.split("+"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm_l6")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "memory.md")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (what, size, cmd) in enumerate(jobs(args.model)):
            cmd = [*cmd, f"hydra.run.dir={tmp}/{n}"]
            if what == "coref_heads":  # GUM's document-chunk caches may not exist yet: fill them first
                peak_rss_mb(cmd)
            rss, seconds, _ = peak_rss_mb(cmd)
            rows.append({"job": what, "corpus": size, "peak_rss_mb": rss, "seconds": seconds, "device": device})
            print(json.dumps(rows[-1]), file=sys.stderr)
    sentences = {corpus: sentence_count(corpus) for corpus in dict.fromkeys(r["corpus"] for r in rows)}
    lines = [f"Peak RSS by corpus size, `{args.model}`, caches present; each row is its own process. "
             "head_similarity reads its first 1,000 sentences whatever the corpus (the paper's sample).", ""]
    first: dict[str, float] = {}
    cells = []
    for r in rows:
        base = first.setdefault(r["job"], r["peak_rss_mb"])
        cells.append([r["job"], r["corpus"], sentences[r["corpus"]], f"{r['peak_rss_mb']:.0f}",
                      f"{r['peak_rss_mb'] / base:.2f}x", f"{r['seconds']:.0f}"])
    lines.append(markdown_table(["job", "corpus", "sentences", "peak RSS (MB)", "vs smallest", "wall s"], cells))
    text = "\n".join(lines) + "\n"
    write_results(args.out, text, rows)


if __name__ == "__main__":
    main()
