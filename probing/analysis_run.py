"""``analyze(cfg)``: run one analysis job (or the report) over the attention cache."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from probing.analysis.base import Context
from probing.tracking import finish_wandb, start_wandb, sweep_group
from probing.writer import Writer, plain

log = logging.getLogger(__name__)


def analyze(cfg: DictConfig) -> dict:
    """Run ``cfg.analysis`` on ``cfg.model`` / ``cfg.data`` / ``cfg.split``; returns the job's
    summary (also written to ``summary.json``)."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # plain lists and dicts in the job: a ListConfig would leak into numpy and the job's JSON
    job = instantiate(cfg.analysis, _convert_="all")
    tags = [f"analysis:{type(job).__name__}", f"model:{cfg.model.name}", f"data:{cfg.data.name}"]
    logger = start_wandb((cfg.get("logger") or {}).get("wandb"), tags, sweep_group(),
                         OmegaConf.to_container(cfg, resolve=True))
    writer = Writer(out, logger.experiment if logger is not None else None)
    ctx = Context(instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract),
                  cfg.paths.attention_cache, cfg.split, out, writer)
    try:
        section = job.run(ctx)
        writer.json("summary", {"title": section.title, **section.summary})
        log.info("%s: %s", section.title, section.markdown.splitlines()[-1][:300])
        return plain(section.summary)
    finally:
        finish_wandb(logger)
