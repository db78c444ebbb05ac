"""Every option of every config group composes, and instantiates to the right object."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from probing.attention.encoders import EncoderSpec
from probing.data.corpus import Corpus

from .conftest import CONF, compose_cfg


def options(group):
    return sorted(p.stem for p in (Path(CONF) / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
def test_every_model_config_composes(model, tmp_path):
    # model=hf needs a checkpoint: a hub name composes (and names itself) without the hub
    own = ["model.path=bert-base-uncased", "model.family=encoder"] if model == "hf" else []
    cfg = compose_cfg("extract", [f"model={model}", "data=tiny", *own], tmp_path)
    spec = instantiate(cfg.model)
    assert isinstance(spec, EncoderSpec) and spec.name == model
    assert spec.identity()["name"] == model
    # every bundled encoder says what it is: the caveat beside every number is built from this
    assert spec.family in ("encoder", "causal_lm") and spec.description and f"`{model}`" in spec.caveat()


@pytest.mark.parametrize("data", options("data"))
def test_every_data_config_composes(data, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBING_DATA_DIR", str(tmp_path / "corpora"))
    own = ["data.path=" + str(tmp_path / "mine.conllu")] if data == "conllu" else []  # it needs a file
    cfg = compose_cfg("extract", ["model=tiny_random", f"data={data}", *own], tmp_path)
    corpus = instantiate(cfg.data)
    assert isinstance(corpus, Corpus) and corpus.name == data and corpus.description
    assert set(corpus.files) == ({"train", "dev", "test"} if data != "conllu" else set())


def test_tiny_data_ships_in_the_package(tmp_path):
    cfg = compose_cfg("extract", ["model=tiny_random", "data=tiny"], tmp_path)
    sentences, report = instantiate(cfg.data).read("dev")
    assert report.read == 3 and len(sentences) == 3
