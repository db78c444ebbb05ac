"""Shared fixtures: configs composed with Hydra's compose API, shrunk to the tiny encoder and data."""

from __future__ import annotations

import os

# before transformers is imported: it reads these once, and tests must never wait on the hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import probing  # noqa: F401  (registers the config resolvers)

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
TINY = ["model=tiny_random", "data=tiny"]


def compose_cfg(config_name: str, overrides: list[str], tmp_path: Path):
    """Compose ``conf/<config_name>.yaml`` as a run would see it, writing under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra  # as in a real run: the job's config has no hydra node
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.cache_dir = str(tmp_path / "cache")
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture
def compose_tiny(tmp_path):
    def _compose(config_name: str, *overrides: str):
        return compose_cfg(config_name, TINY + list(overrides), tmp_path)

    return _compose
