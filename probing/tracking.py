"""Starting and finishing the W&B run of a training or analysis job, in one place."""

from __future__ import annotations

import logging

from hydra.utils import instantiate

log = logging.getLogger(__name__)


def start_wandb(node, tags, group: str | None = None, config: dict | None = None):
    """A started Lightning ``WandbLogger`` from a ``logger.wandb`` config node, or None.

    ``None`` when ``node`` is None (no W&B asked for) or when W&B cannot start (not installed, no
    network in online mode, a broken install): a warning is logged, and the job goes on and still
    writes its files. ``config`` (the resolved run config) is logged as hyperparameters.
    """
    if node is None:
        return None
    try:
        logger = instantiate(node, tags=list(tags), group=group)
        logger.experiment  # noqa: B018  (wandb.init is lazy: start it here, where a failure is caught)
        if config is not None:
            logger.log_hyperparams(config)
        return logger
    except Exception as e:  # noqa: BLE001  (a missing or broken W&B must not cost the run)
        log.warning("W&B unavailable (%s: %s); the run goes on without it and still writes its files",
                    type(e).__name__, e)
        return None


def finish_wandb(logger) -> None:
    """Close the run (call in ``finally``), so the next job of a multirun starts a clean one."""
    if logger is not None:
        import wandb

        wandb.finish()
