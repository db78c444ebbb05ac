"""Every option of every config group composes and instantiates to the right object, and every
value a YAML supplies is written there only: the class it builds has no default of its own."""

import inspect
from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from probing.attention.encoders import EncoderSpec
from probing.data.corpus import Corpus

from .conftest import CONF, compose_cfg

CAUSAL = {"smollm2_135m", "gemma3_270m", "tiny_llama", "tiny_gemma3"}


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
    # the family each YAML declares: a causal LM read as an encoder would get the wrong layouts
    assert spec.family == ("causal_lm" if model in CAUSAL else "encoder")
    # every model says what it is: the caveat beside every number is built from this
    assert spec.description and (spec.objective or model == "hf") and f"`{model}`" in spec.caveat()


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


def defaults_that_yaml_repeats(node, where: str) -> list[str]:
    """Every key a YAML node supplies whose project class has a default for it too (recursively)."""
    found = []
    if not isinstance(node, dict):
        return found
    target = node.get("_target_")
    params = {}
    if isinstance(target, str) and target.startswith("probing."):
        params = inspect.signature(get_class(target)).parameters
    for key, value in node.items():
        if key.startswith("_"):
            continue
        if key in params and params[key].default is not inspect.Parameter.empty:
            found.append(f"{where}.{key} (default {params[key].default!r})")
        found += defaults_that_yaml_repeats(value, f"{where}.{key}")
    return found


GROUPS = {"analysis": "analyze", "probe": "train", "model": "analyze", "data": "analyze"}
OWN = {"hf": ["model.path=/tmp/ckpt", "model.family=encoder"], "conllu": ["data.path=/tmp/mine.conllu"]}


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_a_value_the_yaml_supplies_has_no_second_default_in_code(group, option, tmp_path):
    cfg = compose_cfg(GROUPS[group], [f"{group}={option}", *OWN.get(option, [])], tmp_path)
    node = OmegaConf.to_container(cfg[group])
    assert defaults_that_yaml_repeats(node, f"{group}={option}") == []


def test_datamodule_and_extraction_settings_have_one_source_too(tmp_path):
    cfg = compose_cfg("train", [], tmp_path)
    for name in ("datamodule", "extract"):
        assert defaults_that_yaml_repeats(OmegaConf.to_container(cfg[name]), name) == []


def test_the_guard_finds_a_repeated_default():
    # a node that gives a value its target also defaults: the guard must name it
    node = {"_target_": "probing.attention.encoders.BundledMiniLM", "revision": None, "name": "m"}
    assert defaults_that_yaml_repeats(node, "x") == ["x.revision (default None)"]
