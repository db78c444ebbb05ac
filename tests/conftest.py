"""Shared fixtures: configs composed with Hydra's compose API, shrunk to the tiny encoder and data."""

from __future__ import annotations

import os

# before transformers is imported: it reads these once, and tests must never wait on the hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest
from omegaconf import open_dict

from probing import runner

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
TINY = ["model=tiny_random", "data=tiny"]


# what the interpreter and the tools write beside the code, not the tests
NOT_THE_CHECKOUT = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__"}


def checkout_files() -> dict[Path, int]:
    """Every file of the checkout (but the interpreter's and tools' own) with its mtime."""
    files = {}
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in NOT_THE_CHECKOUT and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder) / name
            files[path] = path.stat().st_mtime_ns
    return files


@pytest.fixture(scope="session", autouse=True)
def the_checkout_stays_as_it_was():
    """A test never writes into the checkout (no cache, no run directory, no result file)."""
    before = checkout_files()
    yield
    after = checkout_files()
    written = sorted(str(p.relative_to(ROOT)) for p in after.keys() | before.keys() if before.get(p) != after.get(p))
    assert not written, f"tests wrote into the checkout: {written[:10]}"


# what Hydra knew about each composed config (the probe's or job's name), for run() below
_INVOCATIONS: dict[int, tuple] = {}


def compose_cfg(config_name: str, overrides: list[str], tmp_path: Path):
    """Compose ``conf/<config_name>.yaml`` as a run would see it, writing under ``tmp_path`` (its
    run directory ``run/``, its caches ``cache/``): never into the checkout."""
    cfg, inv = runner.compose(config_name, overrides, tmp_path / "run")
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.cache_dir = str(tmp_path / "cache")
    _INVOCATIONS[id(cfg)] = (cfg, inv)
    return cfg


def run(cfg, **kwargs):
    """``runner.run`` of a config from :func:`compose_cfg`, with its invocation: the record."""
    composed, inv = _INVOCATIONS.get(id(cfg), (None, None))
    return runner.run(cfg, inv if composed is cfg else None, **kwargs)


def analyze(cfg) -> dict:
    """``analyze.py``'s job summary (its record's)."""
    return run(cfg).summary


def extract(cfg) -> dict:
    """``extract.py``'s summary of the cache it filled (its record's)."""
    return run(cfg).summary


@pytest.fixture
def compose_tiny(tmp_path):
    def _compose(config_name: str, *overrides: str):
        return compose_cfg(config_name, TINY + list(overrides), tmp_path)

    return _compose


def model_node(model: str, *overrides: str) -> dict:
    """``conf/model/<model>.yaml``'s settings (no ``_target_``), as a run would compose them."""
    from omegaconf import OmegaConf

    cfg, _ = runner.compose("analyze", [f"model={model}", *overrides], "/tmp/model-config")
    node = OmegaConf.to_container(cfg.model, resolve=True)
    node.pop("_target_")
    return node


def probe_node(probe: str) -> dict:
    """``conf/probe/<probe>.yaml`` as the composed ``train`` config holds it (plain containers)."""
    from omegaconf import OmegaConf

    cfg, _ = runner.compose("train", [f"probe={probe}"], "/tmp/probe-config")
    return OmegaConf.to_container(cfg.probe)


def make_net(probe: str, **kwargs):
    """The probe's net with its YAML's settings (the one place they are written), ``kwargs`` winning."""
    from hydra.utils import get_class

    node = probe_node(probe)["net"]
    return get_class(node.pop("_target_"))(**{**node, **kwargs})


def make_module(net, optimizer, **kwargs):
    """A ``ProbeModule`` with ``conf/probe/base/module.yaml``'s settings, ``kwargs`` winning."""
    from probing.probes import ProbeModule

    node = probe_node("attn_only")
    fixed = {k: node[k] for k in ("scheduler", "decode", "predict_labels", "include_punct", "mask_self", "loss",
                                  "label_hidden_dim")}
    return ProbeModule(net, optimizer, **{**fixed, **kwargs})
