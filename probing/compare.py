"""Gather finished runs' ``metrics.json`` into one table (markdown + CSV) and a bar plot.

    python -m probing.compare outputs/train/multiruns/2026-11-25_10-00-00 [more dirs] [--out DIR]

Runs are grouped by model, data and probe; seeds become mean ± std.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

KEYS = ["model", "random_init", "data", "probe_config"]
ORDER = ["right_branching", "distances_plus_glove", "random_init_attn_plus_glove", "attn_only", "attn_plus_glove"]


def collect(dirs: list[Path]) -> pd.DataFrame:
    rows = []
    for d in dirs:
        for path in sorted(Path(d).rglob("metrics.json")):
            record = json.loads(path.read_text())
            record["run"] = str(path.parent)
            rows.append(record)
    if not rows:
        raise SystemExit(f"no metrics.json under {', '.join(map(str, dirs))}")
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, metrics=("val/uas", "test/uas", "val/las", "test/las")) -> pd.DataFrame:
    metrics = [m for m in metrics if m in runs]
    runs = runs.assign(probe_config=runs["probe_config"].fillna(runs["probe"]))
    grouped = runs.groupby(KEYS, dropna=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{m} {s}" for m, s in table.columns]
    table["seeds"] = grouped["seed"].nunique()
    table = table.reset_index()
    rank = {p: i for i, p in enumerate(ORDER)}
    return table.sort_values(["model", "data", "probe_config"], key=lambda c: c.map(rank).fillna(99) if c.name == "probe_config" else c)


def markdown(table: pd.DataFrame) -> str:
    metrics = sorted({c.rsplit(" ", 1)[0] for c in table.columns if c.endswith(" mean")})
    head = "| model | data | probe | " + " | ".join(metrics) + " | seeds |"
    lines = [head, "|" + "---|" * (4 + len(metrics))]
    for _, r in table.iterrows():
        model = r["model"] + (" (random init)" if r["random_init"] else "")
        cells = []
        for m in metrics:
            mean, std = r[f"{m} mean"], r[f"{m} std"]
            cells.append("" if pd.isna(mean) else f"{100 * mean:.1f} ± {100 * (0 if pd.isna(std) else std):.1f}")
        lines.append(f"| {model} | {r['data']} | {r['probe_config']} | " + " | ".join(cells) + f" | {r['seeds']} |")
    return "\n".join(lines)


def bar_plot(table: pd.DataFrame, path: Path, metric: str = "test/uas") -> None:
    labels = [f"{r['model']}\n{r['probe_config']}" for _, r in table.iterrows()]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels)), 4))
    ax.bar(range(len(labels)), 100 * table[f"{metric} mean"], yerr=100 * table[f"{metric} std"].fillna(0), capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{metric} (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: the first directory")
    args = parser.parse_args(argv)
    out = args.out or args.dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    runs = collect(args.dirs)
    table = summarise(runs)
    text = markdown(table)
    (out / "compare.md").write_text(text + "\n")
    table.to_csv(out / "compare.csv", index=False)
    bar_plot(table, out / "compare.png")
    print(text)
    return table


if __name__ == "__main__":
    main()
