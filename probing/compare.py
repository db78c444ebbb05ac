"""Gather finished runs' ``metrics.json`` into one table (CSV + Markdown) and a bar plot
(PNG + SVG + PDF), through the project's one writer.

    python -m probing.compare outputs/train/multiruns/2026-11-25_10-00-00 [more dirs] [--out DIR]

Runs are grouped by model, data and probe; seeds become mean and std (in %).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from probing.writer import Writer

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


def rows(table: pd.DataFrame) -> list[dict]:
    """One row per group: model, data, probe, then each metric's mean and std in %, and seeds."""
    metrics = sorted({c.rsplit(" ", 1)[0] for c in table.columns if c.endswith(" mean")})
    out = []
    for _, r in table.iterrows():
        row = {"model": r["model"] + (" (random init)" if r["random_init"] else ""), "data": r["data"],
               "probe": r["probe_config"]}
        for m in metrics:
            mean, std = r[f"{m} mean"], r[f"{m} std"]
            row[f"{m} mean"] = None if pd.isna(mean) else 100 * mean
            # one seed has no spread: shown as 0, as a single run's std is
            row[f"{m} std"] = None if pd.isna(mean) else 100 * (0.0 if pd.isna(std) else float(std))
        row["seeds"] = int(r["seeds"])
        out.append(row)
    return out


def bar_plot(table: pd.DataFrame, metric: str = "test/uas") -> Figure:
    labels = [f"{r['model']}\n{r['probe_config']}" for _, r in table.iterrows()]
    fig = Figure(figsize=(max(6, 0.9 * len(labels)), 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(labels)), 100 * table[f"{metric} mean"], yerr=100 * table[f"{metric} std"].fillna(0), capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{metric} (%)")
    return fig


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: the first directory")
    args = parser.parse_args(argv)
    writer = Writer(args.out or args.dirs[0])
    table = summarise(collect(args.dirs))
    text = writer.table("compare", rows(table), digits=1)
    writer.figure(bar_plot(table), "compare")
    print(text)
    return table


if __name__ == "__main__":
    main()
