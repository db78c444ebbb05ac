"""Do the paper's lessons generalise? Its battery on bidirectional encoders and causal LMs, on raw
and on norm-weighted attention, with one row per claim of the paper.

    python analyze.py analysis=families           # mpnet_base, minilm_l6, smollm2_135m, gemma3_270m on EWT dev

Each model runs the ordinary jobs (``surface`` on both quantities, ``syntax_heads``,
``coref_heads``, ``head_similarity``, ``gradient``) into ``<out>/<model>/``, composed exactly as
``analyze.py analysis=<job> model=<model>`` would be; this module only compares their summaries.

Rules of the comparison (each verdict cell gives its number, so a reader can disagree):

- **Sink share**: per layer, the mean share of attention on the token most heads dump on: the
  start token ([CLS], <s>, <bos>), the end token ([SEP], </s>), or in a model with neither its
  first word. "Holds" when some layer puts over half of its attention on one such token (the
  paper: over half on [SEP] in layers 6-10).
- **No-op reading (Fig. 3)**: in the layers where the sink takes over half the attention, the
  gradient of the LM loss per unit of attention to the sink over that to other tokens. "Holds"
  when it is below 1 in most of them. Needs trained LM-head weights.
- **Norm-weighting (Kobayashi et al. 2020)**: in the same layers, the sink's share of the
  norm-weighted contributions. "Holds" when it is smaller than its share of the weights.
- **Syntax (Table 1)**: the share of relations (with at least ``min_count`` instances) whose best
  head beats the best fixed offset; "holds" when the "All" row's best head beats it too.
- **Coreference (Table 2)**: the best head against the nearest-mention and same-head-word
  baselines; "holds" when it beats both (the paper's head 5-4: 65 against 27 and 52).
- **Head similarity (§6)**: mean JS distance between heads of different layers over that within a
  layer; "holds" above 1.
- **Probes (Table 3)**: Attn + GloVe against Distances + GloVe, read from the ``metrics.json`` of
  finished ``train.py`` runs under ``probe_runs`` (dev UAS); "cannot be tested" without them.

The cross-family head map: JS distances between every head of every model over the same sentences,
on word-to-word attention only (rows renormalised over the words), since the models do not share
special tokens; embedded with the same metric MDS as §6, coloured by family and by relative depth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from hydra.utils import instantiate
from matplotlib.figure import Figure

from probing import record, runner
from probing.analysis.base import Context, Section, job_classes
from probing.analysis.similarity import DistanceAccumulator, mds_embedding, without_ticks
from probing.record import RunRecord

log = logging.getLogger(__name__)

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "cannot be tested"
PER_MODEL_JOBS = ("surface", "syntax_heads", "coref_heads", "head_similarity", "gradient")


@dataclass(kw_only=True)
class FamiliesJob:
    """The cross-family comparison of issue 11 (see the module docstring for every rule)."""

    in_report: ClassVar[bool] = False
    tiny_overrides: ClassVar[list[str]] = ["models=tiny",
                                           "analysis.map_sentences=3", "analysis.tiny=true"]
    models: list[str]  # conf/models/ (the YAML): the bundled models
    quantities: list[str]
    probe_runs: str | None  # a folder of finished train.py runs (their records) for Table 3
    map_sentences: int  # sentences for the cross-family head map (K_total^2 JS pairs each)
    sink_threshold: float
    job_overrides: dict[str, list[str]] | None  # {job: [overrides]} for every model's run of it
    # where each model's job runs go (<runs_dir>/<model>/<job>/; default: this run's folder): a
    # finished run of the same config by the same committed code there is read, not run again
    runs_dir: str | None
    tiny: bool  # compose every job with its class's tiny_overrides (smoke runs on tiny data)

    def run(self, ctx: Context) -> Section:
        per_model = {m: self._model(ctx, m) for m in self.models}
        probes = probe_uas(record.collect(self.probe_runs, kind="probe")) if self.probe_runs else {}
        claims = [claim(per_model, probes, self.sink_threshold) for claim in CLAIMS]
        claim_rows = [{"claim": c["claim"], "paper": c["paper"], **{m: c[m] for m in self.models}} for c in claims]
        claims_md = ctx.writer.table("claims", claim_rows)
        sink_rows = sink_table(per_model)
        sink_md = ctx.writer.table("sink_by_layer", sink_rows)
        figs = [ctx.writer.figure(sink_figure(per_model), "sink_by_depth")[0]]
        emb = self._head_map(ctx, per_model)
        if emb is not None:
            figs.append(ctx.writer.figure(head_map_figure(*emb), "heads_of_all_families")[0])
        summary = {"models": {m: {k: v for k, v in r.items() if k != "context"} for m, r in per_model.items()},
                   "claims": claim_rows, "sinks": sink_rows, "probes": probes}
        caveats = "\n".join(f"- {r['caveat']}" for r in per_model.values())
        md = (f"Every model on `{ctx.corpus.name}` `{ctx.split}` (coreference: its own corpus). The paper used "
              f"BERT-base on WSJ and CoNLL-2012: compare findings, not numbers.\n\n{caveats}\n\n"
              f"**The paper's claims, model by model:**\n\n{claims_md}\n\n"
              f"**Share of attention on the sink per layer** (start token / end token / first word; raw and "
              f"norm-weighted):\n\n{sink_md}")
        return Section("Do the lessons generalise? Encoders and causal LMs", md, figs, summary)

    # --- per model -----------------------------------------------------------------------------
    def _compose(self, ctx: Context, model: str, job: str, out: Path, extra: list[str] = ()):
        tiny = list(job_classes()[job].tiny_overrides) if self.tiny else []
        extra = [f"model={model}", *extra, *tiny, *(self.job_overrides or {}).get(job, [])]
        return runner.compose("analyze", [f"analysis={job}", *runner.sub_job_overrides(ctx.overrides, extra)], out,
                              paths=ctx.paths)

    def _model(self, ctx: Context, model: str) -> dict:
        got: dict = {}
        runs = Path(self.runs_dir) if self.runs_dir else ctx.out
        for job in PER_MODEL_JOBS:
            quantities = self.quantities if job == "surface" else ["attention"]
            for q in quantities:
                key = job if q == "attention" else f"{job}-{q}"
                cfg, inv = self._compose(ctx, model, job, runs / model / key, [f"extract.quantity={q}"])
                log.info("families: %s %s", model, key)
                # another run of the same job by the same committed code (the results command's
                # analysis stage) is read instead of run again
                rec = runner.run(cfg, inv, wandb_run=ctx.writer.wandb_run, reuse="same_commit")
                got[key] = rec.summary
                if key == "surface":
                    got["caveat"], got["family"] = rec.caveat, instantiate(cfg.model).family
                    got["layers"] = len(rec.summary["first_by_layer"])
        return got

    def _head_map(self, ctx: Context, per_model: dict) -> tuple | None:
        """JS distances between all heads of all models on word-to-word maps of shared sentences."""
        stores = {}
        for model in self.models:
            cfg, _ = self._compose(ctx, model, "surface", ctx.out)
            store, sentences = Context.from_cfg(cfg, ctx.out, ctx.writer).attention()
            stores[model] = store
        kept = set.intersection(*(set(s.kept.tolist()) for s in stores.values()))
        picks = sorted(kept)[: self.map_sentences]
        sizes = [stores[m].num_maps for m in self.models]
        if not picks:
            return None
        acc = DistanceAccumulator(sum(sizes))
        for i in picks:
            acc.update(np.concatenate([word_rows(stores[m].maps(i), stores[m].layout) for m in self.models]))
        dist = acc.result()
        np.save(ctx.out / "js_distances_all_families.npy", dist)
        emb = mds_embedding(dist)
        families = [per_model[m]["family"] for m in self.models for _ in range(stores[m].num_maps)]
        depth = np.concatenate([(np.arange(stores[m].num_maps) // stores[m].num_heads + 1) / stores[m].num_layers
                                for m in self.models])
        names = [m for m in self.models for _ in range(stores[m].num_maps)]
        return emb, families, depth, names


def word_rows(maps: np.ndarray, layout) -> np.ndarray:
    """(K, T, T) -> (K, n, n): word-to-word attention, each row renormalised over the words (a row
    with no mass on any word, e.g. a causal first word's, becomes uniform: it says nothing)."""
    T = maps.shape[-1]
    words = layout.words(layout.num_words(T))
    w = np.asarray(maps[:, words, words], dtype=np.float64)
    total = w.sum(-1, keepdims=True)
    n = w.shape[-1]
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 1.0 / n)


# --- the comparison ---------------------------------------------------------------------------


# the surface job's per-layer summary key of each kind of sink
SINK_KEYS = {"start token": "start_by_layer", "end token": "end_by_layer", "first word": "first_by_layer"}


def sink_by_layer(summary: dict) -> tuple[str, np.ndarray]:
    """The token a model's layers put most attention on, and that share per layer."""
    options = {name: np.asarray(summary[key]) for name, key in SINK_KEYS.items()
               if name != "first word" and summary.get(key) is not None}
    if not options:  # no special tokens: the first word is the sink
        return "first word", np.asarray(summary["first_by_layer"])
    name = max(options, key=lambda k: options[k].max())
    return name, options[name]


def norm_share(r: dict, name: str) -> np.ndarray | None:
    """The same sink's share of the norm-weighted contributions per layer, if extracted."""
    norm = r.get("surface-norm", {}).get(SINK_KEYS[name])
    return None if norm is None else np.asarray(norm)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _claim_sink(per_model, probes, threshold):
    row = {"claim": "Most attention in some layers goes to one special token (the sink)",
           "paper": "over half on [SEP] in layers 6-10 of BERT-base"}
    for m, r in per_model.items():
        name, share = sink_by_layer(r["surface"])
        best = int(np.argmax(share))
        verdict = HOLDS if share[best] > threshold else FAILS
        row[m] = f"{verdict}: {share[best]:.2f} on the {name} in layer {best + 1}/{len(share)}"
    return row


def _sink_layers(r: dict, threshold: float) -> tuple[str, np.ndarray, np.ndarray]:
    name, share = sink_by_layer(r["surface"])
    return name, share, np.flatnonzero(share > threshold)


def _claim_gradient(per_model, probes, threshold):
    row = {"claim": "Attention to the sink is a no-op: the loss barely depends on it (Fig. 3)",
           "paper": "MLM gradient through [SEP] attention very small from layer 5 on"}
    for m, r in per_model.items():
        g = r.get("gradient", {})
        if "ratio_by_layer" not in g:
            row[m] = f"{UNTESTED}: no trained LM head"
            continue
        _, _, layers = _sink_layers(r, threshold)
        if not len(layers):
            row[m] = f"{UNTESTED}: no layer puts over {threshold:.0%} on one token"
            continue
        ratio = np.asarray(g["ratio_by_layer"])[layers]
        below = int((ratio < 1).sum())
        verdict = HOLDS if below > len(layers) / 2 else FAILS
        row[m] = (f"{verdict}: mean abs grad to {g['sink']} / to others below 1 in {below} of {len(layers)} sink layers "
                  f"(median {np.median(ratio):.2f})")
    return row


def _claim_norm(per_model, probes, threshold):
    row = {"claim": "The sink's large attention carries small norms (Kobayashi et al. 2020)",
           "paper": "not in the paper; Kobayashi et al.: BERT's [CLS]/[SEP] attention has small ‖αf‖"}
    for m, r in per_model.items():
        if "surface-norm" not in r:
            row[m] = f"{UNTESTED}: norm-weighted maps not extracted"
            continue
        name, share, layers = _sink_layers(r, threshold)
        if not len(layers):
            layers = np.array([int(np.argmax(share))])
        normed = norm_share(r, name)[layers]
        raw = share[layers]
        verdict = HOLDS if normed.mean() < raw.mean() else FAILS
        row[m] = f"{verdict}: {name} share {raw.mean():.2f} of weights, {normed.mean():.2f} of norms"
    return row


def _claim_syntax(per_model, probes, threshold):
    row = {"claim": "Single heads track syntax better than fixed offsets (Table 1)",
           "paper": "best head beats the offset baseline for every relation; All 34.5 vs 26.3"}
    for m, r in per_model.items():
        rows = r["syntax_heads"]["rows"]
        wins = sum(v["accuracy"] > v["baseline_accuracy"] for k, v in rows.items() if k != "All")
        total = sum(1 for k in rows if k != "All")
        a = rows.get("All", {})
        verdict = HOLDS if a and a["accuracy"] > a["baseline_accuracy"] else FAILS
        row[m] = (f"{verdict}: All {a.get('accuracy')} ({a.get('head')}) vs {a.get('baseline_accuracy')}; "
                  f"{wins} of {total} relations")
    return row


def _claim_end_self(per_model, probes, threshold):
    row = {"claim": "The end token's row attends to itself (§3)",
           "paper": "[SEP] rows put over 90% of their attention on [SEP]"}
    for m, r in per_model.items():
        own = r["surface"].get("end_to_end_by_layer")
        if own is None:
            row[m] = f"{UNTESTED}: no end token"
            continue
        own = np.asarray(own)
        verdict = HOLDS if own.max() > 0.9 else FAILS
        row[m] = f"{verdict}: {own.min():.2f}-{own.max():.2f} by layer"
    return row


def _claim_coref(per_model, probes, threshold):
    row = {"claim": "A head finds coreferent antecedents (Table 2)",
           "paper": "head 5-4: 65 vs nearest 27, same head word 52"}
    for m, r in per_model.items():
        c = r["coref_heads"]
        best, near, same = (100 * c[k] for k in ("best_accuracy", "nearest_accuracy", "same_head_accuracy"))
        verdict = HOLDS if best > max(near, same) else FAILS
        row[m] = f"{verdict}: {c['best_head']} {best:.1f} vs nearest {near:.1f}, same head word {same:.1f}"
    return row


def _claim_similarity(per_model, probes, threshold):
    row = {"claim": "Heads of one layer behave alike (§6)", "paper": "same-layer heads cluster in the MDS plot"}
    for m, r in per_model.items():
        x = r["head_similarity"]["different_over_same_layer_distance"]
        row[m] = f"{HOLDS if x > 1 else FAILS}: different/same-layer distance {x:.2f}"
    return row


def _claim_probes(per_model, probes, threshold):
    row = {"claim": "Attention alone parses: Attn + GloVe beats Distances + GloVe (Table 3)",
           "paper": "77 vs 58 UAS (Attn 61)"}
    # Distances + GloVe reads no attention: the same probe whichever model's run it came with
    distances = [p["distances_plus_glove"] for p in probes.values() if "distances_plus_glove" in p]
    for m in per_model:
        got = dict(probes.get(m, {}))
        if distances:
            got.setdefault("distances_plus_glove", float(np.mean(distances)))
        if "attn_plus_glove" not in got or "distances_plus_glove" not in got:
            row[m] = f"{UNTESTED}: no probe runs" + (" (pass analysis.probe_runs=DIR)" if not probes else "")
            continue
        a, d = got["attn_plus_glove"], got["distances_plus_glove"]
        attn = f"; Attn {got['attn_only']:.1f}" if "attn_only" in got else ""
        row[m] = f"{HOLDS if a > d else FAILS}: {a:.1f} vs {d:.1f} dev UAS{attn}"
    return row


CLAIMS = (_claim_sink, _claim_end_self, _claim_gradient, _claim_norm, _claim_syntax, _claim_coref, _claim_similarity, _claim_probes)


def probe_uas(records: list[RunRecord]) -> dict[str, dict[str, float]]:
    """{model: {probe config: mean dev UAS in %}} over probe records; an attention-free probe's
    runs (no model) count for every model."""
    runs: dict[tuple, list] = {}
    for rec in records:
        if rec.random_init or "val/uas" not in rec.metrics:
            continue
        runs.setdefault((rec.model, rec.name), []).append(rec.metrics["val/uas"])
    out: dict[str | None, dict[str, float]] = {}
    for (model, probe), vals in runs.items():
        out.setdefault(model, {})[probe] = 100 * float(np.mean(vals))
    shared = out.pop(None, {})
    return {m: {**shared, **got} for m, got in out.items()}


def sink_table(per_model: dict) -> list[dict]:
    rows = []
    for m, r in per_model.items():
        name, share = sink_by_layer(r["surface"])
        norm = norm_share(r, name)
        rows.append({"model": m, "family": r["family"], "sink": name,
                     "raw, by layer": " ".join(_fmt(x) for x in share),
                     "norm-weighted, by layer": " ".join(_fmt(x) for x in norm) if norm is not None else None})
    return rows


def sink_figure(per_model: dict) -> Figure:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for colour, (m, r) in enumerate(per_model.items()):
        name, share = sink_by_layer(r["surface"])
        depth = np.arange(1, len(share) + 1) / len(share)
        ax.plot(depth, share, marker="o", color=f"C{colour}", label=f"{m} ({name})")
        norm = norm_share(r, name)
        if norm is not None:
            ax.plot(depth, norm, ls="--", color=f"C{colour}")
    ax.set_xlabel("relative depth (layer / number of layers)")
    ax.set_ylabel("share of attention on the sink")
    ax.set_ylim(0, 1)
    ax.set_title("solid: attention weights; dashed: norm-weighted")
    ax.legend(fontsize=7)
    return fig


def head_map_figure(emb: np.ndarray, families: list[str], depth: np.ndarray, names: list[str]) -> Figure:
    fig = Figure(figsize=(11, 5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    models = list(dict.fromkeys(names))
    markers = dict(zip(models, "os^Dv<>p"))
    for i, m in enumerate(models):
        sel = np.array([n == m for n in names])
        ax1.scatter(*emb[sel].T, s=14, marker=markers[m], color=f"C{i}", label=f"{m} ({families[int(np.argmax(sel))]})")
        sc = ax2.scatter(*emb[sel].T, s=14, marker=markers[m], c=depth[sel], cmap="coolwarm", vmin=0, vmax=1)
    ax1.legend(fontsize=7)
    ax1.set_title("heads of every model, by model and family")
    fig.colorbar(sc, ax=ax2, label="relative depth")
    ax2.set_title("by relative depth")
    return without_ticks(fig)
