"""``train(cfg, loggers)``: extract (or read) attention, fit a probe, validate and test its best
checkpoint. The runner (:mod:`probing.runner`) calls it and turns what it returns into the run's
record."""

from __future__ import annotations

import ctypes
import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from probing.attention.encoders.base import model_caveat
from probing.probes.base import ProbeNet
from probing.probes.datamodule import ProbeDataModule
from probing.probes.tasks import Task
from probing.writer import Writer

log = logging.getLogger(__name__)

PAPER = "the paper's BERT-base on WSJ with Stanford Dependencies and 300-d GloVe"


def build_task(corpus) -> Task:
    """The task the data config names (its ``task:`` node, built by Hydra with the corpus)."""
    task = getattr(corpus, "task", None)
    if task is None:
        raise ValueError(f"data {corpus.name} names no probing task: add a task node to its config, e.g. "
                         "`task: {_target_: probing.probes.tasks.DependencyTask}`")
    return task


def net_class(cfg: DictConfig) -> type[ProbeNet]:
    return get_class(cfg.probe.net._target_)


def build_datamodule(cfg: DictConfig) -> ProbeDataModule:
    # a partial, because Hydra would turn the dataclass arguments back into configs
    make = instantiate(cfg.datamodule, _partial_=True)
    corpus = instantiate(cfg.data)
    attention = net_class(cfg).uses_attention
    return make(
        # attention-free probes never load the model nor extract anything
        encoder=instantiate(cfg.model) if attention else None,
        corpus=corpus,
        task=build_task(corpus),
        attention=attention,
        extraction=instantiate(cfg.extract),
        cache_root=cfg.paths.attention_cache,
        glove=instantiate(cfg.glove) if cfg.get("glove") else None,
    )


def build_probe(cfg: DictConfig, dm: ProbeDataModule) -> pl.LightningModule:
    """Instantiate ``cfg.probe`` with the sizes only the data knows and the task's metric names."""
    known = {"num_maps": dm.num_maps, "vector_dim": dm.vector_dim}
    accepted = inspect.signature(net_class(cfg)).parameters
    net = instantiate(cfg.probe.net, **{k: v for k, v in known.items() if k in accepted})
    task = dm.task
    if cfg.probe.get("predict_labels") and task.labeled_metric is None:
        raise ValueError(f"probe.predict_labels=true, but the {type(task).__name__} of data {cfg.data.name} has no labels")
    # plain containers in the module's hparams: checkpoints must load under weights_only
    make = instantiate(cfg.probe, _partial_=True, _convert_="all", net=None)
    return make(net=net, num_labels=len(dm.labels), label_names=list(dm.labels), metric=task.metric,
                labeled_metric=task.labeled_metric, trees=task.trees)


def resolve_optimized_metric(cfg: DictConfig, task: Task) -> str:
    """``optimized_metric`` (what main() returns and the callbacks monitor through ``${optimized_metric}``):
    null means the task's own, ``val/uas`` for dependencies and ``val/acc`` for aspect-opinion."""
    reported = {f"val/{m}" for m in (task.metric, task.labeled_metric, "loss") if m}
    metric = cfg.get("optimized_metric") or f"val/{task.metric}"
    if metric not in reported:
        raise ValueError(f"optimized_metric={metric}, but a {type(task).__name__} reports {sorted(reported)}")
    with open_dict(cfg):
        cfg.optimized_metric = metric
    return metric


def caveat(cfg: DictConfig, dm: ProbeDataModule) -> str:
    """What the numbers come from, next to the paper's setting: the encoder's own caveat (when the
    probe reads attention), the data and task, and the GloVe vectors."""
    parts = []
    if dm.attention:
        parts.append(model_caveat(dm.encoder))
    else:
        parts.append("No attention: the probe reads no model.")
    described = f" ({dm.corpus.description})" if dm.corpus.description else ""
    parts.append(f"Data `{cfg.data.name}`{described}; the probe predicts {dm.task.describe()}.")
    glove = f"{dm.glove.dim}-d GloVe" if dm.glove is not None else "no GloVe"
    parts.append(f"Word vectors: {glove}. Compare with care to {PAPER}.")
    return " ".join(parts)


def _metrics(trainer: pl.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def keep_batches_in_the_heap() -> None:
    """Ask glibc to serve blocks below 32 MB from its heap and to keep freed memory there.

    A probe batch's attention is one 5-60 MB tensor, made anew at every step. Above glibc's mmap
    threshold every such block is handed back to the kernel when freed, and the next one is fresh
    pages that the kernel zero-fills on first touch: on the 2-core CPU that cost about a fifth of
    the probe's training throughput (mpnet, EWT train: 1,360-1,460 -> 1,600-1,730 sent/s). No-op
    where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, 32 * 2**20)  # glibc's largest allowed value
    libc.mallopt(m_trim_threshold, 2**30)


@dataclass
class Trained:
    """What a probe run gives the runner: the best checkpoint's val and test metrics (fractions),
    how training ended, the caveat, and whether the probe read a model's attention."""

    metrics: dict[str, float]
    best_epoch: int | None
    epochs_run: int | None
    max_epochs: int | None
    caveat: str
    attention: bool
    global_zero: bool = True  # under DDP every rank trains; only rank 0 leaves the record


def train(cfg: DictConfig, loggers: list | None = None) -> Trained:
    """Run one probe with ``loggers`` (Lightning loggers the runner started)."""
    keep_batches_in_the_heap()
    if cfg.get("threads"):
        # one sentence per batch (the paper's recipe) makes tensors too small to split across
        # threads: the threads then only wait for each other, and for any other process on the cores
        torch.set_num_threads(int(cfg.threads))
    loggers = list(loggers or [])
    pl.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup()
    # a first run extracts attention and draws random numbers doing so; seed again, so that the
    # probe's initial weights are the same whether or not the cache existed
    pl.seed_everything(cfg.seed, workers=True)
    module = build_probe(cfg, dm)
    resolve_optimized_metric(cfg, dm.task)  # before the callbacks that monitor it are built
    if cfg.get("ckpt_path") and (cfg.get("callbacks") or {}).get("model_checkpoint"):
        # keep checkpointing beside the checkpoint we resume from: ModelCheckpoint forgets its
        # best score when its directory changes, and the "best" checkpoint would then be chosen
        # among the resumed epochs only
        with open_dict(cfg):
            cfg.callbacks.model_checkpoint.dirpath = str(Path(cfg.ckpt_path).resolve().parent)
        log.info("resuming %s; checkpoints go to %s", cfg.ckpt_path, cfg.callbacks.model_checkpoint.dirpath)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    config = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(config)
    if any(p.requires_grad for p in module.parameters()):
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))
    else:  # right-branching and other rules: nothing to fit, an epoch of no-op steps would only cost time
        log.info("%s has no parameters: validated and tested without training", type(module.net).__name__)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    ckpt = best or None
    # trainer.test() replaces callback_metrics, so validate the same checkpoint first
    trainer.validate(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
    metrics = _metrics(trainer, "val/")
    trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
    metrics.update(_metrics(trainer, "test/"))
    table = per_label_table(dm.task, module)
    if table and trainer.is_global_zero:  # DDP ranks share the run directory
        name, columns, rows = table
        Writer(out).table(name, [dict(zip(columns, row)) for row in rows], digits=4)  # W&B: the logger's
    for lg in loggers:
        if hasattr(lg, "log_table"):
            if table:
                name, columns, rows = table
                lg.log_table(f"test/{name}", columns=columns, data=rows)
            lg.experiment.summary.update(metrics)
    note = caveat(cfg, dm)
    log.info("metrics: %s", json.dumps(metrics))
    log.info(note)
    return Trained(metrics, best_epoch(best), trainer.current_epoch, trainer.max_epochs, note, dm.attention,
                   trainer.is_global_zero)


def per_label_table(task: Task, module) -> tuple[str, list[str], list[list]] | None:
    """(name, columns, rows) of the test accuracy per gold label, e.g. ``per_relation_uas``; None
    for a task without labels."""
    if task.label_name is None:
        return None
    return f"per_{task.label_name}_{task.metric}", [task.label_name, task.metric, "count"], module.per_label_table()


def best_epoch(ckpt: str) -> int | None:
    """The 0-based epoch the best checkpoint was saved after (None when nothing was checkpointed)."""
    if not ckpt:
        return None
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"])
