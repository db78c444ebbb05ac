"""Multi-process training (DDP on 2 CPU processes), checkpoint resume, the batch sampler under
DDP, and the one-command Table 3 sweep."""

import subprocess
import sys

import numpy as np
import pytest
import pytorch_lightning as pl

from probing import record
from probing.probes.datamodule import LengthBucketBatchSampler

from .conftest import ROOT, TINY, run

SHORT = ["probe=attn_only", "callbacks.early_stopping=null", "trainer.max_epochs=6"]


def run_train(tmp_path, name, *overrides):
    out = tmp_path / name
    cmd = [sys.executable, "train.py", *TINY, "~logger", *SHORT, f"paths.cache_dir={tmp_path / 'cache'}",
           f"hydra.run.dir={out}", *overrides]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return record.read(out).metrics


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    # the same 4 sentences per optimizer step: 4 on one process, or 2 on each of two
    one = run_train(tmp_path, "one", "trainer.accelerator=cpu", "datamodule.batch_size=4")
    two = run_train(tmp_path, "two", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                    "datamodule.batch_size=2")
    for key in ("val/uas", "test/uas"):
        assert two[key] == pytest.approx(one[key], abs=0.02), key
    assert two["val/loss"] == pytest.approx(one["val/loss"], abs=1e-2)


def test_resuming_from_a_checkpoint_reaches_the_uninterrupted_result(compose_tiny, tmp_path):
    def cfg(name, *overrides):
        c = compose_tiny("train", "~logger", *SHORT, *overrides)
        c.paths.output_dir = str(tmp_path / name)  # checkpoints follow it
        return c

    whole = run(cfg("whole")).metrics
    run(cfg("first", "trainer.max_epochs=3"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    resumed = run(cfg("resumed", f"ckpt_path={last}")).metrics
    for key in ("val/loss", "val/uas", "test/loss", "test/uas"):
        assert resumed[key] == pytest.approx(whole[key], abs=1e-6), key


def test_sampler_order_depends_on_seed_and_epoch_only():
    lengths = np.random.default_rng(0).integers(3, 40, size=200)
    a, b = (LengthBucketBatchSampler(lengths, 8, seed=3, pool=4) for _ in range(2))
    a.set_epoch(2)
    list(a)  # iterating does not move the epoch on: Lightning's set_epoch does
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_ddp_ranks_get_disjoint_batches_that_cover_the_epoch_in_equal_numbers():
    lengths = np.random.default_rng(1).integers(3, 40, size=101)
    whole = list(LengthBucketBatchSampler(lengths, 8, seed=0))
    ranks = [list(LengthBucketBatchSampler(lengths, 8, seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    seen = [i for r in ranks for batch in r for i in batch]
    assert set(seen) == set(range(101))
    # a short rank repeats batches rather than leaving the others waiting
    assert len(seen) - 101 == sum(len(b) for b in whole[: 3 * len(ranks[0]) - len(whole)])
    with pytest.raises(ValueError, match="rank 3 is outside 0..2"):
        LengthBucketBatchSampler(lengths, 8, num_replicas=3, rank=3)


def test_table3_experiment_sweeps_every_row_over_three_seeds():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from .conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=clark19_table3"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = cfg.hydra.sweeper.params
    assert params.seed == "0,1,2"
    assert sorted(params.probe.split(",")) == sorted(
        ["right_branching", "distances_plus_glove", "random_init_attn_plus_glove", "attn_only", "attn_plus_glove"])
    assert (cfg.probe.optimizer.lr, cfg.trainer.max_epochs, cfg.datamodule.batch_size) == (0.002, 1, 1)


class EpochLog(pl.Callback):
    """Per training epoch: the batches Lightning expected, the batches run, and whether it validated."""

    epochs: list[dict] = []

    def on_train_epoch_start(self, trainer, pl_module):
        EpochLog.epochs.append({"expected": trainer.num_training_batches, "ran": 0, "validated": False})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        EpochLog.epochs[-1]["ran"] += 1

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking and EpochLog.epochs:
            EpochLog.epochs[-1]["validated"] = True


def test_every_epoch_validates_when_the_number_of_batches_changes_between_epochs(compose_tiny, tmp_path):
    # pairs of sentences, split when two would exceed max_pairs: how many batches an epoch has
    # depends on its shuffle. A loader built once made Lightning skip validation in shorter epochs
    EpochLog.epochs = []
    cfg = compose_tiny("train", "~logger", *SHORT, "datamodule.batch_size=2", "datamodule.pool=2",
                       "datamodule.max_pairs=150", "+callbacks.epoch_log._target_=tests.test_scale.EpochLog")
    cfg.paths.output_dir = str(tmp_path / "run")
    run(cfg)
    assert len(EpochLog.epochs) == 6
    assert len({e["ran"] for e in EpochLog.epochs}) > 1, "the epochs must differ in length for this test to bite"
    assert [e["ran"] for e in EpochLog.epochs] == [e["expected"] for e in EpochLog.epochs]
    assert all(e["validated"] for e in EpochLog.epochs)
    # and a trainer that would build the loader once is refused, not silently mis-validated
    cfg = compose_tiny("train", "~logger", *SHORT, "trainer.reload_dataloaders_every_n_epochs=0")
    cfg.paths.output_dir = str(tmp_path / "once")
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs=1"):
        run(cfg)
