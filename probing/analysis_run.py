"""``analyze(cfg)``: run one analysis job (or the report) over the attention cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from probing.analysis.jobs import Context

log = logging.getLogger(__name__)


def _wandb_run(cfg: DictConfig):
    node = (cfg.get("logger") or {}).get("wandb")
    if node is None:
        return None
    try:
        tags = [f"analysis:{cfg.analysis._target_.rsplit('.', 1)[-1]}", f"model:{cfg.model.name}", f"data:{cfg.data.name}"]
        logger = instantiate(node, tags=tags)
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        return logger.experiment
    except Exception as e:  # noqa: BLE001  (a broken W&B install must not cost the analysis)
        log.warning("W&B logger unavailable (%s); continuing without it", e)
        return None


def analyze(cfg: DictConfig) -> dict:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = instantiate(cfg.analysis)
    run = _wandb_run(cfg)
    ctx = Context(instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract),
                  cfg.paths.attention_cache, out, run)
    try:
        section = job.run(ctx)
        (out / "summary.json").write_text(json.dumps({"title": section.title, **section.summary}, indent=1, default=str))
        log.info("%s: %s", section.title, section.markdown.splitlines()[-1][:300])
        return section.summary
    finally:
        if run is not None:
            import wandb

            wandb.finish()
