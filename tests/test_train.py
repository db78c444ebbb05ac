"""train.py through Hydra's compose API on the tiny encoder and treebank, for every probe."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probing.compare import main as compare_main
from probing.training import train

from .conftest import CONF, ROOT, TINY

PROBES = sorted(p.stem for p in (Path(CONF) / "probe").glob("*.yaml"))


@pytest.mark.parametrize("probe", PROBES)
def test_every_probe_trains_validates_and_tests(probe, compose_tiny):
    cfg = compose_tiny("train", f"probe={probe}", "~logger", "trainer.max_epochs=2")
    metrics = train(cfg)
    assert 0.0 <= metrics["val/uas"] <= 1.0 and 0.0 <= metrics["test/uas"] <= 1.0
    record = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert record["test/uas"] == pytest.approx(metrics["test/uas"]) and record["probe_config"] == probe
    assert record["random_init"] == (probe == "random_init_attn_plus_glove")
    assert (Path(cfg.paths.output_dir) / "per_relation_uas.csv").read_text().startswith("relation,uas,count\n")


def test_right_branching_scores_the_hand_counted_uas(compose_tiny):
    # tiny-test, punctuation left out: 4/9 (The->pasta, was->overcooked, the->sauce, was->delicious),
    # 2/5 (Nobody->expected, Spanish->Inquisition), 3/8 (been->renovating, the->kitchen, since->March)
    metrics = train(compose_tiny("train", "probe=right_branching", "~logger"))
    assert metrics["test/uas"] == pytest.approx(9 / 22)


def test_labels_give_las_and_per_relation_rows(compose_tiny):
    cfg = compose_tiny("train", "probe=attn_only", "probe.predict_labels=true", "probe.decode=mst", "~logger")
    metrics = train(cfg)
    assert 0 <= metrics["test/las"] <= metrics["test/uas"]
    rows = (Path(cfg.paths.output_dir) / "per_relation_uas.csv").read_text().splitlines()[1:]
    assert sum(int(r.split(",")[2]) for r in rows) == 22


def test_random_init_probe_reads_its_own_cache(compose_tiny):
    cfg = compose_tiny("train", "probe=random_init_attn_plus_glove", "~logger", "trainer.max_epochs=1")
    assert cfg.model.random_init is True and cfg.probe.net._target_.endswith("AttnPlusGlove")
    train(cfg)
    caches = sorted(p.name for p in Path(cfg.paths.attention_cache).iterdir())
    assert caches == ["tiny_random-random"]


def test_experiment_and_debug_configs_run(compose_tiny):
    cfg = compose_tiny("train", "experiment=clark19_table3", "model=tiny_random", "data=tiny", "~logger")
    assert cfg.trainer.max_epochs == 1 and cfg.datamodule.batch_size == 1 and cfg.probe.optimizer.lr == 0.002
    train(cfg)
    debug = compose_tiny("train", "debug=default")
    assert debug.trainer.fast_dev_run is True and not debug.get("logger")
    train(debug)


def test_same_seed_same_metrics(compose_tiny):
    first = train(compose_tiny("train", "probe=attn_only", "~logger", "seed=3"))
    again = train(compose_tiny("train", "probe=attn_only", "~logger", "seed=3"))
    assert first == again


def test_wandb_offline_run_records_config_and_summary(compose_tiny):
    cfg = compose_tiny("train", "probe=attn_only", "logger=wandb", "trainer.max_epochs=1")
    metrics = train(cfg)
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # wandb 0.31 keeps an offline run's config and summary as protobuf records in run-*.wandb
    # (what `wandb sync` uploads); protobuf stores strings as plain UTF-8
    (record,) = runs[0].glob("run-*.wandb")
    data = record.read_bytes()
    assert b"probing.probes.AttnOnly" in data and b"model:tiny_random" in data
    assert b"test/uas" in data and repr(metrics["test/uas"]).encode() in data
    assert list((runs[0] / "files" / "media" / "table" / "test").glob("per_relation_uas_*.table.json"))


def run_train(*args, tmp_path):
    flags = [a for a in args if a.startswith("-")]  # Hydra's argparse wants flags before overrides
    cmd = [sys.executable, "train.py", *flags, *TINY, "~logger", f"paths.cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", *(a for a in args if not a.startswith("-"))]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "sweep"


@pytest.mark.slow
def test_multirun_over_two_probes_then_compare(tmp_path):
    sweep = run_train("-m", "probe=attn_only,right_branching", "seed=0,1", "trainer.max_epochs=1", tmp_path=tmp_path)
    assert len(list(sweep.rglob("metrics.json"))) == 4
    table = compare_main([str(sweep)])
    assert sorted(table["probe_config"]) == ["attn_only", "right_branching"]
    assert (table["seeds"] == 2).all()
    assert {"compare.md", "compare.csv", "compare.png"} <= {p.name for p in sweep.iterdir()}
    assert table.loc[table.probe_config == "right_branching", "test/uas std"].item() == 0


@pytest.mark.slow
def test_optuna_sweep_of_two_trials_in_parallel_through_joblib(tmp_path):
    sweep = run_train("hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1",
                      "hydra.sweeper.n_jobs=2", "hydra/launcher=local",
                      "probe=attn_only", "trainer.max_epochs=1", tmp_path=tmp_path)
    assert len(list(sweep.rglob("metrics.json"))) == 2
    results = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in results and "probe.optimizer.lr" in results
    assert "JoblibLauncher" in (sweep / "0" / ".hydra" / "hydra.yaml").read_text()
