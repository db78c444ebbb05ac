"""Rows of the results tables, built from run records alone (unit-tested on canned records).

Seeds are summarised everywhere by :func:`probing.record.mean_std` (sample std, with n). A probe
run that read no model (an attention-free probe: right-branching, Distances + GloVe) counts for
every model's column, since its numbers cannot depend on the model.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from probing.analysis.paper import TABLE3
from probing.record import RunRecord, mean_std, sample_std

SPLITS = {"dev": "val", "test": "test"}


def values(records: Iterable[RunRecord], probe: str, model: str, metric: str) -> list[float]:
    """``metric`` (e.g. ``val/uas``) of every run of ``probe`` on ``model`` (or on no model)."""
    return [r.metrics[metric] for r in records if r.name == probe and r.model in (model, None) and metric in r.metrics]


def table3_rows(records: list[RunRecord], models: list[str], metric: str = "uas") -> list[dict]:
    """One row per Table 3 probe, the paper's dev number, then dev and test per model."""
    rows = []
    for probe, (name, paper_uas) in TABLE3.items():
        row = {"probe": name, "paper (WSJ-SD dev)": paper_uas}
        for model in models:
            for split, prefix in SPLITS.items():
                row[f"{model} {split}"] = mean_std(values(records, probe, model, f"{prefix}/{metric}"))
        rows.append(row)
    return rows


def orderings(records: list[RunRecord], models: list[str], metric: str = "val/uas") -> list[dict]:
    """Every pair of Table 3 rows on every model, compared in the paper's order by the mean over
    seeds: ``replicates`` is whether ours are in the paper's order."""
    out = []
    probes = list(TABLE3)
    for model in models:
        got = {p: values(records, p, model, metric) for p in probes}
        have = [p for p in probes if got[p]]
        for i, a in enumerate(have):
            for b in have[i + 1:]:
                pa, pb = TABLE3[a][1], TABLE3[b][1]
                ma, mb = 100 * np.mean(got[a]), 100 * np.mean(got[b])
                gap_std = 100 * float(np.hypot(sample_std(got[a]), sample_std(got[b])))
                out.append({"model": model, "a": TABLE3[a][0], "b": TABLE3[b][0], "paper_a": pa, "paper_b": pb,
                            "a_mean": ma, "b_mean": mb, "n_a": len(got[a]), "n_b": len(got[b]),
                            "gap_std": gap_std, "replicates": (pa > pb) == (ma > mb)})
    return out


def ordering_lines(rows: list[dict]) -> list[str]:
    """The orderings that do not replicate, one sentence each, with both means, seeds and the
    spread of the gap (so a reader sees whether the gap is larger than seed noise)."""
    lines = []
    for r in rows:
        if r["replicates"]:
            continue
        noise = " (within the seed spread)" if abs(r["a_mean"] - r["b_mean"]) <= r["gap_std"] else ""
        lines.append(f"- **Does not replicate** ({r['model']}): {r['a']} {r['a_mean']:.1f} (n={r['n_a']}) vs "
                     f"{r['b']} {r['b_mean']:.1f} (n={r['n_b']}), where the paper had {r['paper_a']} vs "
                     f"{r['paper_b']}; gap {r['a_mean'] - r['b_mean']:+.1f}, its sample std {r['gap_std']:.1f}{noise}.")
    return lines


def recipe_rows(paper: list[RunRecord], default: list[RunRecord], models: list[str]) -> tuple[list[dict], list[str]]:
    """The default recipe against the paper's, per model and Table 3 row (dev, mean over seeds),
    with each seed's best epoch / epochs run; and the runs that stopped at their epoch limit."""
    rows, capped = [], []
    for model in models:
        for probe, (name, _) in TABLE3.items():
            d = values(default, probe, model, "val/uas")
            if not d:
                continue
            p = values(paper, probe, model, "val/uas")
            runs = sorted((r for r in default if r.name == probe and r.model in (model, None)), key=lambda r: r.seed)
            epochs = [f"{r.best_epoch}/{r.epochs_run}" for r in runs if r.best_epoch is not None]
            capped += [f"{model} {name} seed {r.seed} (best epoch {r.best_epoch} of {r.max_epochs})"
                       for r in runs if r.converged is False]
            dm, pm = 100 * np.mean(d), (100 * np.mean(p) if p else None)
            rows.append({"model": model, "probe": name, "paper recipe dev": mean_std(p) if p else "not run",
                         "default dev": mean_std(d), "default − paper": f"{dm - pm:+.1f}" if p else "",
                         "default ≥ paper": ("yes" if dm >= pm - 0.05 else "**no**") if p else "",
                         "best epoch / epochs run": ", ".join(epochs)})
    return rows, capped


def selectivity_rows(real: list[RunRecord], control: list[RunRecord], models: list[str]) -> list[dict]:
    """Hewitt & Liang's selectivity beside each Table 3 cell: dev UAS minus the same probe's dev UAS
    on the control task (same recipe and seeds), per model; the control UAS in brackets."""
    rows = []
    for probe, (name, _) in TABLE3.items():
        row = {"probe": name}
        for model in models:
            r, c = values(real, probe, model, "val/uas"), values(control, probe, model, "val/uas")
            row[model] = (f"{100 * (np.mean(r) - np.mean(c)):+.1f} (control {mean_std(c)})" if r and c else "—")
        rows.append(row)
    return rows
