"""Gather finished probe runs into one table (CSV + Markdown) and a bar plot (PNG + SVG + PDF).

    python -m probing.compare outputs/train/multiruns/2026-11-25_10-00-00 [more dirs] [--out DIR]

Runs are read as records (:mod:`probing.record`) and grouped by model, data and probe; seeds
become the project's one ``mean ± sample std (n)`` (in %).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from probing.analysis.paper import TABLE3
from probing.record import STD_NAME, RunRecord, collect, mean_std, sample_std
from probing.writer import Writer

METRICS = ("val/uas", "test/uas", "val/las", "test/las", "val/acc", "test/acc")


def group(records: list[RunRecord]) -> dict[tuple, list[RunRecord]]:
    """{(model, random_init, data, probe): runs}, Table 3's rows in the paper's order first."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.model or "(no model)", r.random_init, r.data, r.name), []).append(r)
    rank = {p: i for i, p in enumerate(TABLE3)}
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2], rank.get(kv[0][3], 99), kv[0][3])))


def rows(records: list[RunRecord]) -> list[dict]:
    """One row per group: model, data, probe, every metric's mean ± std, and the seeds."""
    out = []
    for (model, random_init, data, probe), runs in group(records).items():
        row = {"model": model + (" (random init)" if random_init else ""), "data": data, "probe": probe}
        for m in METRICS:
            values = [r.metrics[m] for r in runs if m in r.metrics]
            if values:
                row[f"{m} (%)"] = mean_std(values)
        row["seeds"] = " ".join(str(s) for s in sorted(r.seed for r in runs))
        out.append(row)
    return out


def bar_plot(records: list[RunRecord], metric: str = "test/uas") -> Figure:
    groups = {k: [r.metrics[metric] for r in v if metric in r.metrics] for k, v in group(records).items()}
    groups = {k: v for k, v in groups.items() if v}
    labels = [f"{model}\n{probe}" for model, _, _, probe in groups]
    fig = Figure(figsize=(max(6, 0.9 * len(labels)), 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(labels)), [100 * np.mean(v) for v in groups.values()],
           yerr=[100 * sample_std(v) for v in groups.values()], capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{metric} (%), {STD_NAME}")
    return fig


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: the first directory")
    args = parser.parse_args(argv)
    records = collect(*args.dirs, kind="probe")
    if not records:
        raise SystemExit(f"no finished probe runs under {', '.join(map(str, args.dirs))}")
    writer = Writer(args.out or args.dirs[0])
    table = rows(records)
    text = writer.table("compare", table)
    writer.figure(bar_plot(records), "compare")
    print(f"{STD_NAME}\n\n{text}")
    return table


if __name__ == "__main__":
    main()
