"""train.py through Hydra's compose API on the tiny encoder and treebanks, for every probe."""

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.utils import instantiate

import probing.probes.datamodule as datamodule
from probing import record
from probing.compare import main as compare_main
from probing.probes.tasks import DependencyTask
from probing.training import caveat

from .conftest import CONF, ROOT, TINY, compose_cfg, run

PROBES = sorted(p.stem for p in (Path(CONF) / "probe").glob("*.yaml"))
ATTENTION_FREE = ["distances_plus_glove", "nearest_opinion", "right_branching"]
# each probe on the data it is for; the values are regressions of seed 0 on the tiny random
# encoder (hand-counted for the rules: see the tests below), over 19 dev and 22 test words. Two
# epochs at lr 0.002 from the released random init leave the learned probes near chance here;
# tests/probes shows that they learn.
DATA = {"nearest_opinion": "data=tiny_triplets"}
EXPECTED = {
    "attn_only": {"val/uas": 2 / 19, "test/uas": 1 / 22},
    "attn_plus_glove": {"val/uas": 1 / 19, "test/uas": 3 / 22},
    "distances_plus_glove": {"val/uas": 5 / 19, "test/uas": 4 / 22},
    "nearest_opinion": {"val/acc": 1.0, "test/acc": 1.0},
    "random_init_attn_plus_glove": {"val/uas": 1 / 19, "test/uas": 3 / 22},
    "right_branching": {"val/uas": 8 / 19, "test/uas": 9 / 22},
}


def train_metrics(cfg) -> dict[str, float]:
    return run(cfg).metrics


@pytest.mark.parametrize("probe", PROBES)
def test_every_probe_trains_validates_and_tests(probe, compose_tiny):
    # the learning rate pinned: these are regressions of this recipe, not of whatever the default becomes
    cfg = compose_tiny("train", f"probe={probe}", "~logger", "trainer.max_epochs=2", "probe.optimizer.lr=0.002",
                       *DATA.get(probe, "").split())
    metrics = train_metrics(cfg)
    accuracy = {k: v for k, v in metrics.items() if not k.endswith("/loss")}
    assert accuracy == pytest.approx(EXPECTED[probe])
    # a loss only where something is learned
    assert ("val/loss" in metrics) == (probe not in ("nearest_opinion", "right_branching"))
    rec = record.read(cfg.paths.output_dir)
    assert rec.metrics == pytest.approx(metrics) and rec.name == probe
    assert rec.random_init == (probe == "random_init_attn_plus_glove")
    assert (rec.model is None) == (probe in ATTENTION_FREE)
    assert cfg.optimized_metric == ("val/acc" if probe == "nearest_opinion" else "val/uas")
    table = Path(cfg.paths.output_dir) / "per_relation_uas.csv"
    assert table.is_file() == (probe != "nearest_opinion")
    if table.is_file():
        assert table.read_text().startswith("relation,uas,count\n")


def test_right_branching_scores_the_hand_counted_uas(compose_tiny):
    # tiny-test, punctuation left out: 4/9 (The->pasta, was->overcooked, the->sauce, was->delicious),
    # 2/5 (Nobody->expected, Spanish->Inquisition), 3/8 (been->renovating, the->kitchen, since->March)
    metrics = train_metrics(compose_tiny("train", "probe=right_branching", "~logger"))
    assert metrics == {"val/uas": pytest.approx(8 / 19), "test/uas": pytest.approx(9 / 22)}


@pytest.mark.parametrize("probe", ATTENTION_FREE)
def test_attention_free_probes_extract_nothing(probe, compose_tiny, monkeypatch):
    def no_extraction(*args, **kwargs):
        raise AssertionError("an attention-free probe asked for attention")

    monkeypatch.setattr(datamodule, "open_split", no_extraction)
    cfg = compose_tiny("train", f"probe={probe}", "~logger", "trainer.max_epochs=1")
    train_metrics(cfg)
    assert not Path(cfg.paths.attention_cache).exists()
    rec = record.read(cfg.paths.output_dir)
    assert "No attention" in rec.caveat and rec.model is None


def test_aspect_opinion_task(compose_tiny):
    # tiny_triplets dev, right-branching (the word after the aspect): pizza->was, staff->were,
    # coffee->",", burger->"." all wrong; test: only falafel->excellent right of 5 aspects
    rb = train_metrics(compose_tiny("train", "data=tiny_triplets", "probe=right_branching", "~logger"))
    assert rb == {"val/acc": 0.0, "test/acc": pytest.approx(1 / 5)}
    cfg = compose_tiny("train", "data=tiny_triplets", "probe=attn_plus_glove", "~logger", "trainer.max_epochs=2")
    metrics = train_metrics(cfg)
    assert set(metrics) == {"val/loss", "val/acc", "test/loss", "test/acc"}
    assert cfg.optimized_metric == "val/acc" and cfg.callbacks.model_checkpoint.monitor == "val/acc"
    assert not (Path(cfg.paths.output_dir) / "per_relation_uas.csv").exists()
    with pytest.raises(ValueError, match="no labels"):
        train_metrics(compose_tiny("train", "data=tiny_triplets", "probe=attn_only", "probe.predict_labels=true", "~logger"))
    with pytest.raises(ValueError, match="optimized_metric"):
        train_metrics(compose_tiny("train", "data=tiny_triplets", "probe=attn_only", "optimized_metric=val/uas", "~logger"))


def test_caveat_names_the_encoder_and_the_data(compose_tiny):
    # the encoder's own caveat (no weights are loaded for it), the data's task and GloVe's size
    cfg = compose_tiny("train", "model=bert_base_uncased", "probe=attn_only")
    encoder = instantiate(cfg.model)
    dm = SimpleNamespace(attention=True, encoder=encoder, task=DependencyTask(label_level="base"), glove=SimpleNamespace(dim=50),
                         corpus=instantiate(cfg.data))
    text = caveat(cfg, dm)
    assert text.startswith(encoder.caveat()) and "sentence-embedding" not in text
    assert "Data `tiny` (14 hand-written sentences for tests and smoke runs); the probe predicts each word's " \
        "syntactic head" in text and "50-d GloVe" in text
    dm.attention, dm.glove = False, None
    assert caveat(cfg, dm).startswith("No attention") and "no GloVe" in caveat(cfg, dm)


def test_labels_give_las_and_per_relation_rows(compose_tiny):
    cfg = compose_tiny("train", "probe=attn_only", "probe.predict_labels=true", "probe.decode=mst", "~logger",
                       "probe.optimizer.lr=0.002")
    metrics = train_metrics(cfg)
    assert {k: v for k, v in metrics.items() if not k.endswith("loss")} == pytest.approx(
        {"val/uas": 1 / 19, "val/las": 0.0, "test/uas": 1 / 22, "test/las": 0.0})
    rows = (Path(cfg.paths.output_dir) / "per_relation_uas.csv").read_text().splitlines()[1:]
    assert sum(int(r.split(",")[2]) for r in rows) == 22


def test_old_probe_options_still_run_and_change_the_run(compose_tiny, tmp_path):
    # this code before issue 10: ROOT from start/end, self masked, zero/nn.Linear init, clipped ReLU distances
    old = ["probe.net.init=pytorch", "probe.mask_self=true", "probe.loss=query_mean", "~logger", "trainer.max_epochs=1"]
    for probe, own in (("attn_plus_glove", ["probe.net.root=start_end"]),
                       ("distances_plus_glove", ["probe.net.features=clipped", "probe.net.activation=relu"])):
        before = run(compose_cfg("train", [*TINY, f"probe={probe}", *own, *old], tmp_path / probe / "old"))
        now = run(compose_cfg("train", [*TINY, f"probe={probe}", *old[3:]], tmp_path / probe / "new"))
        assert before.get("probe.loss") == "query_mean" and before.get("probe.mask_self") is True
        # the options reach the probe: the same seed and data give another loss
        assert before.metrics["val/loss"] != pytest.approx(now.metrics["val/loss"]), probe


def test_random_init_probe_reads_its_own_cache(compose_tiny):
    cfg = compose_tiny("train", "probe=random_init_attn_plus_glove", "~logger", "trainer.max_epochs=1")
    assert cfg.model.random_init is True and cfg.probe.net._target_.endswith("AttnPlusGlove")
    train_metrics(cfg)
    caches = sorted(p.name for p in Path(cfg.paths.attention_cache).iterdir())
    assert caches == ["tiny_random-random"]


def test_experiment_and_debug_configs_run(compose_tiny):
    cfg = compose_tiny("train", "experiment=clark19_table3", "model=tiny_random", "data=tiny", "~logger")
    assert cfg.trainer.max_epochs == 1 and cfg.datamodule.batch_size == 1 and cfg.probe.optimizer.lr == 0.002
    assert cfg.probe.loss == "sentence_sum" and cfg.probe.mask_self is False and cfg.probe.net.root == "released"
    train_metrics(cfg)
    debug = compose_tiny("train", "debug=default")
    assert debug.trainer.fast_dev_run is True and not debug.get("logger")
    train_metrics(debug)


def test_same_seed_same_metrics(compose_tiny):
    first = train_metrics(compose_tiny("train", "probe=attn_only", "~logger", "seed=3"))
    again = train_metrics(compose_tiny("train", "probe=attn_only", "~logger", "seed=3"))
    assert first == again


def _read_when_written(path: Path, marker: bytes, seconds: float = 60) -> bytes:
    """wandb's service process may still be writing the record file when finish() returns (seen
    on a loaded machine): wait for the summary to land."""
    deadline = time.monotonic() + seconds
    while marker not in (data := path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return data


def test_wandb_offline_run_records_config_and_summary(compose_tiny):
    cfg = compose_tiny("train", "probe=attn_only", "logger=wandb", "trainer.max_epochs=1")
    metrics = train_metrics(cfg)
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # wandb 0.31 keeps an offline run's config and summary as protobuf records in run-*.wandb
    # (what `wandb sync` uploads); protobuf stores strings as plain UTF-8
    (record,) = runs[0].glob("run-*.wandb")
    data = _read_when_written(record, b"test/uas")
    assert b"probing.probes.AttnOnly" in data and b"model:tiny_random" in data
    assert b"test/uas" in data and repr(metrics["test/uas"]).encode() in data
    assert list((runs[0] / "files" / "media" / "table" / "test").glob("per_relation_uas_*.table.json"))


def run_train(*args, tmp_path, sweep_dir=True):
    """``train.py`` started in ``tmp_path``; its sweep lands in ``tmp_path/sweep``, or, with
    ``sweep_dir=False``, where the default paths put it (``outputs/`` under the starting directory)."""
    flags = [a for a in args if a.startswith("-")]  # Hydra's argparse wants flags before overrides
    cmd = [sys.executable, str(ROOT / "train.py"), *flags, *TINY, "~logger",
           *([f"hydra.sweep.dir={tmp_path / 'sweep'}"] if sweep_dir else []),
           *(a for a in args if not a.startswith("-"))]
    env = {k: v for k, v in os.environ.items() if k not in ("PROBING_ROOT", "PROBING_CACHE_DIR")}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if sweep_dir:
        return tmp_path / "sweep"
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    return sweep


@pytest.mark.slow
def test_multirun_over_two_probes_then_compare(tmp_path):
    # the default sweep directory: it failed to resolve ("HydraConfig was not set") until 2026-11-30
    sweep = run_train("-m", "probe=attn_only,right_branching", "seed=0,1", "trainer.max_epochs=1",
                      tmp_path=tmp_path, sweep_dir=False)
    assert sorted(r.name for r in record.collect(sweep)) == ["attn_only"] * 2 + ["right_branching"] * 2
    assert (tmp_path / ".cache" / "attention").is_dir()  # the cache follows the starting directory too
    table = {row["probe"]: row for row in compare_main([str(sweep)])}
    assert sorted(table) == ["attn_only", "right_branching"]
    assert all(row["seeds"] == "0 1" for row in table.values())
    assert {"compare.md", "compare.csv", "compare.png"} <= {p.name for p in sweep.iterdir()}
    # right-branching: the same hand-counted 9/22 for both seeds, so no spread
    assert table["right_branching"]["test/uas (%)"] == f"{100 * 9 / 22:.1f} ± 0.0 (n=2)"


@pytest.mark.slow
def test_optuna_sweep_of_two_trials_in_parallel_through_joblib(tmp_path):
    sweep = run_train("hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1",
                      "hydra.sweeper.n_jobs=2", "hydra/launcher=local",
                      "probe=attn_only", "trainer.max_epochs=1", tmp_path=tmp_path)
    assert len(record.collect(sweep)) == 2
    results = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in results and "probe.optimizer.lr" in results
    assert "JoblibLauncher" in (sweep / "0" / ".hydra" / "hydra.yaml").read_text()


def test_a_probe_trains_on_the_control_task(compose_tiny):
    cfg = compose_tiny("train", "task@data.task=dependency_control", "probe=attn_only", "~logger",
                       "trainer.max_epochs=1")
    rec = run(cfg)
    assert rec.get("data.task._target_") == "probing.probes.tasks.ControlDependencyTask"
    assert 0 <= rec.metrics["val/uas"] <= 1 and "control task" in rec.caveat
