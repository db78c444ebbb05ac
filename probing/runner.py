"""The one job runner: compose a config, run the job it names, leave a :class:`RunRecord`.

``train.py``, ``analyze.py`` and ``extract.py`` hand their ``@hydra.main`` config to :func:`main`;
the report, the ``families`` job, the results command, the benchmarks and the tests compose
configs with :func:`compose` and run them with :func:`run`. Either way the same code starts W&B,
runs the job, writes the run's ``record.json`` and returns the record. This is the only module
that reads or sets Hydra's global state; everything below it gets plain arguments.

    rec = run(*compose("analyze", ["analysis=syntax_heads", "model=minilm_l6"], "outputs/t1"))
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from probing import CONF_DIR, provenance
from probing.errors import ProbingError
from probing.record import RecordError, RunRecord, read
from probing.tracking import finish_wandb, start_wandb
from probing.writer import Writer, plain

log = logging.getLogger(__name__)

# what each entry point's config is called, and the kind of record it leaves
KIND = {"train": "probe", "analyze": "analysis", "extract": "extract"}
# config keys that say where a run writes or how it is watched, not what it computes
NOT_THE_RUN = ("paths", "logger", "hydra")


@dataclass
class Invocation:
    """What Hydra knew about a run: the group options chosen (``probe``, ``analysis``, ``model``),
    the command-line overrides, the sweep's group (the jobs of one ``-m`` share it) and the
    command a user would type to repeat it."""

    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    group: str | None = None
    command: str = ""


def main(cfg: DictConfig) -> RunRecord:
    """Run an entry point's ``@hydra.main`` config. Bad input or a missing resource
    (:class:`~probing.errors.ProbingError`, or a config value a constructor refuses) ends the
    process with its one-line message, not a traceback."""
    hc = HydraConfig.get()
    group = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None
    command = " ".join(shlex.quote(a) for a in ["python", Path(sys.argv[0]).name, *hc.overrides.task])
    try:
        return run(cfg, Invocation(dict(hc.runtime.choices), list(hc.overrides.task), group, command))
    except (ProbingError, InstantiationException) as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def compose(config_name: str, overrides: list[str], output_dir: str | Path,
            paths: dict | None = None) -> tuple[DictConfig, Invocation]:
    """``conf/<config_name>.yaml`` with ``overrides``, as ``@hydra.main`` would hand it to a job
    that writes into ``output_dir``; works inside a running Hydra app (the report) or outside one.
    ``paths``: another run's resolved ``paths`` node, so that a sub-job shares its caches."""
    overrides = list(overrides)
    if GlobalHydra.instance().is_initialized():
        cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    choices = {k: v for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items() if v is not None}
    with open_dict(cfg):
        del cfg.hydra  # a job's config has no hydra node; its run directory is known now
        if paths is not None:
            cfg.paths = dict(paths)
        cfg.paths.output_dir = str(Path(output_dir).resolve())
    command = " ".join(shlex.quote(a) for a in ["python", f"{config_name}.py", *overrides])
    return cfg, Invocation(choices, overrides, None, command)


def _key(override) -> str:
    return f"{override.key_or_group}@{override.package}" if override.package else override.key_or_group


def _about_analysis(override) -> bool:
    key, package = override.key_or_group, override.package or ""
    return key == "analysis" or key.startswith("analysis.") or package == "analysis" or package.startswith("analysis.")


def merge_overrides(*lists: list[str]) -> list[str]:
    """Override lists joined; a later override of the same key replaces an earlier one (Hydra
    refuses two values for one key)."""
    merged: dict[str, str] = {}
    for o in OverridesParser.create().parse_overrides([o for lst in lists for o in lst]):
        merged.pop(_key(o), None)
        merged[_key(o)] = o.input_line
    return list(merged.values())


def sub_job_overrides(run: list[str], extra: list[str]) -> list[str]:
    """A sub-job's overrides (the report's jobs, the families' per-model jobs): the run's own that
    are not about ``analysis``, then ``extra`` (later wins)."""
    kept = [o.input_line for o in OverridesParser.create().parse_overrides(list(run)) if not _about_analysis(o)]
    return merge_overrides(kept, list(extra))


def job_name(cfg: DictConfig, inv: Invocation) -> str:
    """The probe config (``attn_plus_glove``), the analysis job (``surface``) or ``extract``."""
    kind = KIND[cfg.task_name]
    if kind == "probe":
        return inv.choices.get("probe") or cfg.probe.net._target_.rsplit(".", 1)[-1]
    if kind == "analysis":
        return inv.choices.get("analysis") or cfg.analysis._target_.rsplit(".", 1)[-1]
    return "extract"


def the_run(cfg: DictConfig) -> dict:
    """The resolved config without what only says where the run writes: equal for two runs that
    compute the same thing."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in resolved.items() if k not in NOT_THE_RUN}


def reusable(out: Path, computed: dict, reuse: str) -> RunRecord | None:
    """A finished record in ``out`` that ``reuse`` allows to stand for the run whose
    :func:`the_run` is ``computed``, or None.

    ``reuse``: "never"; "same_commit" (the same computation by the same committed code, or by
    this same invocation of the results command: what it and the families job read instead of
    running a job twice); "config" (the same computation by any code:
    ``python -m probing.results --resume``).
    """
    if reuse == "never" or not (out / "record.json").is_file():
        return None
    try:
        rec = read(out)
    except RecordError:
        return None
    if rec.config != computed:
        return None
    session = os.environ.get(provenance.SESSION)
    if reuse == "same_commit" and not (session and rec.provenance.get("session") == session):
        here = provenance.commit()
        if "+dirty" in here or rec.provenance.get("commit") != here:
            return None
    log.info("reusing the finished run in %s", out)
    return rec


def run(cfg: DictConfig, inv: Invocation | None = None, *, wandb_run=None, reuse: str = "never") -> RunRecord | None:
    """Run the job ``cfg.task_name`` names into ``cfg.paths.output_dir`` and write its record.

    ``wandb_run``: log into this W&B run (a report's sub-job) instead of starting one.
    """
    inv = inv or Invocation()
    out = Path(cfg.paths.output_dir)
    computed = plain(the_run(cfg))  # before the job fills in what it resolves (optimized_metric)
    found = reusable(out, computed, reuse)
    if found is not None:
        return found
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    kind, name = KIND[cfg.task_name], job_name(cfg, inv)
    if kind == "probe":
        rec = _train(cfg, inv, name)
        if rec is None:  # a DDP rank other than 0: rank 0 writes the run's record
            return None
    elif kind == "analysis":
        rec = _analyze(cfg, inv, name, out, wandb_run)
    else:
        rec = _extract(cfg, name, out)
    rec.config = computed
    rec.overrides = list(inv.overrides)
    rec.provenance = provenance.record(inv.command or None)
    rec.wall_time_s = round(time.perf_counter() - start, 2)
    rec.write(out)
    return rec


def _tags(cfg: DictConfig, kind: str, name: str) -> list[str]:
    return [f"{'probe' if kind == 'probe' else 'analysis'}:{name}", f"model:{cfg.model.name}", f"data:{cfg.data.name}"]


def _train(cfg: DictConfig, inv: Invocation, name: str) -> RunRecord | None:
    from probing.training import train

    loggers = []
    for key, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if key == "wandb":  # a broken W&B costs a warning, not the run
            wandb_logger = start_wandb(node, _tags(cfg, "probe", name), inv.group)
            loggers += [wandb_logger] if wandb_logger is not None else []
        else:
            loggers.append(instantiate(node))
    try:
        trained = train(cfg, loggers)
    finally:
        finish_wandb(next((lg for lg in loggers if type(lg).__name__ == "WandbLogger"), None))
    if not trained.global_zero:
        return None
    return RunRecord(kind="probe", name=name, model=cfg.model.name if trained.attention else None,
                     data=cfg.data.name, split=plain(OmegaConf.to_container(cfg.split)), seed=int(cfg.seed),
                     random_init=bool(trained.attention and cfg.model.get("random_init", False)),
                     metrics=trained.metrics, best_epoch=trained.best_epoch, epochs_run=trained.epochs_run,
                     max_epochs=trained.max_epochs, lr=cfg.probe.optimizer.lr if cfg.probe.get("optimizer") else None,
                     caveat=trained.caveat)


def _analyze(cfg: DictConfig, inv: Invocation, name: str, out: Path, wandb_run) -> RunRecord:
    from probing.analysis.base import Context, check_job

    # plain lists and dicts in the job: a ListConfig would leak into numpy and the job's JSON
    job = check_job(instantiate(cfg.analysis, _convert_="all"), name)
    logger = None
    if wandb_run is None:
        logger = start_wandb((cfg.get("logger") or {}).get("wandb"), _tags(cfg, "analysis", name), inv.group,
                             OmegaConf.to_container(cfg, resolve=True))
        wandb_run = logger.experiment if logger is not None else None
    writer = Writer(out, wandb_run)
    try:
        ctx = Context.from_cfg(cfg, out, writer, inv.overrides)
        section = job.run(ctx)
        caveat = ctx.caveat(section.corpus)
        writer.text("section", f"# {section.title}\n\n> {caveat}\n\n{section.markdown}\n")
        writer.summary(name, section.summary)
        log.info("%s: %s", section.title, section.markdown.strip().splitlines()[-1][:300] if section.markdown else "")
    finally:
        finish_wandb(logger)
    return RunRecord(kind="analysis", name=name, model=cfg.model.name, data=cfg.data.name, split=str(cfg.split),
                     seed=int(cfg.get("seed", 0)), random_init=bool(cfg.model.get("random_init", False)),
                     summary=plain(section.summary), title=section.title, markdown=section.markdown,
                     figures=[str(Path(f).relative_to(out)) if Path(f).is_relative_to(out) else str(f)
                              for f in section.figures], caveat=caveat)


def _extract(cfg: DictConfig, name: str, out: Path) -> RunRecord:
    from probing.attention.store import describe, open_split

    encoder, corpus = instantiate(cfg.model), instantiate(cfg.data)
    settings = instantiate(cfg.extract)
    shard, num_shards = cfg.get("shard"), cfg.get("num_shards", 1)
    store, sentences = open_split(encoder, corpus, cfg.split, settings, cfg.paths.attention_cache, shard, num_shards)
    summary = describe(store, sentences)
    if shard is not None:
        summary.update(shard=shard, num_shards=num_shards)
    log.info("extraction: %s", summary)
    return RunRecord(kind="extract", name=name, model=encoder.name, data=corpus.name, split=str(cfg.split),
                     seed=int(cfg.get("seed", 0)), random_init=bool(encoder.random_init), summary=plain(summary))
