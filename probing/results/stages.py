"""The stages of the results command. Each declares the runs it needs (:meth:`Stage.specs`) and
builds its page from their records (:meth:`Stage.page`); a stage that compares with another's
runs declares those too, and the executor runs each only once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from hydra.utils import get_class

from probing import record, runner
from probing.analysis.base import job_classes
from probing.analysis.claims import quantity_row
from probing.analysis.explorer import ExplorerJob, screenshot_panels
from probing.analysis.paper import TABLE3
from probing.record import STD_NAME, RunRecord, mean_std, sample_std
from probing.results import tables
from probing.results.pages import Block, Page
from probing.results.plan import ROOT, Executor, Plan, RunSpec

Records = dict[RunSpec, RunRecord]
# the order Table 3's probes run in: the random-init row last (its encoders' caches take longest)
RUN_ORDER = ["right_branching", "distances_plus_glove", "attn_only", "attn_plus_glove", "random_init_attn_plus_glove"]
PAPER_RECIPE = ("experiment=clark19_table3",)


def tiny(plan: Plan, job: str) -> list[str]:
    """An analysis job's own overrides for the tiny data, in --quick; none otherwise."""
    return list(job_classes()[job].tiny_overrides) if plan.quick else []


class Stage:
    name: str
    title: str  # its line in README's list of pages

    def specs(self, plan: Plan) -> list[RunSpec]:
        return []

    def page(self, plan: Plan, got: Records) -> Page:
        raise NotImplementedError

    def run(self, plan: Plan, execute: Executor) -> dict[str, Page]:
        """``{page name: page}``: most stages write one page named after themselves."""
        specs = self.specs(plan)
        page = self.page(plan, dict(zip(specs, execute(specs))))
        page.link = page.link or self.title
        return {self.name: page}


def reads_attention(probe: str) -> bool:
    """Whether a probe config reads attention (an attention-free one is the same run for every model)."""
    cfg, _ = runner.compose("train", [f"probe={probe}"], "/tmp")
    return bool(get_class(cfg.probe.net._target_).uses_attention)


CONTROL = ("task@data.task=dependency_control",)
NO_MODEL = "none (reads no model)"


def table3_specs(plan: Plan, recipe: str, control: bool = False, probes: list[str] = RUN_ORDER,
                 extra: tuple[str, ...] = (), where: str | None = None) -> list[RunSpec]:
    """Every Table 3 row x seed with one recipe ("paper" or "default"), on the dependency task or
    its control: the attention-free rows once, the others per model (the random-init row per
    encoder, a fresh random encoder per seed). ``extra`` overrides go to the attention probes."""
    extra_all = (*(PAPER_RECIPE if recipe == "paper" else ()), *(CONTROL if control else ()))
    where = where or f"table3/{recipe}{'-control' if control else ''}"
    specs = []
    for probe in probes:
        for seed in plan.seeds:
            if not reads_attention(probe):
                specs.append(plan.train(*extra_all, f"probe={probe}", f"seed={seed}",
                                        out=f"{where}/no_model/{probe}/seed{seed}"))
                continue
            for model in plan.encoders if probe == "random_init_attn_plus_glove" else plan.models:
                specs.append(plan.train(*extra_all, f"model={model}", f"probe={probe}", f"seed={seed}", *extra,
                                        out=f"{where}/{model}/{probe}/seed{seed}"))
    return specs


T3_RULE = (f"UAS in %, punctuation excluded, {STD_NAME}. Dev is UD EWT dev and test UD EWT test; the paper's column is "
           "WSJ-SD **dev**, so compare it with our dev columns. Right-branching and Distances + GloVe read no model: "
           "they run once and stand in every model's column. The random-init row draws a new random encoder per seed "
           "and runs on the bidirectional encoders only (— elsewhere). Models: sentence-embedding encoders and causal "
           "LMs, not the paper's BERT-base (each model's caveat is in `conf/model/`); GloVe is 50-d, the paper's 300-d.")
ORDER_RULE = ("Rule: for every pair of rows the paper orders (A above B in UAS), the means over seeds of dev UAS "
              "here are compared; the pair replicates when A's mean is above B's. Each line gives both means, the "
              "seeds behind them, and the sample std of the gap; a gap within that spread is marked.")


SELECTIVITY = ("Hewitt & Liang (2019): every probe trained again, same recipe and seeds, on a control task that "
               "keeps the sentences and the output space but not the syntax (each word type attaches to itself, the "
               "sentence's first word or its last word: `conf/task/dependency_control.yaml`); selectivity = dev UAS "
               "minus dev UAS on the control, in points, the control's UAS in brackets. Expected before measuring: "
               "Attn (2·L·H weights, two ROOT scalars) cannot tell word types apart and so cannot learn the "
               "control, so its selectivity is high; Attn + GloVe and Distances + GloVe read each word's GloVe "
               "vector through many more weights and can learn a type's behaviour, so theirs is lower; "
               "right-branching learns nothing either way.")


class Table3(Stage):
    name, title = "table3", "Table 3, the paper's recipe"

    def specs(self, plan):
        return table3_specs(plan, "paper") + table3_specs(plan, "paper", control=True)

    def page(self, plan, got):
        real = [r for s, r in got.items() if s.out.startswith("table3/paper/")]
        control = [r for s, r in got.items() if s.out.startswith("table3/paper-control/")]
        lines = tables.ordering_lines(tables.orderings(real, plan.models))
        return Page("Table 3: attention-based probing classifiers (the paper's recipe)",
                    f"{T3_RULE} Recipe: `experiment=clark19_table3` (Adam, lr 0.002, one epoch, one sentence per "
                    f"batch), seeds {plan.seeds}.",
                    [Block("Table 3 (UAS %, the paper's recipe)", rows=tables.table3_rows(real, plan.models),
                           readme=True),
                     Block("Orderings that differ from the paper's (dev, the paper's recipe)", ORDER_RULE,
                           after="\n".join(lines) or "None: every ordering replicates.", readme=True),
                     Block("Selectivity: dev UAS minus the control task's (points)", SELECTIVITY,
                           tables.selectivity_rows(real, control, plan.models), readme=True)])


def default_recipe() -> str:
    """The default recipe in words, read from the composed ``train`` config (not restated)."""
    cfg, _ = runner.compose("train", [], "/tmp")
    return (f"`python train.py` (Adam at lr {cfg.probe.optimizer.lr} from the sweep of `results/lr_sweep.md`, "
            f"batches of {cfg.datamodule.batch_size} sentences, early stopping on dev UAS with patience "
            f"{cfg.callbacks.early_stopping.patience}, at most {cfg.trainer.max_epochs} epochs, the best epoch's "
            f"checkpoint)")


class Recipes(Stage):
    name, title = "table3_default", "Table 3, the default recipe"

    def specs(self, plan):
        return table3_specs(plan, "paper") + table3_specs(plan, "default")

    def page(self, plan, got):
        paper = [r for s, r in got.items() if s.out.startswith("table3/paper/")]
        default = [r for s, r in got.items() if s.out.startswith("table3/default/")]
        rows, capped = tables.recipe_rows(paper, default, plan.models)
        stopped = ("Every trained run was ended by early stopping." if not capped else
                   "**Not converged**: these runs reached the epoch limit before early stopping ended them, so their "
                   "numbers are lower bounds of what the recipe reaches: " + "; ".join(capped) + ".")
        lines = tables.ordering_lines(tables.orderings(default, plan.models))
        return Page("Table 3 with the default recipe", f"{T3_RULE} Recipe: {default_recipe()}, seeds {plan.seeds}.",
                    [Block("Table 3 (UAS %, the default recipe)", rows=tables.table3_rows(default, plan.models)),
                     Block("The default recipe against the paper's (dev UAS %)",
                           "The paper recipe (`experiment=clark19_table3`) on the same rows, models and seeds. Epochs "
                           "are 0-based (the best checkpoint's) and counted (epochs run), one per seed.",
                           rows, stopped, readme=True),
                     Block("Orderings that differ from the paper's (dev, the default recipe)", ORDER_RULE,
                           after="\n".join(lines) or "None: every ordering replicates.", readme=True)])


class LrSweep(Stage):
    """The recorded Optuna sweep behind the default recipe's learning rate: a Hydra multirun that
    only Hydra's own sweeper drives, so it runs as ``train.py -m`` in a process of its own."""

    name, title = "lr_sweep", "The learning-rate sweep"

    def page(self, plan, got):
        raise TypeError("the sweep's runs are Optuna's choice: see run()")

    def run(self, plan, execute):
        model = plan.encoders[-1]
        where = "lr_sweep"
        shutil.rmtree(plan.out / where, ignore_errors=True)
        recs = execute.sweep("lr_sweep", ["hparams_search=lr", f"model={model}", "probe=attn_plus_glove", "~logger",
                                          *plan.data, *plan.train_overrides,
                                          f"hydra.sweeper.n_trials={plan.lr_trials}"], where)
        rows = sorted(({"trial": r.dir.name, "lr": f"{r.lr:.2e}", "val UAS": f"{100 * r.metrics['val/uas']:.2f}",
                        "best epoch": r.best_epoch, "epochs run": r.epochs_run} for r in recs),
                      key=lambda row: float(row["lr"]))
        summary = plan.out / where / "optimization_results.yaml"
        best = summary.read_text().strip() if summary.is_file() else ""
        return {self.name: Page("Learning-rate sweep for the default recipe",
                    f"Optuna (TPE, {plan.lr_trials} trials) over the learning rate of `probe=attn_plus_glove` on "
                    f"`{model}`, maximising dev UAS; every other setting is the default recipe "
                    "(`conf/hparams_search/lr.yaml`). The default in `conf/probe/base/module.yaml` is set from it.",
                    [Block("Trials", rows=rows, after=f"Optuna's summary:\n\n```yaml\n{best}\n```")], link=self.title)}


SYNTAX_VARIANTS = {
    "released (default)": [],
    "head_dep_rule=head_row": ["analysis.head_dep_rule=head_row"],
    "label_level=base": ["analysis.label_level=base"],
    "offsets -3..2, clipped (released baseline)": ["analysis.offsets=[-3,-2,-1,0,1,2]", "analysis.offset_clip=true"],
    "before issue 10 (head_row, base)": ["analysis.head_dep_rule=head_row", "analysis.label_level=base"],
    "clitics ' ’s ’ too (before issue 18)": ["""analysis.clitics=["'s","s'","'","’s","’"]"""],
}
BEFORE = ["probe.net.root=start_end", "probe.mask_self=true", "probe.net.init=pytorch", "probe.loss=query_mean"]
ROOT_OFF = "datamodule.root_from_first_position=false"
PROBE_VARIANTS = {  # the ROOT form alone on Attn, where it matters most; all the options together on each
    "attn_only": {"root=start_end": BEFORE[:1], "all four (before issue 10)": BEFORE},
    "attn_plus_glove": {"all four (before issue 10)": BEFORE},
    "distances_plus_glove": {"before issue 10 (clipped features, relu, pytorch init, masked self, query mean)":
                             ["probe.net.features=clipped", "probe.net.activation=relu", *BEFORE[1:]]},
}


class Definitions(Stage):
    """The measured effect of every definitional choice: the released code's (default) vs ours before."""

    name, title = "definitions", "What each definitional choice changes"

    def _some(self, plan: Plan, variants: dict) -> dict:
        # in quick mode the default and one alternative: each variant is a run
        return dict(list(variants.items())[:2]) if plan.quick else variants

    def specs(self, plan):
        seed, specs = plan.seeds[0], []
        for model in plan.causal:  # ROOT from the first position, or none, where no start token is
            for probe in ("attn_only", "attn_plus_glove"):
                specs += [plan.train(*PAPER_RECIPE, f"model={model}", f"probe={probe}", f"seed={seed}",
                                     out=f"table3/paper/{model}/{probe}/seed{seed}"),
                          plan.train(*PAPER_RECIPE, f"model={model}", f"probe={probe}", f"seed={seed}", ROOT_OFF,
                                     out=f"definitions/{model}/{probe}-root")]
        for model in plan.encoders:
            for i, over in enumerate(self._some(plan, SYNTAX_VARIANTS).values()):
                specs.append(plan.analyze("analysis=syntax_heads", f"model={model}", *over,
                                          out=f"definitions/{model}/syntax{i}"))
            for probe, options in PROBE_VARIANTS.items():
                if not reads_attention(probe) and model != plan.encoders[0]:
                    continue  # reads no model: its variants are one set of runs, not one per encoder
                for i, over in enumerate(self._some(plan, {"released (default)": [], **options}).values()):
                    # the released definitions are the defaults: the table3 stage's run of this seed
                    out = (f"table3/paper/{model if reads_attention(probe) else 'no_model'}/{probe}/seed{seed}"
                           if not over else f"definitions/{model}/{probe}{i}")
                    specs.append(plan.train(*PAPER_RECIPE, f"model={model}" if reads_attention(probe) else "",
                                            f"probe={probe}", f"seed={seed}", *over, out=out))
        return [RunSpec(s.config, tuple(o for o in s.overrides if o), s.out) for s in specs]

    def page(self, plan, got):
        table1: dict[tuple, dict] = {}
        probe_rows, root_rows = [], []
        names = {**{f"syntax{i}": n for i, n in enumerate(SYNTAX_VARIANTS)}}
        for spec, rec in got.items():
            model = rec.get("model.name")
            if rec.kind == "analysis":
                variant = names[Path(spec.out).name]
                for rel, r in rec.summary["rows"].items():
                    # one row per (model, relation), one column per definition: the effect reads across
                    row = table1.setdefault((model, rel), {"model": model, "relation": rel})
                    row[variant] = (f"{r['accuracy']} ({r['head']} {r['direction']}; base {r['baseline_accuracy']} "
                                    f"{r['baseline_offset']:+d}; n={r['count']})")
            elif spec.out.endswith("-root") or (rec.model in plan.causal and rec.kind == "probe"):
                off = spec.out.endswith("-root")
                per_root = rec.metrics.get("test/root", None)
                root_rows.append({"model": model, "probe": TABLE3[rec.name][0],
                                  "ROOT": "no ROOT attention (option)" if off else "the first position (default)",
                                  "dev UAS": mean_std([rec.metrics["val/uas"]]),
                                  "test ROOT words right": root_accuracy(rec) if per_root is None else per_root})
            else:
                options = {"released (default)": [], **PROBE_VARIANTS[rec.name]}
                variant = next(n for n, over in options.items() if tuple(over) == tuple(
                    o for o in spec.overrides if o.startswith(("probe.net.", "probe.mask", "probe.loss"))))
                probe_rows.append({"model": model if reads_attention(rec.name) else NO_MODEL,
                                   "probe": TABLE3[rec.name][0], "definition": variant,
                                   "dev UAS": mean_std([rec.metrics["val/uas"]])})
        return Page("What each definitional choice changes",
                    "Defaults follow the released code (clarkkev/attention-analysis); each earlier or alternative "
                    "definition is an option, measured here on EWT dev.",
                    [Block("Table 1 (`analysis=syntax_heads`)", "Accuracy and baseline in %.", list(table1.values())),
                     Block(f"Probes (paper recipe, seed {plan.seeds[0]}, dev UAS %)",
                           "The released rows are the `table3` stage's runs.", probe_rows),
                     Block("ROOT in a model without a start token (paper recipe, seed 0)",
                           "SmolLM2 has no special token: the released ROOT features (attention to [CLS] and [SEP]) "
                           "would be zero, its ROOT logit a constant. By default they read the first position (the "
                           "sink); `datamodule.root_from_first_position=false` keeps the constant. ROOT words are "
                           "about 9% of the scored words; their test accuracy from the run's per-relation table.",
                           root_rows)])


def root_accuracy(rec: RunRecord) -> str:
    """The test accuracy of ROOT-attached words, from the run's per-relation table."""
    table = rec.dir / "per_relation_uas.csv"
    if not table.is_file():
        return "n/a"
    for line in table.read_text().splitlines()[1:]:
        relation, uas, count = line.split(",")
        if relation == "root":
            return f"{100 * float(uas):.1f} (n={count})"
    return "n/a"


def copy_figures(rec: RunRecord, results: Path, dest: str) -> list[str]:
    """A record's figures (PNG, SVG, PDF) copied under ``results/figures/<dest>/``; their links."""
    links = []
    for fig in rec.figures:
        src = rec.dir / fig
        dst = results / "figures" / dest / fig.replace("/", "_")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".png", ".svg", ".pdf"):
            if src.with_suffix(suffix).is_file():
                shutil.copyfile(src.with_suffix(suffix), dst.with_suffix(suffix))
        links.append(f"![{Path(fig).stem}]({dst.relative_to(results)})")
    return links


def section_block(rec: RunRecord, results: Path, dest: str, caveat: str | None = None) -> Block:
    """A job's record as a block of a page: its text, its own caveat where it differs, its figures."""
    own = f"> {rec.caveat}\n\n" if rec.caveat != caveat else ""
    return Block(rec.title, own + rec.markdown, after="\n\n".join(copy_figures(rec, results, dest)))


class Analysis(Stage):
    """Every analysis job on each model, one page per model: EWT dev, GUM dev for coreference, the
    restaurant reviews for the surface statistics and the attention view."""

    name, title = "analysis", "Every analysis job, model by model"

    def model_specs(self, plan: Plan, m: str) -> tuple[RunSpec, ...]:
        tiny = ("analysis.tiny=true",) if plan.quick else ()
        explorer = ExplorerJob.tiny_overrides if plan.quick else ()
        # the report runs every job but the explorer, which gets the norm-weighted maps beside the weights
        return (plan.analyze("analysis=report", f"model={m}", "analysis.skip=[explorer]", *tiny, out=f"analysis/{m}"),
                plan.analyze("analysis=surface", f"model={m}", f"data={plan.restaurants}",
                             f"split={plan.restaurants_split}", out=f"restaurants/{m}/surface", data=False),
                plan.analyze("analysis=attention_view", f"model={m}", f"data={plan.restaurants}",
                             out=f"restaurants/{m}/view", data=False),
                plan.analyze("analysis=explorer", f"model={m}", "analysis.quantities=[attention,norm]", *explorer,
                             out=f"explorer/{m}"))

    def specs(self, plan):
        return [s for m in plan.models for s in self.model_specs(plan, m)]

    def run(self, plan, execute):
        pages = {}
        for m in plan.models:
            report, surface, view, explorer = execute(list(self.model_specs(plan, m)))
            blocks = [section_block(r, plan.results, f"{m}/{r.name}", report.caveat) for r in sub_records(report)]
            blocks.append(section_block(surface, plan.results, f"{m}/restaurants", report.caveat))
            blocks[-1].heading = f"Surface statistics on the restaurant reviews ({plan.restaurants_split})"
            blocks.append(section_block(view, plan.results, f"{m}/view", report.caveat))
            blocks.append(explorer_block(explorer, explorer.summary["html"], plan, m))
            pages[f"analysis_{m}"] = Page(f"What does {m} look at?", f"> {report.caveat}", blocks,
                                          link=f"Every analysis job on `{m}`")
        return pages


def explorer_block(rec: RunRecord, html: str, plan: Plan, name: str) -> Block:
    """An explorer page that ``rec``'s run wrote (not committed: its size), with PNGs of its panels
    taken by headless Chromium into ``results/figures/explorer/`` (committed) where it is installed."""
    page = rec.dir / html
    shots = []
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        shots = screenshot_panels(page, plan.results / "figures" / "explorer", prefix=name)
    links = "\n\n".join(f"![{p.stem}]({p.relative_to(plan.results)})" for p in shots) or (
        "(no Chromium here: `make browser`, then re-run the stage, takes the screenshots)")
    return Block(f"Attention explorer: {name}",
                 f"The page is `{page}` ({page.stat().st_size / 1e6:.1f} MB; not committed: run "
                 f"`{rec.provenance.get('command', '')}`). Its panels as it opens:", after=links)


def sub_records(report: RunRecord) -> list[RunRecord]:
    """The report's sub-job records, in the report's order."""
    return [record.read(report.dir / name) for name in report.summary]


class AspectOpinion(Stage):
    name, title = "aspect_opinion", "Aspect → opinion heads"
    PROBES = ("nearest_opinion", "attn_only", "attn_plus_glove")

    def specs(self, plan):
        specs = []
        for m in plan.encoders:
            specs += [RunSpec("analyze", ("analysis=aspect_opinion", f"model={m}", f"data={plan.triplets}",
                                          f"split={split}"), f"aspect_opinion/{m}/{split}") for split in ("dev", "test")]
            specs += [RunSpec("train", (f"data={plan.triplets}", f"model={m}", f"probe={p}", f"seed={s}",
                                        *plan.train_overrides), f"aspect_opinion/{m}/probes/{p}/seed{s}")
                      for p in self.PROBES for s in plan.seeds]
        return specs

    def page(self, plan, got):
        heads, probes = [], []
        for rec in got.values():
            if rec.kind == "analysis":
                for direction in ("aspect->opinion", "opinion->aspect"):
                    for group, r in rec.summary[direction].items():
                        heads.append({"model": rec.model, "split": rec.split, "direction": direction,
                                      "sentiment": group, "pairs": r["pairs"], "best head": r["head"],
                                      "head acc": f"{100 * r['accuracy']:.1f}",
                                      "nearest span": f"{100 * r['nearest_span']:.1f}",
                                      "best offset": f"{100 * r['offset_accuracy']:.1f} ({r['offset']:+d})"})
        for m in plan.encoders:
            for p in self.PROBES:
                # by where the run went: an attention-free probe's record names no model
                runs = [r for s, r in got.items() if s.out.startswith(f"aspect_opinion/{m}/probes/{p}/")]
                capped = sum(r.converged is False for r in runs)
                probes.append({"model": m, "probe": p, "dev acc": tables.mean_std([r.metrics["val/acc"] for r in runs]),
                               "test acc": tables.mean_std([r.metrics["test/acc"] for r in runs]),
                               "best epoch / epochs run": ", ".join(f"{r.best_epoch}/{r.epochs_run}" for r in runs
                                                                    if r.best_epoch is not None),
                               "converged": "n/a" if all(r.converged is None for r in runs) else
                               ("yes" if not capped else f"**no** ({capped} of {len(runs)} at the epoch limit)")})
        return Page("Aspect → opinion heads on SemEval-2014 restaurant reviews",
                    "ASTE-Data-V2 triplets; rules in `probing/analysis/aspect_opinion.py`. Accuracy in %: a head is "
                    "right when the word it attends to most from the source span lies in the paired span. The "
                    "nearest-span baseline is given the gold spans.",
                    [Block("Heads", rows=heads),
                     Block("The same pairs as a probe task",
                           f"`train.py data=semeval14_triplets`: for each aspect span, predict a word of its opinion "
                           f"span(s); accuracy in %, {STD_NAME}, seeds {plan.seeds}, the default recipe.", probes)])


class Families(Stage):
    name, title = "families", "The paper's claims, model by model"

    def specs(self, plan):
        return (table3_specs(plan, "paper") + Analysis().specs(plan) + Quantities().specs(plan) + [plan.analyze(
            "analysis=families", f"models.names=[{','.join(plan.models)}]",
            f"analysis.quantities=[attention,{','.join(QUANTITIES)}]",
            f"analysis.probe_runs=[{plan.out / 'table3' / 'paper'},{plan.out / 'quantities'}]",
            f"analysis.runs_dir={plan.out / 'analysis'}",
            *(["analysis.tiny=true", "analysis.map_sentences=3", "analysis.explorer.num_sentences=3"] if plan.quick
              else []), out="families")])

    def page(self, plan, got):
        rec = got[self.specs(plan)[-1]]
        s = rec.summary
        figures = copy_figures(rec, plan.results, "families")
        return Page("Do the lessons generalise? Encoders and causal LMs side by side",
                    "EWT dev (coreference: GUM dev); the rule, threshold, control and seeds of each verdict stand in "
                    "its row (`probing/analysis/claims.py`).\n\n"
                    + "\n".join(f"- {m}: {r['caveat']}" for m, r in s["models"].items()),
                    [Block("The paper's claims", rows=s["claims"], readme=True),
                     Block("The same findings on each measure of context mixing", rows=s["by_quantity"]),
                     Block("Gu et al.'s sink metric beside their published shares", rows=s["sink_metric"]),
                     Block("Sink share per layer, raw and norm-weighted", rows=s["sinks"],
                           after="\n\n".join(figures)),
                     explorer_block(rec, s["explorer"], plan, "all_models")])


QUANTITIES = ("norm", "rollout", "alti")  # beside attention: norm-weighted, rolled out, ALTI
QUANTITY_JOBS = ("surface", "syntax_heads", "head_similarity")


class Quantities(Stage):
    """Issue 20: the paper's findings on other measures of context mixing than the weights, per
    model: the jobs on each quantity's maps (where the families job reads them) and the Attn probe."""

    name, title = "quantities", "Beyond attention weights: norm-weighted, rollout, ALTI"

    def specs(self, plan):
        specs = []
        for m in plan.models:
            for q in QUANTITIES:
                specs += [plan.analyze(f"analysis={job}", f"model={m}", f"extract.quantity={q}", *tiny(plan, job),
                                       out=f"analysis/{m}/{job}-{q}") for job in QUANTITY_JOBS]
                specs += [plan.train(*PAPER_RECIPE, f"model={m}", "probe=attn_only", f"seed={seed}",
                                     f"extract.quantity={q}", out=f"quantities/{m}/attn_only-{q}/seed{seed}")
                          for seed in plan.seeds if q in plan.quantity_probes]
        return specs + table3_specs(plan, "paper", probes=["attn_only"])

    def page(self, plan, got):
        jobs = {(s.out.split("/")[1], s.out.split("/")[2]): r for s, r in got.items() if s.config == "analyze"}
        probes = [r for r in got.values() if r.kind == "probe"]
        rows, changes = [], []
        for m in plan.models:
            base = {job: record.read(plan.out / "analysis" / m / job).summary for job in QUANTITY_JOBS
                    if (plan.out / "analysis" / m / job / "record.json").is_file()}
            for q in ("attention", *QUANTITIES):
                summaries = base if q == "attention" else {j: jobs[(m, f"{j}-{q}")].summary for j in QUANTITY_JOBS}
                if set(summaries) != set(QUANTITY_JOBS):
                    continue
                uas = tables.values([r for r in probes if r.quantity == q], "attn_only", m, "val/uas")
                rows.append(quantity_row(m, q, summaries, uas))
            changes += quantity_changes(m, rows)
        return Page("Beyond attention weights: norm-weighted attention, rollout and ALTI",
                    "Each measure's maps go through the same jobs as the attention weights (EWT dev). Rollout "
                    "(Abnar & Zuidema 2020) and ALTI (Ferrando et al. 2022) hold one map per layer: a job's best "
                    "\"head\" is then its best layer (`layer-1`), and the Attn probe weighs 2·L maps instead of "
                    f"2·L·H. The Attn probe: the paper's recipe, Table 3's seeds {plan.seeds} on attention "
                    f"and on {', '.join(plan.quantity_probes) or 'no extra quantity'} (`quantity_probes` of "
                    f"`conf/results.yaml`; — where not run); {STD_NAME}.",
                    [Block("The same findings on each measure", rows=rows),
                     Block("What changes when attention weights are replaced", after="\n".join(changes), readme=True)])


def quantity_changes(model: str, rows: list[dict]) -> list[str]:
    """One sentence per extra quantity of ``model``: how each finding moves from the weights."""
    mine = {r["quantity"]: r for r in rows if r["model"] == model}
    if "attention" not in mine:
        return []
    a = mine["attention"]
    return [f"- **{model}, {q}**: sink {a['largest sink share (layer)']} → {r['largest sink share (layer)']}; "
            f"Table 1 All {a['Table 1 All: best (acc) vs offset']} → {r['Table 1 All: best (acc) vs offset']}; "
            f"layer similarity {a['different/same-layer distance (p)']} → {r['different/same-layer distance (p)']}; "
            f"Attn {a['Attn dev UAS']} → {r['Attn dev UAS']}." for q, r in mine.items() if q != "attention"]


class Precision(Stage):
    """Issue 17: what bf16 changes, on every statistic of the paper and every model; the decision
    on the default follows the rule stated on the page."""

    name, title = "precision", "What bf16 changes"
    JOBS = ("surface", "syntax_heads", "coref_heads", "head_similarity")
    BF16 = ("extract.precision=bf16",)

    def specs(self, plan):
        specs = []
        for m in plan.models:
            specs.append(plan.analyze("analysis=precision_diff", f"model={m}", out=f"precision/{m}/maps"))
            for p in ("fp32", "bf16"):
                specs += [plan.analyze(f"analysis={job}", f"model={m}", f"extract.precision={p}", *tiny(plan, job),
                                       out=f"precision/{m}/{p}/{job}") for job in self.JOBS]
        attention = ["attn_only", "attn_plus_glove"]
        return (specs + table3_specs(plan, "paper", probes=attention)
                + table3_specs(plan, "paper", probes=attention, extra=self.BF16, where="precision/table3"))

    def page(self, plan, got):
        from probing.analysis import claims as cl

        maps, heads, verdicts, cells = [], [], [], []
        same_heads = same_verdicts = small_moves = True
        for m in plan.models:
            jobs = {(s.out.split("/")[2], s.out.split("/")[3]): r.summary for s, r in got.items()
                    if s.out.startswith(f"precision/{m}/") and s.out.count("/") == 3}
            d = next(r.summary for s, r in got.items() if s.out == f"precision/{m}/maps")
            maps.append({"model": m, "sentences": d["sentences"], "max abs ΔA": f"{d['max_abs_diff']:.4f}",
                         "mean abs ΔA": f"{d['mean_abs_diff']:.2e}", "rows whose argmax moves":
                         f"{100 * d['argmax_moved_share']:.2f}%"})
            f32, b16 = ({j: jobs[(p, j)] for j in self.JOBS} for p in ("fp32", "bf16"))
            for rel, a in f32["syntax_heads"]["rows"].items():
                b = b16["syntax_heads"]["rows"].get(rel, {})
                moved = a["head"] != b.get("head")
                same_heads &= not moved
                heads.append({"model": m, "Table 1 row": rel, "fp32": f"{a['head']} {a['accuracy']}",
                              "bf16": f"{b.get('head')} {b.get('accuracy')}", "same head": "yes" if not moved else "**no**"})
            c32, c16 = f32["coref_heads"], b16["coref_heads"]
            same_heads &= c32["best_head"] == c16["best_head"]
            heads.append({"model": m, "Table 1 row": "Table 2 (coreference)",
                          "fp32": f"{c32['best_head']} {100 * c32['best_accuracy']:.1f}",
                          "bf16": f"{c16['best_head']} {100 * c16['best_accuracy']:.1f}",
                          "same head": "yes" if c32["best_head"] == c16["best_head"] else "**no**"})
            real = {p: [r for s, r in got.items() if r.kind == "probe" and s.out.startswith(where)]
                    for p, where in (("fp32", "table3/paper/"), ("bf16", "precision/table3/"))}
            probes = {p: {pr: tables.values(real[p], pr, m, "val/uas") for pr in ("attn_only", "attn_plus_glove")}
                      for p in real}
            for claim in cl.CLAIMS:
                # the verdict's whole text: its numbers (sink shares, the similarity ratio, ...) move too
                t32 = claim.judge({**f32, "probes": probes["fp32"]})
                t16 = claim.judge({**b16, "probes": probes["bf16"]})
                v32, v16 = t32.split(":")[0], t16.split(":")[0]
                if cl.UNTESTED in (v32, v16):
                    continue
                same_verdicts &= v32 == v16
                verdicts.append({"model": m, "claim": claim.claim, "fp32": t32, "bf16": t16,
                                 "same verdict": "yes" if v32 == v16 else "**no**"})
            for pr in ("attn_only", "attn_plus_glove"):
                a, b = probes["fp32"][pr], probes["bf16"][pr]
                if not a or not b:
                    continue
                move, spread = 100 * abs(np.mean(a) - np.mean(b)), 100 * sample_std(a)
                small_moves &= move < spread
                cells.append({"model": m, "probe": TABLE3[pr][0], "fp32": mean_std(a), "bf16": mean_std(b),
                              "abs move": f"{move:.2f}", "fp32 seed std": f"{spread:.2f}",
                              "move < std": "yes" if move < spread else "**no**"})
        default = same_heads and same_verdicts and small_moves
        moved = [f"{h['model']} {h['Table 1 row']} {h['fp32']} → {h['bf16']}" for h in heads if h["same head"] != "yes"]
        changed = sum(v["same verdict"] != "yes" for v in verdicts)
        worst = max(cells, key=lambda c: float(c["abs move"]) / max(float(c["fp32 seed std"]), 1e-9), default=None)
        decision = (f"**Rule** (issue 17): bf16 becomes the default only if every best head (Table 1, Table 2) and every "
                    f"verdict is unchanged and every Table 3 cell moves less than its seed std. Here: "
                    f"{len(moved)} of {len(heads)} best heads moved{': ' + '; '.join(moved) if moved else ''}; "
                    f"{changed} of {len(verdicts)} verdicts changed; Table 3 cells "
                    f"{'all within' if small_moves else 'not all within'} their seed std"
                    + (f" (the largest move relative to its std: {worst['model']} {worst['probe']}, "
                       f"{worst['abs move']} points against {worst['fp32 seed std']})" if worst else "") + ". So "
                    + ("bf16 (`extract.precision=auto`) may be the default." if default else
                       "**fp32 stays the default**; bf16 is the option `extract.precision=bf16` (or `auto`)."))
        return Page("What bf16 changes", "Every bundled model's EWT dev maps, Table 1, Table 2, the similarity ratio, "
                    "the families verdicts and Table 3's attention probes (paper recipe, seeds "
                    f"{plan.seeds}), extracted in fp32 and in bf16 (`extract.precision=bf16`: the forward pass under "
                    f"`torch.autocast`, Linear weights in bf16, the maps stored as float16 either way). {STD_NAME}.",
                    [Block("Decision", decision, readme=True),
                     Block("The maps", rows=maps),
                     Block("Best heads", rows=heads),
                     Block("Verdicts (the families rules on these jobs)", rows=verdicts),
                     Block("Table 3 cells (dev UAS %)", rows=cells)])


class Benchmarks(Stage):
    name, title = "benchmarks", "Benchmarks"

    def run(self, plan, execute):
        if plan.quick:
            return {}  # they time the real models on EWT
        # they write benchmarks/results/ under their own provenance header
        execute.process("benchmarks", ["benchmarks/run_all.py", "--out-dir", str(ROOT / "benchmarks" / "results"),
                                       "--causal", *plan.causal], "benchmarks")
        return {}


STAGES: dict[str, Stage] = {s.name: s for s in (
    LrSweep(), Table3(), Recipes(), Definitions(), Analysis(), AspectOpinion(), Quantities(), Precision(), Families(),
    Benchmarks())}
# named sets of stages: "paper" is the whole paper for a model (Tables 1-3 with seeds, Table 2,
# the surface and similarity figures)
GROUPS = {"paper": ["table3", "analysis"]}
