"""Sharded extraction: shards merge into exactly the single-process cache, through joblib for
real and through a composed (never submitted) SLURM launcher config with a real cluster's defaults
(tests/test_slurm.py submits to a local cluster)."""

import subprocess
import sys

import numpy as np
import pytest
from hydra.utils import instantiate

from probing import record
from probing.attention import build as bd
from probing.attention import extract as ex
from probing.attention import shards
from probing.attention import store as st
from probing.attention.cache import AttentionCache, CacheError

from .conftest import ROOT, TINY, compose_cfg, extract

# 8 sentences in batches of 2: a plan of 4 batches to share out
SMALL_BATCHES = ["split=train", "extract.batch_size=2"]


def assert_same_cache(a: AttentionCache, b: AttentionCache):
    assert (a.dir / "attention.f16").read_bytes() == (b.dir / "attention.f16").read_bytes()
    np.testing.assert_array_equal(a.index, b.index)
    assert a.meta["checksum"] == b.meta["checksum"] and a.skipped == b.skipped


@pytest.fixture
def single(tmp_path):
    cfg = compose_cfg("extract", TINY + SMALL_BATCHES + [f"paths.attention_cache={tmp_path / 'single'}"], tmp_path)
    return AttentionCache(extract(cfg)["cache_dir"])


def shard_cfg(tmp_path, *overrides):
    return compose_cfg("extract", TINY + SMALL_BATCHES + [f"paths.attention_cache={tmp_path / 'sharded'}", *overrides],
                       tmp_path)


def test_shards_merge_into_the_single_process_cache(tmp_path, single):
    stored = []
    for s in (0, 1, 2):
        result = extract(shard_cfg(tmp_path, f"shard={s}", "num_shards=3"))
        stored.append(result["stored"])
    assert sum(stored) == 8 and all(stored)  # 4 batches over 3 shards: 2 + 1 + 1 batches
    merged = AttentionCache(extract(shard_cfg(tmp_path, "num_shards=3"))["cache_dir"], verify=True)
    assert_same_cache(merged, single)
    assert merged.meta["merged_from_shards"] == 3
    assert not shards.shard_root(merged.dir).exists()  # merged, so the shards are gone
    again = extract(shard_cfg(tmp_path, "shard=1", "num_shards=3"))  # a shard re-run after the merge
    assert again["cache_dir"] == str(merged.dir) and not shards.shard_root(merged.dir).exists()


def test_a_missing_shard_is_named_and_nothing_is_merged(tmp_path):
    extract(shard_cfg(tmp_path, "shard=0", "num_shards=2"))
    with pytest.raises(CacheError, match=r"shard\(s\) 1 \(.*\) of 2 are missing or incomplete"):
        extract(shard_cfg(tmp_path, "num_shards=2"))
    with pytest.raises(ValueError, match="shard must be an integer in 0..1"):
        extract(shard_cfg(tmp_path, "shard=2", "num_shards=2"))


def test_train_and_analyze_merge_a_finished_shard_set_instead_of_extracting(tmp_path, single, monkeypatch):
    for s in (0, 1):
        extract(shard_cfg(tmp_path, f"shard={s}", "num_shards=2"))
    monkeypatch.setattr(bd, "build", lambda *a, **k: pytest.fail("extracted although shards were there"))
    cfg = shard_cfg(tmp_path)
    cache, _ = st.open_split(instantiate(cfg.model), instantiate(cfg.data), "train", instantiate(cfg.extract),
                                cfg.paths.attention_cache)
    assert_same_cache(cache, single)


def test_a_killed_shard_resumes_and_finished_shards_are_not_recomputed(tmp_path, single, monkeypatch):
    extract(shard_cfg(tmp_path, "shard=0", "num_shards=2", "extract.flush_every=1"))
    real = ex.forward_layers
    calls = []

    # a plan reads the model's shape off one sentence: one forward before the batches
    def die_on_second_batch(*args):
        if len(calls) == 1 + 1:
            raise KeyboardInterrupt  # what SIGINT raises
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(ex, "forward_layers", die_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        extract(shard_cfg(tmp_path, "shard=1", "num_shards=2", "extract.flush_every=1"))
    calls.clear()
    monkeypatch.setattr(ex, "forward_layers", lambda *a: (calls.append(1), real(*a))[1])
    extract(shard_cfg(tmp_path, "shard=0", "num_shards=2"))  # finished: no forward at all
    assert calls == []
    extract(shard_cfg(tmp_path, "shard=1", "num_shards=2"))  # its first batch was flushed: one left
    assert len(calls) == 1 + 1  # the plan's look at the model's shape, and the batch left
    merged = AttentionCache(extract(shard_cfg(tmp_path, "num_shards=2"))["cache_dir"])
    assert_same_cache(merged, single)


@pytest.mark.slow
def test_joblib_multirun_over_shards_then_merge(tmp_path, single):
    cache_root = tmp_path / "sharded"
    cmd = [sys.executable, "extract.py", "-m", *TINY, *SMALL_BATCHES,
           f"paths.attention_cache={cache_root}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
           "shard=0,1", "num_shards=2", "hydra/launcher=local"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    summaries = [r.summary for r in record.collect(tmp_path / "sweep", kind="extract")]
    assert [s["shard"] for s in summaries] == [0, 1] and sum(s["stored"] for s in summaries) == 8
    merged = AttentionCache(extract(shard_cfg(tmp_path, "num_shards=2"))["cache_dir"], verify=True)
    assert_same_cache(merged, single)


def test_slurm_launcher_config_submits_one_gpu_job_per_shard(tmp_path, monkeypatch):
    """No cluster here: compose the launcher as Hydra would and render the sbatch script that
    submitit would hand to ``sbatch``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from submitit.slurm import slurm

    from .conftest import CONF

    monkeypatch.setenv("SLURM_PARTITION", "gpu-a100")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("extract", overrides=[*TINY, "split=train", "shard=0", "num_shards=4",
                                            "hydra/launcher=slurm", "hydra.launcher.timeout_min=30"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu-a100", 1, 30)
    script = slurm._make_sbatch_string(
        command="python extract.py shard=0 num_shards=4", folder=tmp_path,
        job_name=launcher.name, partition=launcher.partition, time=launcher.timeout_min, nodes=launcher.nodes,
        ntasks_per_node=launcher.tasks_per_node, cpus_per_task=launcher.cpus_per_task,
        gpus_per_node=launcher.gpus_per_node, mem=f"{launcher.mem_gb}GB", signal_delay_s=launcher.signal_delay_s,
        array_parallelism=launcher.array_parallelism, map_count=4, setup=list(launcher.setup),
    )
    for line in ("#SBATCH --partition=gpu-a100", "#SBATCH --gpus-per-node=1", "#SBATCH --time=30",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "#SBATCH --array=0-3%4",
                 "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"):
        assert line in script, script
