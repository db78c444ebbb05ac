"""Regenerate every committed result from nothing, with one command.

    PROBING_DATA_DIR=../shared/data python -m probing.results            # all stages, hours on 2 CPU cores
    python -m probing.results --only table3 analysis                      # some stages (others left as they are)
    python -m probing.results --quick                                     # every stage on the tiny data (a test runs it)

Each stage runs the project's own entry points as a user would (``train.py -m ...``,
``analyze.py ...``, ``benchmarks/run_all.py``) into ``outputs/results/<stage>/``, then reads what
they wrote and writes ``results/<stage>.md`` under a header naming the command, date, device,
commit and package versions (:mod:`probing.provenance`). The paper's numbers come from
:mod:`probing.analysis.paper`. The "Results so far" block of README.md is rewritten from the same
files. ``--quick`` writes into ``outputs/results-quick/`` and never touches ``results/`` or README.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from probing import provenance
from probing.analysis import paper
from probing.writer import to_markdown

log = logging.getLogger("probing.results")

ROOT = Path(__file__).resolve().parents[1]
PROBES = ["right_branching", "distances_plus_glove", "random_init_attn_plus_glove", "attn_only", "attn_plus_glove"]
# the order they run in: the random-init row last, since its encoders' caches take longest to extract
RUN_ORDER = ["right_branching", "distances_plus_glove", "attn_only", "attn_plus_glove", "random_init_attn_plus_glove"]
PROBE_NAMES = {"right_branching": "right-branching", "distances_plus_glove": "Distances + GloVe",
               "random_init_attn_plus_glove": "random-init Attn + GloVe", "attn_only": "Attn",
               "attn_plus_glove": "Attn + GloVe", "nearest_opinion": "nearest opinion (baseline)"}
ATTN_PROBES = ["attn_only", "attn_plus_glove"]
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass
class Plan:
    """What a run covers. The full plan is the committed one; ``quick`` shrinks every axis."""

    quick: bool
    out: Path
    results: Path
    encoders: list[str] = field(default_factory=lambda: ["mpnet_base", "minilm_l6"])
    causal: list[str] = field(default_factory=lambda: ["smollm2_135m", "gemma3_270m"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    recipe_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # the default recipe's Table 3
    causal_seeds: int = 3  # how many of those seeds the causal LMs run (their probes are the slowest)
    resume: bool = False  # keep the Table 3 runs that finished (a stopped run goes on)
    recipe_causal: bool = True  # the default recipe's Table 3 on the causal LMs too
    recipe_probes: list[str] | None = None  # its rows (None: every row)
    # the encoders of the random-init row (None: all); each seed extracts EWT train with a new encoder
    random_init_models: list[str] | None = None
    argv: list[str] = field(default_factory=list)  # this invocation's arguments, for the provenance header
    data: list[str] = field(default_factory=list)  # overrides for EWT runs (none: the default data)
    triplets: str = "semeval14_triplets"
    restaurants: str = "semeval14_restaurants"
    extra_train: list[str] = field(default_factory=list)
    lr_trials: int = 6
    launcher: list[str] = field(default_factory=list)  # the Table 3 sweeps' launcher (--jobs)

    @classmethod
    def make(cls, quick: bool, out: Path | None = None) -> Plan:
        if not quick:
            return cls(False, out or ROOT / "outputs" / "results", ROOT / "results")
        out = out or ROOT / "outputs" / "results-quick"
        # one epoch on the 14-sentence treebank, the tiny models, one seed
        return cls(True, out, out / "results", encoders=["tiny_random"], causal=["tiny_llama"], seeds=[0], recipe_seeds=[0],
                   data=["data=tiny"], triplets="tiny_triplets", restaurants="tiny",
                   extra_train=["trainer.max_epochs=1"], lr_trials=2)

    def some(self, variants: dict) -> dict:
        """Every variant; in quick mode the default and one alternative (each is a process start)."""
        return dict(list(variants.items())[:2]) if self.quick else variants

    def analyze(self, job: str) -> list[str]:
        """Overrides for ``analyze.py analysis=<job>``: in quick mode, the job's own tiny-data ones."""
        if not self.quick:
            return []
        from probing.analysis.base import job_classes

        return list(job_classes()[job].tiny_overrides)


class Runner:
    """Runs commands, logging each to ``<out>/logs/``, and fails loudly with the log's tail."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                    "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "PYTHONUNBUFFERED": "1"}
        (plan.out / "logs").mkdir(parents=True, exist_ok=True)
        self.commands: list[str] = []

    def __call__(self, name: str, args: list[str]) -> None:
        cmd = [sys.executable, *args]
        shown = " ".join(shlex.quote(a) for a in ["python", *args])
        self.commands.append(shown)
        path = self.plan.out / "logs" / f"{name}.log"
        log.info("running %s (log: %s)", shown, path)
        start = time.perf_counter()
        with open(path, "w") as f:
            done = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT)
        log.info("%s: %.0f s", name, time.perf_counter() - start)
        if done.returncode:
            tail = "".join(path.read_text().splitlines(keepends=True)[-40:])
            raise RuntimeError(f"{shown} failed (exit {done.returncode}); the end of {path}:\n{tail}")


def write(plan: Plan, name: str, body: str) -> Path:
    """``results/<name>.md`` under the provenance header of this invocation."""
    plan.results.mkdir(parents=True, exist_ok=True)
    argv = " ".join(shlex.quote(a) for a in plan.argv)
    rec = provenance.record(f"python -m probing.results {argv}".strip())
    path = plan.results / f"{name}.md"
    path.write_text(provenance.header(rec) + "\n" + body.rstrip() + "\n")
    log.info("wrote %s", path)
    return path


def shown(path: Path) -> str:
    """``path`` relative to the project when it lies inside it (as it does in committed results)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = 100 * np.asarray(values)
    return f"{v.mean():.1f} ± {v.std():.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def collect_runs(root: Path) -> list[dict]:
    """Every finished train.py run's metrics.json under ``root``."""
    return [json.loads(p.read_text()) for p in sorted(root.rglob("metrics.json"))]


# --- stages ------------------------------------------------------------------------------------


def stage_lr_sweep(plan: Plan, run: Runner) -> None:
    """The recorded Optuna sweep behind the default recipe's learning rate (issue 10 §2)."""
    model = plan.encoders[-1]
    sweep = plan.out / "lr_sweep"
    shutil.rmtree(sweep, ignore_errors=True)
    run("lr_sweep", ["train.py", "-m", "hparams_search=lr", f"model={model}", "probe=attn_plus_glove", "~logger",
                     *plan.data, *plan.extra_train, f"hydra.sweeper.n_trials={plan.lr_trials}",
                     f"hydra.sweep.dir={sweep}"])
    rows = []
    for path in sorted(sweep.rglob("metrics.json")):
        rec = json.loads(path.read_text())
        rows.append({"trial": path.parent.name, "lr": f"{rec['lr']:.2e}", "val UAS": f"{100 * rec['val/uas']:.2f}",
                     "best epoch": rec.get("best_epoch"), "epochs run": rec.get("epochs_run")})
    rows.sort(key=lambda r: float(r["lr"]))
    best = (sweep / "optimization_results.yaml").read_text() if (sweep / "optimization_results.yaml").exists() else ""
    body = (f"# Learning-rate sweep for the default recipe\n\nOptuna (TPE, {plan.lr_trials} trials) over the "
            f"learning rate of `probe=attn_plus_glove` on `{model}`, maximising dev UAS; every other setting is "
            f"the default recipe (`conf/hparams_search/lr.yaml`). The default in `conf/probe/base/module.yaml` "
            f"is set from this sweep.\n\n{to_markdown(rows)}\n\nOptuna's summary:\n\n```yaml\n{best.strip()}\n```\n")
    write(plan, "lr_sweep", body)


def _table3_runs(plan: Plan, run: Runner, recipe: str, seeds: list[int], probes: list[str] | None = None,
                 written: Callable[[dict[str, list[dict]]], None] | None = None, causal: list[str] | None = None,
                 resume: bool | None = None) -> dict[str, list[dict]]:
    """Every Table 3 row x seed with one recipe, per model; returns {model: runs}. ``causal`` and
    ``resume`` default to the plan's.

    One sweep per (model, probe) into ``table3/<recipe>/<model>/<probe>/seed<N>/``; with
    ``--resume`` the seeds that finished are read, not run again. The sweeps run row by row over
    the models, the random-init row last (its encoders' caches take longest to extract), and
    ``written`` gets the runs so far after each, so that a stopped run leaves its table behind.
    """
    wanted = probes or RUN_ORDER
    experiment = ["experiment=clark19_table3"] if recipe == "paper" else []
    models = plan.encoders + (plan.causal if causal is None else causal)
    resume = plan.resume if resume is None else resume
    for probe in wanted:
        for model in models:
            if model not in plan.encoders and probe not in ATTN_PROBES:
                continue  # the causal LMs run the attention probes only
            if probe == "random_init_attn_plus_glove" and plan.random_init_models is not None \
                    and model not in plan.random_init_models:
                continue
            model_seeds = seeds if model in plan.encoders else seeds[: plan.causal_seeds]
            where = plan.out / "table3" / recipe / model / probe
            done = {r["seed"] for r in collect_runs(where)} if resume else set()
            todo = [s for s in model_seeds if s not in done]
            if not todo:
                log.info("table3: %s %s %s finished already (--resume)", recipe, model, probe)
                continue
            if not resume:
                shutil.rmtree(where, ignore_errors=True)
            for seed in todo:  # a stopped seed's partial run directory
                shutil.rmtree(where / f"seed{seed}", ignore_errors=True)
            run(f"table3-{recipe}-{model}-{probe}", [
                "train.py", "-m", *experiment, f"model={model}", f"probe={probe}",
                f"seed={','.join(map(str, todo))}", "~logger", *plan.data,
                *(plan.extra_train if recipe == "default" else []), *plan.launcher, f"hydra.sweep.dir={where}",
                "hydra.sweep.subdir=seed${seed}"])
            if written is not None:
                written({m: collect_runs(plan.out / "table3" / recipe / m) for m in models})
    return {m: collect_runs(plan.out / "table3" / recipe / m) for m in models}


def _by_probe(runs: list[dict], split: str, metric: str = "uas") -> dict[str, list[float]]:
    """{probe config: [``<split>/<metric>`` of each run]} over the runs that report it."""
    out: dict[str, list[float]] = {}
    for r in runs:
        if f"{split}/{metric}" in r:
            out.setdefault(r["probe_config"], []).append(r[f"{split}/{metric}"])
    return out


def ordering_findings(model: str, dev: dict[str, list[float]]) -> list[str]:
    """Every pair of Table 3 rows whose order here differs from (or matches) the paper's."""
    lines = []
    have = [p for p in PROBES if p in dev]
    for i, a in enumerate(have):
        for b in have[i + 1:]:
            pa, pb = paper.TABLE3[a], paper.TABLE3[b]
            ma, mb = 100 * np.mean(dev[a]), 100 * np.mean(dev[b])
            if (pa > pb) != (ma > mb):
                lines.append(f"- **Does not replicate** ({model}): {PROBE_NAMES[a]} {ma:.1f} vs {PROBE_NAMES[b]} "
                             f"{mb:.1f}, where the paper had {pa} vs {pb}.")
    return lines


def _table3_rows(plan: Plan, got: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for probe in PROBES:
        row = {"probe": PROBE_NAMES[probe], "paper (WSJ-SD dev)": paper.TABLE3[probe]}
        for model in plan.encoders + plan.causal:
            for split in ("dev", "test"):
                vals = _by_probe(got.get(model, []), "val" if split == "dev" else "test").get(probe, [])
                row[f"{model} {split}"] = mean_std(vals) if vals else "—"
        rows.append(row)
    return rows


T3_INTRO = ("Dev is UD EWT dev and test UD EWT test; the paper's column is WSJ-SD **dev**, so compare it with our "
            "dev columns. UAS in %, punctuation excluded, mean ± std over seeds; — where a row was not run for that "
            "model (the causal LMs run the attention probes only; the command above may narrow the rest). Models: sentence-embedding encoders and causal "
            "LMs, not the paper's BERT-base (each model's caveat is in `conf/model/`); GloVe is 50-d, the paper's "
            "300-d.")


def stage_table3(plan: Plan, run: Runner) -> None:
    """Table 3 with the paper's recipe, every row x seed on each model: the paper comparison."""

    def table(got: dict[str, list[dict]]) -> None:
        findings = [line for model in got for line in ordering_findings(model, _by_probe(got[model], "val"))]
        body = (f"# Table 3: attention-based probing classifiers (the paper's recipe)\n\n{T3_INTRO} Recipe: "
                f"`experiment=clark19_table3` (Adam, lr 0.002, 1 epoch, one sentence per batch), seeds {plan.seeds} "
                f"(the causal LMs: the first {plan.causal_seeds}); the random-init row draws a new random encoder "
                f"per seed. Each cell is over the seeds that ran (a single number: one seed).\n\n"
                f"{to_markdown(_table3_rows(plan, got))}\n\n## Orderings that differ from the paper's (dev)\n\n"
                + ("\n".join(findings) or "None.") + "\n")
        write(plan, "table3", body)

    table(_table3_runs(plan, run, "paper", plan.seeds, written=table))


def default_recipe() -> tuple[str, int]:
    """The default recipe in words, read from the composed ``train`` config (not restated here),
    and its epoch limit."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train")
    return (f"`python train.py` (Adam at lr {cfg.probe.optimizer.lr} from the sweep of `results/lr_sweep.md`, "
            f"batches of {cfg.datamodule.batch_size} sentences, early stopping on dev UAS with patience "
            f"{cfg.callbacks.early_stopping.patience}, at most {cfg.trainer.max_epochs} epochs, the best epoch's "
            f"checkpoint)"), int(cfg.trainer.max_epochs)


def stage_recipes(plan: Plan, run: Runner) -> None:
    """Table 3 with the default recipe (early stopping, the swept learning rate), set against the
    paper recipe's runs of the same rows, models and seeds: those the ``table3`` stage left in
    ``--out`` are read, the missing ones are run (without rewriting ``results/table3.md``)."""
    causal = plan.causal if plan.recipe_causal else []
    _table3_runs(plan, run, "paper", plan.seeds, plan.recipe_probes, causal=causal, resume=True)
    got = _table3_runs(plan, run, "default", plan.recipe_seeds, plan.recipe_probes, causal=causal)
    recipe, max_epochs = default_recipe()
    rows, capped = [], []
    for model in got:
        paper_dev = _by_probe(collect_runs(plan.out / "table3" / "paper" / model), "val")
        default_dev = _by_probe(got[model], "val")
        epochs: dict[str, list] = {}
        for r in got[model]:
            if r.get("best_epoch") is None:
                continue  # nothing trained (right-branching)
            limit = r.get("max_epochs", max_epochs)
            epochs.setdefault(r["probe_config"], []).append(f"{r['best_epoch']}/{r['epochs_run']}")
            if r["epochs_run"] >= limit:
                capped.append(f"{model} {PROBE_NAMES[r['probe_config']]} seed {r['seed']} "
                              f"(best epoch {r['best_epoch']} of {limit})")
        for probe in PROBES:
            if probe not in default_dev:
                continue
            d = 100 * np.mean(default_dev[probe])
            p = 100 * np.mean(paper_dev[probe]) if probe in paper_dev else None
            rows.append({"model": model, "probe": PROBE_NAMES[probe],
                         "paper recipe dev": f"{p:.1f}" if p is not None else "not run",
                         "default dev": f"{d:.1f}", "default − paper": f"{d - p:+.1f}" if p is not None else "",
                         "default ≥ paper": ("yes" if d >= p - 0.05 else "**no**") if p is not None else "",
                         "best epoch / epochs run": ", ".join(epochs.get(probe, []))})
    findings = [line for model in got for line in ordering_findings(model, _by_probe(got[model], "val"))]
    stopped = ("Every trained run was ended by early stopping." if not capped else
               "**Not converged**: these runs reached the epoch limit before early stopping ended them, so their "
               "numbers are lower bounds of what the recipe reaches: " + "; ".join(capped) + ".")
    body = (f"# Table 3 with the default recipe\n\n{T3_INTRO} Recipe: {recipe}, seeds "
            f"{plan.recipe_seeds}.\n\n{to_markdown(_table3_rows(plan, got))}\n\n"
            "## Does the default recipe match the paper's?\n\nDev UAS, mean over seeds; the paper recipe "
            f"(`experiment=clark19_table3`) on the same rows and models, seeds {plan.seeds}. Epochs are 0-based "
            f"(the best checkpoint's) and counted (epochs run), one per seed.\n\n{to_markdown(rows)}\n\n{stopped}\n\n"
            "## Orderings that differ from the paper's (dev, default recipe)\n\n" + ("\n".join(findings) or "None.") + "\n")
    write(plan, "table3_default", body)


def stage_definitions(plan: Plan, run: Runner) -> None:
    """The measured effect of every definitional choice: the released code's (default) vs ours before."""
    table1: dict[tuple[str, str], dict] = {}
    for model in plan.encoders:
        base = plan.out / "definitions" / model
        shutil.rmtree(base, ignore_errors=True)
        variants = {"released (default)": [], "head_dep_rule=head_row": ["analysis.head_dep_rule=head_row"],
                    "label_level=base": ["analysis.label_level=base"],
                    "offsets -3..2, clipped (released baseline)": ["analysis.offsets=[-3,-2,-1,0,1,2]",
                                                                   "analysis.offset_clip=true"],
                    "before issue 10 (head_row, base)": ["analysis.head_dep_rule=head_row",
                                                         "analysis.label_level=base"]}
        for i, (name, over) in enumerate(plan.some(variants).items()):
            out = base / f"syntax{i}"
            run(f"definitions-{model}-syntax{i}", ["analyze.py", "analysis=syntax_heads", f"model={model}", "~logger",
                                                   *plan.data, *plan.analyze("syntax_heads"), *over,
                                                   f"hydra.run.dir={out}"])
            summary = json.loads((out / "summary.json").read_text())
            for rel, r in summary["rows"].items():
                # one row per (model, relation), one column per definition: the effect reads across
                row = table1.setdefault((model, rel), {"model": model, "relation": rel})
                row[name] = (f"{r['accuracy']} ({r['head']} {r['direction']}; base {r['baseline_accuracy']} "
                             f"{r['baseline_offset']:+d}; n={r['count']})")
    t1 = to_markdown(list(table1.values()))
    probe_rows = []
    before = ["probe.net.root=start_end", "probe.mask_self=true", "probe.net.init=pytorch", "probe.loss=query_mean"]
    every = "all four (before issue 10)"
    # the ROOT form alone on Attn, where it matters most; all the probe options together on every probe
    toggles = {"attn_only": {"root=start_end": [before[0]], every: before},
               "attn_plus_glove": {every: before},
               "distances_plus_glove": {"before issue 10 (clipped features, relu, pytorch init, masked self, query "
                                        "mean)": ["probe.net.features=clipped", "probe.net.activation=relu",
                                                  *before[1:]]}}
    seed = plan.seeds[0]  # one seed: the seed-to-seed spread is in table3.md
    for model in plan.encoders:
        for probe, options in toggles.items():
            # the released definitions are the defaults: the table3 stage's run of this seed, when there
            released = [r for r in collect_runs(plan.out / "table3" / "paper" / model / probe) if r["seed"] == seed]
            variants = {"released (default)": None if released else [], **options}
            for i, (name, over) in enumerate(plan.some(variants).items()):
                if over is None:
                    runs = released
                else:
                    where = plan.out / "definitions" / model / f"{probe}{i}"
                    shutil.rmtree(where, ignore_errors=True)
                    run(f"definitions-{model}-{probe}{i}", [
                        "train.py", "-m", "experiment=clark19_table3", f"model={model}", f"probe={probe}",
                        f"seed={seed}", "~logger", *plan.data, *over, f"hydra.sweep.dir={where}"])
                    runs = collect_runs(where)
                dev = _by_probe(runs, "val").get(probe, [])
                probe_rows.append({"model": model, "probe": PROBE_NAMES[probe], "definition": name,
                                   "dev UAS": mean_std(dev)})
    body = ("# What each definitional choice changes\n\nDefaults follow the released code "
            "(clarkkev/attention-analysis); each earlier or alternative definition is an option, measured here on "
            f"EWT dev.\n\n## Table 1 (`analysis=syntax_heads`)\n\nAccuracy and baseline in %.\n\n{t1}\n\n"
            f"## Probes (paper recipe, seed {plan.seeds[0]}, dev UAS %)\n\nThe released rows are the `table3` "
            f"stage's runs where it ran first.\n\n{to_markdown(probe_rows)}\n")
    write(plan, "definitions", body)


def _report_md(out: Path, results_dir: Path, model: str) -> str:
    """The report's markdown with its figure links pointing at copies under ``results/figures/``."""
    md = (out / "report.md").read_text()
    figures = results_dir / "figures" / model
    shutil.rmtree(figures, ignore_errors=True)

    def copy(match: re.Match) -> str:
        src = out / match.group(2)
        dst = figures / match.group(2).replace("/", "_")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".png", ".svg", ".pdf"):
            if src.with_suffix(suffix).is_file():
                shutil.copyfile(src.with_suffix(suffix), dst.with_suffix(suffix))
        return f"![{match.group(1)}]({dst.relative_to(results_dir)})"

    return re.sub(r"!\[([^]]*)\]\(([^)]+)\)", copy, md)


def stage_analysis(plan: Plan, run: Runner) -> None:
    """Every analysis job on each model: EWT dev, GUM dev for coreference, the restaurants for the
    surface statistics and the attention view."""
    for model in plan.encoders + plan.causal:
        base = plan.out / "analysis" / model
        shutil.rmtree(base, ignore_errors=True)
        run(f"analysis-{model}-report", ["analyze.py", "analysis=report", f"model={model}", "~logger", *plan.data,
                                         *plan.analyze("report"), f"hydra.run.dir={base / 'report'}"])
        split = "train" if not plan.quick else "dev"
        run(f"analysis-{model}-restaurants", [
            "analyze.py", "analysis=surface", f"model={model}", f"data={plan.restaurants}", f"split={split}", "~logger",
            f"hydra.run.dir={base / 'restaurants'}"])
        run(f"analysis-{model}-view", ["analyze.py", "analysis=attention_view", f"model={model}", "~logger",
                                       f"data={plan.restaurants}", f"hydra.run.dir={base / 'view'}"])
        restaurants = (base / "restaurants" / "surface_layers.md").read_text()
        body = (_report_md(base / "report", plan.results, model)
                + f"\n\n## Surface statistics on the SemEval-2014 restaurant reviews ({split})\n\n{restaurants}\n"
                + f"\nThe attention view of the talk's sentence is `{shown(base / 'view' / 'attention_view.html')}`"
                  " (not committed: run the command).\n")
        write(plan, f"analysis_{model}", body)


def stage_aspect_opinion(plan: Plan, run: Runner) -> None:
    rows, probe_rows = [], []
    seeds = ",".join(map(str, plan.seeds))
    for model in plan.encoders:
        for split in ("dev", "test"):
            out = plan.out / "aspect_opinion" / model / split
            shutil.rmtree(out, ignore_errors=True)
            run(f"aspect_opinion-{model}-{split}", ["analyze.py", "analysis=aspect_opinion", f"model={model}",
                                                    f"data={plan.triplets}", f"split={split}", "~logger",
                                                    f"hydra.run.dir={out}"])
            summary = json.loads((out / "summary.json").read_text())
            for direction in ("aspect->opinion", "opinion->aspect"):
                for group, r in summary[direction].items():
                    rows.append({"model": model, "split": split, "direction": direction, "sentiment": group,
                                 "pairs": r["pairs"], "best head": r["head"], "head acc": f"{100 * r['accuracy']:.1f}",
                                 "nearest span": f"{100 * r['nearest_span']:.1f}",
                                 "best offset": f"{100 * r['offset_accuracy']:.1f} ({r['offset']:+d})"})
        where = plan.out / "aspect_opinion" / model / "probes"
        shutil.rmtree(where, ignore_errors=True)
        run(f"aspect_opinion-{model}-probes", ["train.py", "-m", f"data={plan.triplets}", f"model={model}",
                                               "probe=nearest_opinion,attn_only,attn_plus_glove", f"seed={seeds}",
                                               "~logger", *plan.extra_train, f"hydra.sweep.dir={where}"])
        runs = collect_runs(where)
        test = _by_probe(runs, "test", "acc")
        for probe, dev in _by_probe(runs, "val", "acc").items():
            probe_rows.append({"model": model, "probe": PROBE_NAMES.get(probe, probe),
                               "dev acc": mean_std(dev), "test acc": mean_std(test.get(probe, []))})
    body = ("# Aspect → opinion heads on SemEval-2014 restaurant reviews\n\nASTE-Data-V2 triplets; rules in "
            "`probing/analysis/aspect_opinion.py`. Accuracy in %: a head is right when the word it attends to most "
            "from the source span lies in the paired span. The nearest-span baseline is given the gold spans.\n\n"
            + to_markdown(rows) + "\n\n## The same pairs as a probe task\n\n`train.py data=semeval14_triplets`: "
            "for each aspect span, predict a word of its opinion span(s); accuracy in %, mean ± std over seeds "
            f"{plan.seeds}.\n\n" + to_markdown(probe_rows) + "\n")
    write(plan, "aspect_opinion", body)


def stage_families(plan: Plan, run: Runner) -> None:
    out = plan.out / "families"
    shutil.rmtree(out, ignore_errors=True)
    models = plan.encoders + plan.causal
    extra = ["analysis.tiny=true", "analysis.map_sentences=3"] if plan.quick else []
    # reuse the analysis stage's per-model reports where they exist (same jobs, same settings)
    reports = plan.out / "analysis" / "{model}" / "report"
    run("families", ["analyze.py", "analysis=families", f"analysis.models=[{','.join(models)}]",
                     f"analysis.probe_runs={plan.out / 'table3' / 'paper'}", f"analysis.reports='{reports}'", "~logger",
                     *plan.data, *extra, f"hydra.run.dir={out}"])
    claims = (out / "claims.md").read_text()
    sinks = (out / "sink_by_layer.md").read_text()
    figures = plan.results / "figures" / "families"
    figures.mkdir(parents=True, exist_ok=True)
    for stem in ("sink_by_depth", "heads_of_all_families"):
        for suffix in (".png", ".svg", ".pdf"):
            if (out / f"{stem}{suffix}").is_file():
                shutil.copyfile(out / f"{stem}{suffix}", figures / f"{stem}{suffix}")
    caveats = "\n".join(f"- {m}: {r['caveat']}" for m, r in
                        json.loads((out / "summary.json").read_text())["models"].items())
    body = (f"# Do the lessons generalise? Encoders and causal LMs side by side\n\nEWT dev (coreference: GUM dev); "
            f"rules of each verdict in `probing/analysis/families.py`.\n\n{caveats}\n\n## The paper's claims\n\n"
            f"{claims}\n\n## Sink share per layer, raw and norm-weighted\n\n{sinks}\n\n"
            f"![sink share by depth](figures/families/sink_by_depth.png)\n\n"
            f"![heads of all families](figures/families/heads_of_all_families.png)\n")
    write(plan, "families", body)


def stage_benchmarks(plan: Plan, run: Runner) -> None:
    if plan.quick:
        log.info("benchmarks: skipped in --quick (they time the real models on EWT)")
        return
    run("benchmarks", ["benchmarks/run_all.py", "--out-dir", str(ROOT / "benchmarks" / "results"),
                       "--causal", *plan.causal])


STAGES: dict[str, Callable[[Plan, Runner], None]] = {
    "lr_sweep": stage_lr_sweep,
    "table3": stage_table3,
    "recipes": stage_recipes,  # after table3 and lr_sweep: it compares with the paper recipe's runs
    "definitions": stage_definitions,
    "analysis": stage_analysis,
    "aspect_opinion": stage_aspect_opinion,
    "families": stage_families,  # after table3: it reads the probe runs
    "benchmarks": stage_benchmarks,
}


def _first_table(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return ""
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def _section(text: str, heading: str) -> str:
    """The body of the Markdown section that opens with ``heading`` (up to the next ``## ``)."""
    start = text.find(heading)
    if start < 0:
        return ""
    body = text[start:].split("\n", 1)[1]
    return body.split("\n## ", 1)[0].strip()


def readme_block(plan: Plan) -> str:
    """The README's "Results so far": Table 3, the claims table and every ordering that does not
    replicate, from the results files (each file names the command that wrote it)."""
    parts = ["Written by `python -m probing.results` from the files in `results/` (do not edit by hand); each "
             "file opens with the command, date, device and commit behind it."]
    for name, title in (("table3", "Table 3, the paper's recipe"), ("table3_default", "Table 3, the default recipe"),
                        ("definitions", "What each definitional choice changes"),
                        ("families", "The paper's claims, model by model"),
                        ("aspect_opinion", "Aspect → opinion heads"), ("lr_sweep", "The learning-rate sweep")):
        if (plan.results / f"{name}.md").is_file():
            parts.append(f"- **{title}**: [`results/{name}.md`](results/{name}.md)")
    for model in plan.encoders + plan.causal:
        if (plan.results / f"analysis_{model}.md").is_file():
            parts.append(f"- **Every analysis job on `{model}`**: [`results/analysis_{model}.md`]"
                         f"(results/analysis_{model}.md)")
    t3 = plan.results / "table3.md"
    if t3.is_file():
        text = t3.read_text()
        parts.append("\n**Table 3** (UAS %, EWT dev and test; the paper's column is WSJ dev: compare it with our dev "
                     "columns):\n\n" + _first_table(text))
        orderings = _section(text, "## Orderings that differ")
        if orderings:
            parts.append("\n**Orderings of Table 3 that do not replicate** (dev):\n\n" + orderings)
    t3d = plan.results / "table3_default.md"
    if t3d.is_file():
        text = t3d.read_text()
        start = text.find("## Does the default recipe match")
        if start >= 0:
            parts.append("\n**The default recipe against the paper's** (dev UAS %):\n\n" + _first_table(text[start:]))
        orderings = _section(text, "## Orderings that differ")
        if orderings:
            parts.append("\n**Orderings of Table 3 that do not replicate with the default recipe** (dev):\n\n"
                         + orderings)
    # from the committed page, not from outputs/: a run of other stages keeps this part of README
    families = plan.results / "families.md"
    claims = _section(families.read_text(), "## The paper's claims") if families.is_file() else ""
    if claims:
        parts.append("\n**The paper's claims on each model** (EWT dev; every \"does not hold\" is a finding that does "
                     "not replicate here):\n\n" + claims)
    return "\n".join(parts)


def update_readme(plan: Plan) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        log.warning("README.md has no %s ... %s block; not updated", README_BEGIN, README_END)
        return
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{readme_block(plan)}\n{README_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every stage on the tiny data, into outputs/results-quick")
    parser.add_argument("--only", nargs="+", choices=list(STAGES), help="run these stages (default: all)")
    parser.add_argument("--out", type=Path, help="where the runs go (default outputs/results[-quick])")
    parser.add_argument("--resume", action="store_true", help="keep the Table 3 runs that finished")
    parser.add_argument("--causal-seeds", type=int, help="the causal LMs run only the first N seeds")
    parser.add_argument("--recipe-encoders-only", action="store_true",
                        help="the default recipe's Table 3 on the encoders only")
    parser.add_argument("--recipe-probes", nargs="+", choices=PROBES, help="the default recipe's rows (default all)")
    parser.add_argument("--random-init-models", nargs="+", help="the random-init row on these encoders only")
    parser.add_argument("--recipe-seeds", type=int, nargs="+", help="seeds of the default recipe's Table 3 "
                        "(default 0 1 2, as the paper recipe's)")
    parser.add_argument("--jobs", type=int, default=1, help="run a Table 3 sweep's seeds in N processes at once "
                        "(hydra/launcher=local, one torch thread each)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    plan = Plan.make(args.quick, args.out)
    plan.argv = argv
    if args.recipe_seeds:
        plan.recipe_seeds = args.recipe_seeds
    if args.causal_seeds:
        plan.causal_seeds = args.causal_seeds
    plan.resume = args.resume
    plan.recipe_causal = not args.recipe_encoders_only
    plan.recipe_probes = args.recipe_probes
    plan.random_init_models = args.random_init_models
    if args.jobs > 1:
        plan.launcher = ["hydra/launcher=local", f"hydra.launcher.n_jobs={args.jobs}", "threads=1"]
    if not plan.quick and not os.environ.get("PROBING_DATA_DIR"):
        parser.error("set PROBING_DATA_DIR to the corpora (../shared/data here), or use --quick")
    if plan.quick:
        shutil.rmtree(plan.out, ignore_errors=True)
    run = Runner(plan)
    for name in args.only or list(STAGES):
        log.info("stage %s", name)
        STAGES[name](plan, run)
    if not plan.quick:
        update_readme(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
