"""Do the paper's lessons generalise? Its battery on bidirectional encoders and causal LMs, on
every measure of context mixing (attention, norm-weighted attention, ...), one row per claim.

    python analyze.py analysis=families           # the bundled models (conf/models/) on EWT dev

Each model runs the ordinary jobs (``surface``, ``segment_pairs``, ``sink_metric``,
``syntax_heads``, ``coref_heads``, ``head_similarity``, ``gradient``, and for every extra quantity
``surface``, ``syntax_heads`` and ``head_similarity`` again) into ``<runs_dir>/<model>/<job>/``,
composed exactly as ``analyze.py analysis=<job> model=<model>`` would be; the verdicts and their
rules are :mod:`probing.analysis.claims`; this module gathers the evidence and draws the figures.

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
from probing.analysis import paper
from probing.analysis.base import Context, Section, job_classes
from probing.analysis.claims import CLAIMS, quantity_row, sink_layers
from probing.analysis.explorer import ExplorerJob, write_explorer
from probing.analysis.similarity import DistanceAccumulator, mds_embedding, without_ticks
from probing.record import RunRecord

log = logging.getLogger(__name__)

# every job once per model; the first three again per extra quantity (``<job>-<quantity>``)
PER_QUANTITY_JOBS = ("surface", "syntax_heads", "head_similarity")
PER_MODEL_JOBS = (*PER_QUANTITY_JOBS, "segment_pairs", "sink_metric", "coref_heads", "gradient")


@dataclass(kw_only=True)
class FamiliesJob:
    """The cross-family comparison of issue 11 (see the module docstring for every rule)."""

    in_report: ClassVar[bool] = False
    # two of the tiny models (an encoder, a causal LM): every path of the comparison, at half the cost
    tiny_overrides: ClassVar[list[str]] = ["models.names=[tiny_random,tiny_llama]", "analysis.map_sentences=3",
                                           "analysis.tiny=true",
                                           "analysis.explorer.num_sentences=3", "analysis.explorer.syntax.min_count=2",
                                           "data@analysis.explorer.coref.corpus=tiny", "analysis.explorer.coref_split=train"]
    models: list[str]  # conf/models/ (the YAML): the bundled models
    quantities: list[str]
    # folders of finished train.py runs (their records): Table 3's, and the Attn probe on each quantity
    probe_runs: str | list[str] | None
    map_sentences: int  # sentences for the cross-family head map (K_total^2 JS pairs each)
    job_overrides: dict[str, list[str]] | None  # {job: [overrides]} for every model's run of it
    # where each model's job runs go (<runs_dir>/<model>/<job>/; default: this run's folder): a
    # finished run of the same config by the same committed code there is read, not run again
    runs_dir: str | None
    explorer: ExplorerJob  # the compare page's settings (conf/analysis/explorer.yaml, fewer sentences)
    tiny: bool  # compose every job with its class's tiny_overrides (smoke runs on tiny data)

    def run(self, ctx: Context) -> Section:
        per_model = {m: self._model(ctx, m) for m in self.models}
        runs = probe_records(self.probe_runs)
        for m, evidence in per_model.items():
            evidence["probes"] = probe_uas(runs, m)
        claim_rows = [c.row(per_model) for c in CLAIMS]
        claims_md = ctx.writer.table("claims", claim_rows)
        quantity_rows = quantity_table(per_model, self.quantities, runs)
        quantities_md = ctx.writer.table("claims_by_quantity", quantity_rows)
        sink_rows = sink_table(per_model)
        sink_md = ctx.writer.table("sink_by_layer", sink_rows)
        metric_rows = sink_metric_table(per_model)
        metric_md = ctx.writer.table("sink_metric", metric_rows, digits=1)
        figs = [ctx.writer.figure(sink_figure(per_model), "sink_by_depth")[0]]
        emb = self._head_map(ctx, per_model)
        if emb is not None:
            figs.append(ctx.writer.figure(head_map_figure(*emb), "heads_of_all_families")[0])
        # one explorer page for every model, head maps side by side (rows aligned by relative depth)
        explorer = write_explorer([self.explorer.collect(self._model_context(ctx, m)) for m in self.models],
                                  "explorer", title="Every model's heads", writer=ctx.writer,
                                  max_bytes=self.explorer.max_bytes)
        summary = {"models": per_model, "claims": claim_rows, "by_quantity": quantity_rows, "sinks": sink_rows,
                   "sink_metric": metric_rows, "explorer": explorer.name}
        caveats = "\n".join(f"- {r['caveat']}" for r in per_model.values())
        md = (f"Every model on `{ctx.corpus.name}` `{ctx.split}` (coreference: its own corpus). The paper used "
              f"BERT-base on WSJ and CoNLL-2012: compare findings, not numbers.\n\n{caveats}\n\n"
              f"**The paper's claims, model by model** (rules in `probing/analysis/claims.py`):\n\n{claims_md}\n\n"
              f"**The same findings on each measure of context mixing:**\n\n{quantities_md}\n\n"
              f"**Share of attention on the sink per layer** (raw and norm-weighted):\n\n{sink_md}\n\n"
              f"**Gu et al.'s sink metric** beside their published shares:\n\n{metric_md}")
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
            quantities = self.quantities if job in PER_QUANTITY_JOBS else ["attention"]
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

    def _model_context(self, ctx: Context, model: str) -> Context:
        cfg, _ = self._compose(ctx, model, "surface", ctx.out)
        return Context.from_cfg(cfg, ctx.out, ctx.writer)

    def _head_map(self, ctx: Context, per_model: dict) -> tuple | None:
        """JS distances between all heads of all models on word-to-word maps of shared sentences."""
        stores = {m: self._model_context(ctx, m).attention()[0] for m in self.models}
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
SINK_KEYS = {"start token": "start_by_layer", "end token": "end_by_layer", "first position": "first_by_layer"}


def norm_share(r: dict, name: str) -> np.ndarray | None:
    """The same sink's share of the norm-weighted contributions per layer, if extracted."""
    norm = r.get("surface-norm", {}).get(SINK_KEYS[name])
    return None if norm is None else np.asarray(norm)


def probe_records(roots: str | list[str] | None) -> list[RunRecord]:
    """The probe records under ``roots``: one folder (the form before quantities had probes) or many."""
    return record.collect(*([roots] if isinstance(roots, str) else roots or []), kind="probe")


def probe_uas(records: list[RunRecord], model: str, quantity: str = "attention") -> dict[str, list[float]]:
    """{probe config: [dev UAS of each seed]} of ``model``'s runs on ``quantity``'s maps, the
    attention-free ones (no model: the same runs for every model) included; random-init runs under
    their own name."""
    out: dict[str, list[float]] = {}
    for rec in records:
        if rec.model in (model, None) and "val/uas" in rec.metrics and rec.quantity == quantity:
            out.setdefault(rec.name, []).append(rec.metrics["val/uas"])
    return out


def quantity_table(per_model: dict, quantities: list[str], runs: list[RunRecord]) -> list[dict]:
    """:func:`~probing.analysis.claims.quantity_row` per model and quantity, with the Attn probe of
    ``runs`` that read that quantity's maps."""
    rows = []
    for m, e in per_model.items():
        for q in quantities:
            suffix = "" if q == "attention" else f"-{q}"
            if f"surface{suffix}" not in e:
                continue
            jobs = {job: e[f"{job}{suffix}"] for job in PER_QUANTITY_JOBS}
            rows.append(quantity_row(m, q, jobs, probe_uas(runs, m, q).get("attn_only", [])))
    return rows


def sink_metric_table(per_model: dict) -> list[dict]:
    """Gu et al.'s share per model, beside the shares their paper publishes."""
    rows = [{"model": m, "share of heads with α₁ > ε (%)": 100 * e["sink_metric"]["sink_share"],
             "without the forced first row (%)": 100 * e["sink_metric"]["sink_share_without_forced_row"],
             "first position": e["sink_metric"]["first_token"]} for m, e in per_model.items()
            if "sink_share" in e.get("sink_metric", {})]
    return rows + [{"model": f"paper: {name}", "share of heads with α₁ > ε (%)": v}
                   for name, v in paper.SINK_METRIC.items()]


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def sink_table(per_model: dict) -> list[dict]:
    rows = []
    for m, r in per_model.items():
        name, share, _ = sink_layers(r)
        norm = norm_share(r, name)
        rows.append({"model": m, "family": r["family"], "sink": name,
                     "raw, by layer": " ".join(_fmt(x) for x in share),
                     "norm-weighted, by layer": " ".join(_fmt(x) for x in norm) if norm is not None else None})
    return rows


def sink_figure(per_model: dict) -> Figure:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for colour, (m, r) in enumerate(per_model.items()):
        name, share, _ = sink_layers(r)
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
