"""Every benchmark in one command, and one table of the ratios the issues set as goals.

    PROBING_DATA_DIR=../shared/data python benchmarks/run_all.py [--out-dir outputs/benchmarks]
        [--skip extraction training memory]

Runs ``extraction.py`` (EWT dev), ``training.py`` (attn_plus_glove on EWT dev and train),
``memory.py`` (peak RSS by corpus size), ``precision.py`` (fp32 against bf16), ``quantities.py``
(norm-weighted attention, ALTI and rollout against attention) and ``paper.py`` (the whole paper for
mpnet_base from an empty cache, in fp32 and in bf16), then writes ``summary.md`` beside their own
tables.
Rows carry the device they ran on; run it on a GPU machine too and keep both summaries.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _common import markdown_table, read_rows, write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("extraction", "training", "memory", "precision", "quantities", "paper")


def extraction_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["variant"]: r for r in rows if r["model"] == model and r.get("split", "dev") == "dev"}
        pipe, bare, naive = by.get("pipeline"), by.get("bare_forward"), by.get("naive_loop")
        if not pipe:
            continue
        dev = pipe["device"]
        if bare:
            x = pipe["seconds"] / bare["seconds"]
            out.append(["extraction time / bare batched forward", "≤ 1.15", model, dev, f"{x:.2f}", _met(x <= 1.15)])
        if naive:
            x = naive["seconds"] / pipe["seconds"]
            out.append(["extraction speed-up vs one-sentence loop", "≥ 4", model, dev, f"{x:.2f}", _met(x >= 4)])
        x = pipe["bytes_per_weight"]
        out.append(["cache bytes per stored weight", "≈ 2 (float16)", model, dev, f"{x:.4f}", _met(x < 2.05)])
        out.append(["extraction sent/s (EWT dev)", "—", model, dev, f"{pipe['sent_per_s']:.1f}", ""])
    for r in rows:
        if r.get("split") == "train" and r["variant"] == "pipeline":
            x = r["peak_rss_mb"]
            out.append(["extraction peak RSS MB (EWT train)", "< 4,096", r["model"], r["device"], f"{x:.0f}",
                        _met(x < 4096)])
    return out


def training_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        if r["train_split"] != "train":
            continue
        batch = f", batch {r['batch_size']}" if "batch_size" in r else ""
        out.append([f"probe training sent/s (EWT train, attn_plus_glove{batch})", "≥ 2,000", r["model"], r["device"],
                    f"{r['sent_per_s']:.0f}", _met(r["sent_per_s"] >= 2000)])
        out.append(["probe training peak RSS MB (EWT train)", "< 2,048", r["model"], r["device"],
                    f"{r['peak_rss_mb']:.0f}", _met(r["peak_rss_mb"] < 2048)])
    return out


def memory_rows(rows: list[dict], model: str) -> list[list[str]]:
    out = []
    for job in dict.fromkeys(r["job"] for r in rows):
        mine = [r for r in rows if r["job"] == job]
        x = mine[-1]["peak_rss_mb"] / mine[0]["peak_rss_mb"]
        out.append([f"peak RSS, {mine[-1]['corpus']} / {mine[0]['corpus']}: {job}", "≈ 1 (flat)", model, mine[0]["device"],
                    f"{x:.2f} ({mine[0]['peak_rss_mb']:.0f} → {mine[-1]['peak_rss_mb']:.0f} MB)", _met(x <= 1.10)])
    return out


def precision_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        fp32 = next((x for x in rows if x["model"] == r["model"] and x["device"] == r["device"]
                     and x["precision"] == "fp32"), None)
        out.append([f"{r['precision']} forward, fraction of the measured {r['precision']} matmul peak", "—", r["model"],
                    r["device"], f"{r['fraction_of_peak']:.2f} ({r['gflops_per_s']:.0f} of "
                    f"{r['peak_gflops_per_s']:.0f} GFLOP/s)", ""])
        if r["precision"] == "bf16" and fp32:
            x = r["sent_per_s"] / fp32["sent_per_s"]
            goal = r["model"].split(" ")[0] in ("mpnet_base", "smollm2_135m")
            out.append(["bf16 extraction speed-up over fp32", "≥ 3" if goal else "—", r["model"], r["device"],
                        f"{x:.2f}", _met(x >= 3) if goal else ""])
    return out


def quantity_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["variant"]: r for r in rows if r["model"] == model}
        if "attention" not in by:
            continue
        base = by["attention"]["seconds"]
        for variant in ("norm", "alti", "rollout"):
            if variant in by:
                x = by[variant]["seconds"] / base
                goal = "≤ 0.05" if variant == "rollout" else "—"
                out.append([f"{variant} time / attention extraction", goal, model, by[variant]["device"], f"{x:.3f}",
                            _met(x <= 0.05) if variant == "rollout" else ""])
    return out


def paper_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        if r["stage"].startswith("total"):
            how = " ".join(r["override"]) or "fp32"
            out.append([f"the whole paper from an empty cache, minutes ({how})", "≤ 15", r["model"],
                        r.get("device", ""), f"{r['minutes']}", _met(r["goal_met"])])
    return out


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "outputs" / "benchmarks")
    parser.add_argument("--skip", nargs="*", default=[], choices=SCRIPTS, help="reuse that script's last results")
    parser.add_argument("--memory-model", default="minilm_l6")
    parser.add_argument("--causal", nargs="*", default=[], help="causal LMs to time too (EWT dev; EWT train for RSS)")
    parser.add_argument("--causal-splits", nargs="+", default=["dev", "train"], choices=["dev", "train"],
                        help="dev: speed and the ratio to the bare forward pass; train: peak RSS (about 30 min each)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        if name in args.skip:
            continue
        stem = {"quantities": "quantities-dev"}.get(name, name)  # the split it ran on, as the causal rows
        cmd = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--out", str(args.out_dir / f"{stem}.md")]
        if name == "memory":
            cmd += ["--model", args.memory_model]
        if name == "paper":  # fp32, then bf16, into one table
            for how, extra in (("fp32", []), ("bf16", ["--override", "extract.precision=bf16"])):
                print(f"running paper benchmark ({how})", file=sys.stderr)
                subprocess.run([*cmd[:-2], "--out", str(args.out_dir / f"paper-{how}.md"), *extra], check=True, cwd=ROOT)
            continue
        print(f"running {name} benchmark", file=sys.stderr)
        subprocess.run(cmd, check=True, cwd=ROOT)
        if name == "extraction" and args.causal:
            # the causal LMs: no naive loop (hours for 30 layers on 2 cores); their RSS on EWT train
            for split, variants in (("dev", ["bare_forward", "pipeline"]), ("train", ["pipeline"])):
                if split not in args.causal_splits:
                    continue
                out = args.out_dir / f"extraction-causal-{split}.md"
                subprocess.run([sys.executable, str(ROOT / "benchmarks" / "extraction.py"), "--models", *args.causal,
                                "--split", split, "--variants", *variants, "--out", str(out)], check=True, cwd=ROOT)
    table = []
    loaded = {n: read_rows(args.out_dir / f"{n}.json") for n in SCRIPTS
              if (args.out_dir / f"{n}.json").is_file()}
    for extra in sorted(args.out_dir.glob("extraction-causal-*.json")):
        loaded.setdefault("extraction", []).extend(read_rows(extra))
    for name in ("quantities", "paper"):  # written under their split or precision, as paper-fp32.md
        for extra in sorted(args.out_dir.glob(f"{name}-*.json")):
            loaded.setdefault(name, []).extend(read_rows(extra))
    table += extraction_rows(loaded.get("extraction", []))
    table += training_rows(loaded.get("training", []))
    table += memory_rows(loaded.get("memory", []), args.memory_model)
    table += precision_rows(loaded.get("precision", []))
    table += quantity_rows(loaded.get("quantities", []))
    table += paper_rows(loaded.get("paper", []))
    columns = ["measure", "goal", "model", "device", "measured", "met"]
    text = ("Goals of the issues against the results beside this file (each has its own header).\n\n"
            + markdown_table(columns, table))
    write_results(args.out_dir / "summary.md", text + "\n", [dict(zip(columns, row)) for row in table])


if __name__ == "__main__":
    main()
