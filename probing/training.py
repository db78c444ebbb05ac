"""``train(cfg)``: extract (or read) attention, fit a probe, validate and test its best checkpoint."""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from probing.probes.datamodule import ProbeDataModule

log = logging.getLogger(__name__)

CAVEAT = (
    "Numbers come from {model} on {data}, not the paper's BERT-base on WSJ-SD: the bundled encoders "
    "are sentence-embedding fine-tunes, the labels are UD, and GloVe is {dim}-d (the paper's was 300-d)."
)


def build_datamodule(cfg: DictConfig) -> ProbeDataModule:
    # a partial, because Hydra would turn the dataclass arguments back into configs
    make = instantiate(cfg.datamodule, _partial_=True)
    return make(
        encoder=instantiate(cfg.model),
        corpus=instantiate(cfg.data),
        extraction=instantiate(cfg.extract),
        cache_root=cfg.paths.attention_cache,
        glove=instantiate(cfg.glove) if cfg.get("glove") else None,
    )


def build_probe(cfg: DictConfig, dm: ProbeDataModule) -> pl.LightningModule:
    """Instantiate ``cfg.probe`` with the sizes only the data knows, for the nets that take them."""
    known = {"num_maps": dm.num_maps, "vector_dim": dm.vector_dim}
    accepted = inspect.signature(get_class(cfg.probe.net._target_)).parameters
    net = instantiate(cfg.probe.net, **{k: v for k, v in known.items() if k in accepted})
    # plain containers in the module's hparams: checkpoints must load under weights_only
    make = instantiate(cfg.probe, _partial_=True, _convert_="all", net=None)
    return make(net=net, num_relations=len(dm.relations), relation_names=list(dm.relations))


def _sweep_group() -> str | None:
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None


def build_loggers(cfg: DictConfig) -> list:
    loggers = []
    probe = cfg.probe.net._target_.rsplit(".", 1)[-1]
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if name == "wandb":
            tags = [f"probe:{probe}", f"model:{cfg.model.name}", f"data:{cfg.data.name}"]
            extra = {"group": _sweep_group(), "tags": tags}
            try:
                logger = instantiate(node, **extra)
                logger.experiment  # noqa: B018  (wandb.init is lazy: start it here, where a failure is caught)
                loggers.append(logger)
            except Exception as e:  # noqa: BLE001  (a missing or broken W&B must not cost the run)
                log.warning("W&B logger unavailable (%s: %s); the run continues without it, and its metrics "
                            "are still written to metrics.json", type(e).__name__, e)
            continue
        loggers.append(instantiate(node))
    return loggers


def _metrics(trainer: pl.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one probe; returns (and writes to ``metrics.json``) the best checkpoint's val/test metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup()
    module = build_probe(cfg, dm)
    loggers = build_loggers(cfg)
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
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        ckpt = best or None
        # trainer.test() replaces callback_metrics, so validate the same checkpoint first
        trainer.validate(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
        metrics = _metrics(trainer, "val/")
        trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
        metrics.update(_metrics(trainer, "test/"))
        rows = module.per_relation_table()
        if trainer.is_global_zero:  # DDP ranks share the run directory
            write_results(out, cfg, metrics, rows, best)
        for lg in loggers:
            if hasattr(lg, "log_table"):
                lg.log_table("test/per_relation_uas", columns=["relation", "uas", "count"], data=rows)
                lg.experiment.summary.update(metrics)
        log.info("metrics: %s", json.dumps(metrics))
        log.info(CAVEAT.format(model=cfg.model.name, data=cfg.data.name, dim=dm.vector_dim))
        return metrics
    finally:
        if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
            import wandb

            wandb.finish()


def write_results(out: Path, cfg: DictConfig, metrics: dict, rows: list, best_ckpt: str) -> None:
    record = {
        **metrics,
        "probe": cfg.probe.net._target_.rsplit(".", 1)[-1],
        "probe_config": HydraConfig.get().runtime.choices.get("probe") if HydraConfig.initialized() else None,
        "model": cfg.model.name,
        "random_init": bool(cfg.model.get("random_init", False)),
        "data": cfg.data.name,
        "seed": cfg.seed,
        "best_checkpoint": os.path.relpath(best_ckpt, out) if best_ckpt else None,
        "caveat": CAVEAT.format(model=cfg.model.name, data=cfg.data.name, dim=cfg.glove.dim if cfg.get("glove") else "no"),
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=1))
    with open(out / "per_relation_uas.csv", "w") as f:
        f.write("relation,uas,count\n")
        f.writelines(f"{r},{u:.4f},{n}\n" for r, u, n in rows)
