"""What a results run covers (models, seeds, data), read from ``conf/results.yaml``, and how its
runs are declared (:class:`RunSpec`) and carried out (:class:`Executor`)."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from probing import PACKAGE_DIR, runner
from probing.record import RunRecord, collect

log = logging.getLogger("probing.results")

ROOT = PACKAGE_DIR.parent
# every run of the results command: no progress bars in a log of hundreds of runs
QUIET = {"train": ["~logger", "++trainer.enable_progress_bar=false"],
         "analyze": ["~logger"], "extract": []}


@dataclass(frozen=True)
class RunSpec:
    """One run a stage needs: ``python <config>.py <overrides>`` into ``<plan.out>/<out>``."""

    config: str
    overrides: tuple[str, ...]
    out: str

    @property
    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in ["python", f"{self.config}.py", *self.overrides])


@dataclass
class Plan:
    """A results run: ``conf/results.yaml`` (or ``results_quick.yaml``) plus the command line."""

    quick: bool
    out: Path  # where the runs go
    results: Path  # where the pages go
    models: list[str]
    seeds: list[int]
    data: list[str]
    triplets: str
    restaurants: str
    restaurants_split: str
    train_overrides: list[str]
    lr_trials: int
    quantity_probes: list[str]
    jobs: int = 1  # runs at once (each with one torch thread)
    overrides: list[str] = field(default_factory=list)  # added to every run (--override extract.precision=bf16)
    reuse: str = "same_commit"  # see runner.reusable; --resume: "config"
    argv: list[str] = field(default_factory=list)
    families: dict[str, str] = field(default_factory=dict)  # model -> "encoder" | "causal_lm"

    @classmethod
    def load(cls, quick: bool, out: Path | None = None, results: Path | None = None,
             models: list[str] | None = None, settings: list[str] = (), **extra) -> Plan:
        name = "results_quick" if quick else "results"
        out = Path(out or ROOT / "outputs" / ("results-quick" if quick else "results"))
        cfg, _ = runner.compose(name, list(settings), out)
        values = OmegaConf.to_container(cfg, resolve=False)
        chosen = list(models or cfg.models.names)
        unknown = sorted(set(chosen) - set(cfg.models.names)) if not quick else []
        if unknown:
            log.warning("--models %s: not among the bundled models %s", unknown, list(cfg.models.names))
        plan = cls(quick=quick, out=out, results=Path(results or (out / "results" if quick else ROOT / "results")),
                   models=chosen, **{k: values[k] for k in ("seeds", "data", "triplets", "restaurants",
                                                            "restaurants_split", "train_overrides", "lr_trials",
                                                            "quantity_probes")},
                   **extra)
        for m in chosen:  # declared by each model's own config (a spec is cheap: nothing is loaded)
            model_cfg, _ = runner.compose("analyze", [f"model={m}"], out)
            plan.families[m] = instantiate(model_cfg.model).family
        return plan

    @property
    def encoders(self) -> list[str]:
        return [m for m in self.models if self.families[m] == "encoder"]

    @property
    def causal(self) -> list[str]:
        return [m for m in self.models if self.families[m] == "causal_lm"]

    def train(self, *overrides: str, out: str) -> RunSpec:
        return RunSpec("train", (*self.data, *overrides, *self.train_overrides), out)

    def analyze(self, *overrides: str, out: str, data: bool = True) -> RunSpec:
        return RunSpec("analyze", (*(self.data if data else ()), *overrides), out)


class Executor:
    """Runs specs through :mod:`probing.runner` in this process (or ``jobs`` processes at once),
    reading a finished run the plan's ``reuse`` allows instead of running it again; each run
    leaves its log in ``<run>/run.log``. A run asked for twice in one invocation runs once."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.done: dict[RunSpec, RunRecord] = {}
        self.commands: list[str] = []

    def __call__(self, specs: list[RunSpec]) -> list[RunRecord]:
        todo = list(dict.fromkeys(s for s in specs if s not in self.done))
        self.commands += [s.command for s in todo]
        if self.plan.jobs > 1 and len(todo) > 1:
            self.caches_first(todo)
            # spawned, not forked: a forked torch with its threads started can deadlock
            with ProcessPoolExecutor(self.plan.jobs, mp_context=get_context("spawn")) as pool:
                n = len(todo)
                for spec, rec in zip(todo, pool.map(_run_one, todo, [self.plan.out] * n, [self.plan.reuse] * n,
                                                     [1] * n, [self.plan.overrides] * n)):
                    self.done[spec] = rec
        else:
            for spec in todo:
                self.done[spec] = _run_one(spec, self.plan.out, self.plan.reuse, overrides=self.plan.overrides)
        return [self.done[s] for s in specs]

    def caches_first(self, specs: list[RunSpec]) -> int:
        """Build the attention caches that ``specs``' train runs will read, here, one at a time and
        with every thread; returns how many distinct sets it opened. In the pool each train run has
        one thread, and runs wanting one missing cache wait on its lock while one of them builds it
        on that one thread."""
        from probing import training

        seen = set()
        for spec in specs:
            if spec.config != "train":
                continue
            out = self.plan.out / spec.out
            cfg, _ = runner.compose("train", runner.merge_overrides(list(spec.overrides), self.plan.overrides), out)
            run = runner.the_run(cfg)
            if not training.net_class(cfg).uses_attention or runner.reusable(out, run, self.plan.reuse):
                continue
            # what the caches' keys depend on (a random encoder's seed sits in the model node)
            reads = repr([run["model"], run["data"], run["extract"], run["datamodule"]["splits"],
                          cfg.paths.attention_cache])
            if reads not in seen:
                seen.add(reads)
                training.build_datamodule(cfg).prepare_data()
        return len(seen)

    def process(self, name: str, args: list[str], out: str) -> Path:
        """``python <args>`` in a process of its own (a Hydra multirun, the benchmarks), logged to
        ``<out>/<name>.log``; returns ``<out>``."""
        where = self.plan.out / out
        where.mkdir(parents=True, exist_ok=True)
        self.commands.append(" ".join(shlex.quote(a) for a in ["python", *args]))
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
               "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
        with open(where / f"{name}.log", "w") as f:
            done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        if done.returncode:
            tail = "".join((where / f"{name}.log").read_text().splitlines(keepends=True)[-40:])
            raise RuntimeError(f"{name}: python {' '.join(args)} failed (exit {done.returncode}):\n{tail}")
        return where

    def sweep(self, name: str, args: list[str], out: str) -> list[RunRecord]:
        """A Hydra multirun that only Hydra's own sweeper can drive (Optuna); its records."""
        where = self.process(name, ["train.py", "-m", *args, f"hydra.sweep.dir={self.plan.out / out}"], out)
        return collect(where, kind="probe")


def _run_one(spec: RunSpec, root: Path, reuse: str, threads: int | None = None,
             overrides: list[str] = ()) -> RunRecord:
    out = root / spec.out
    overrides = runner.merge_overrides(list(spec.overrides), list(overrides), QUIET[spec.config])
    if threads and spec.config == "train":
        overrides.append(f"threads={threads}")
    if threads:  # a pool's worker: one thread each, whatever the job (analysis jobs too)
        torch.set_num_threads(threads)
    cfg, inv = runner.compose(spec.config, overrides, out)
    inv.command = spec.command
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "run.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    start = time.perf_counter()
    try:
        rec = runner.run(cfg, inv, reuse=reuse)
    except Exception as e:
        raise RuntimeError(f"{spec.command} (into {out}) failed: {type(e).__name__}: {e}; its log: {out / 'run.log'}") from e
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    log.info("%s: %.0f s", spec.command, time.perf_counter() - start)
    return rec
