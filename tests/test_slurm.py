"""hydra/launcher=slurm for real: a single-node SLURM cluster on this machine (tests/slurm_cluster.py;
``make slurm`` installs Debian's packages) runs a 2-shard extraction sweep and a 2-seed training sweep
through submitit, and each gives exactly what the same runs give locally."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from probing import record
from probing.attention.cache import AttentionCache

from .conftest import ROOT, TINY, compose_cfg, extract, run
from .slurm_cluster import slurm_cluster, unavailable

pytestmark = pytest.mark.slow

# 8 sentences in batches of 2: 4 batches, 2 for each shard
EXTRACT = ["split=train", "extract.batch_size=2"]
TRAIN = ["probe=attn_only", "~logger", "trainer.max_epochs=1", "threads=1"]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c


def on_this_cluster(cluster) -> list[str]:
    """The launcher's overrides for the test cluster: no GPU, one of its CPUs and little memory a job."""
    return ["hydra/launcher=slurm", f"hydra.launcher.partition={cluster.partition}",
            "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10"]


class Multirun:
    """``script -m`` started in ``tmp_path`` with its jobs on ``cluster``, left running while the test
    does the same work here; ``wait()`` returns its sweep directory, or fails with the launcher's
    output and the jobs' logs."""

    def __init__(self, cluster, script: str, overrides: list[str], tmp_path: Path):
        self.cluster, self.sweep = cluster, tmp_path / f"{Path(script).stem}-sweep"
        self.cmd = [sys.executable, str(ROOT / script), "-m", *TINY, *overrides, f"hydra.sweep.dir={self.sweep}",
                    *on_this_cluster(cluster)]
        # the jobs start as `python -m submitit.core._submit` in tmp_path: PYTHONPATH makes them import
        # this checkout's probing, not whichever one the venv was installed from
        env = {**cluster.env, "PROBING_ROOT": str(tmp_path), "PROBING_CACHE_DIR": str(tmp_path / "slurm-cache"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.log = tmp_path / f"{self.sweep.name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.deadline = time.monotonic() + 300

    def wait(self) -> Path:
        why = self.failure()
        if why:
            # submitit's complaints that sacct answers nothing, once a poll, would bury the error
            launcher = "\n".join(line for line in self.log.read_text().splitlines() if "sacct" not in line)
            jobs = sorted((self.sweep / ".submitit").rglob("*_log.*"))
            job_logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in jobs)
            daemons = "" if why.startswith("exit") else self.cluster.logs()
            pytest.fail(f"{' '.join(self.cmd)}\n{why}\n--- launcher\n{launcher[-4000:]}\n{job_logs}\n{daemons}")
        return self.sweep

    def failure(self) -> str | None:
        """Wait for the launcher; why it failed, or None. Without accounting (sacct) submitit learns
        that a job ended only from its result file: a job killed before writing one would leave it
        waiting forever, so an empty queue for a while after the submission ends the wait too."""
        empty_since = None
        while self.proc.poll() is None:
            now = time.monotonic()
            if any((self.sweep / ".submitit").rglob("*_submitted.pkl")):
                queued = self.cluster.run("squeue", "-h", "-o", "%i").strip()
                empty_since = None if queued else (empty_since or now)
            if now > self.deadline or (empty_since and now - empty_since > 30):
                self.proc.kill()
                self.proc.wait()
                return ("killed after 300 s" if now > self.deadline else
                        "the jobs left the queue 30 s ago and the launcher still waits for their results")
            time.sleep(0.5)
        return f"exit status {self.proc.returncode}" if self.proc.returncode else None


def job_ids(sweep: Path) -> list[str]:
    """SLURM's array job ids (``<job>_<task>``) of the sweep's runs, as each run's Hydra config recorded them."""
    return [str(OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.job.id)
            for run in sorted(p for p in sweep.iterdir() if p.name.isdigit())]


def metrics(run: Path) -> dict[str, float]:
    """A train run's val/ and test/ metrics, from what the run recorded in its directory."""
    return {k: v for k, v in record.read(run).metrics.items() if k.startswith(("val/", "test/"))}


def test_a_shard_sweep_on_slurm_merges_into_the_single_process_cache(cluster, tmp_path):
    sharded = tmp_path / "sharded"
    on_slurm = Multirun(cluster, "extract.py",
                        [*EXTRACT, "shard=0,1", "num_shards=2", f"paths.attention_cache={sharded}"], tmp_path)
    single = AttentionCache(extract(compose_cfg("extract", [*TINY, *EXTRACT, f"paths.attention_cache={tmp_path / 'single'}"],
                                               tmp_path))["cache_dir"])
    sweep = on_slurm.wait()
    (array,) = {job.split("_")[0] for job in job_ids(sweep)}
    assert job_ids(sweep) == [f"{array}_0", f"{array}_1"]  # one array job, a task per shard
    summaries = [record.read(sweep / str(i)).summary for i in (0, 1)]
    assert [(s["shard"], s["stored"]) for s in summaries] == [(0, 4), (1, 4)]
    # the merge: `extract.py num_shards=2` without a shard
    merged = AttentionCache(extract(compose_cfg("extract", [*TINY, *EXTRACT, "num_shards=2",
                                                           f"paths.attention_cache={sharded}"], tmp_path))["cache_dir"],
                            verify=True)
    assert merged.meta["merged_from_shards"] == 2
    assert (merged.dir / "attention.f16").read_bytes() == (single.dir / "attention.f16").read_bytes()
    assert (merged.dir / "index.npy").read_bytes() == (single.dir / "index.npy").read_bytes()


def train_here(seed: int, tmp_path: Path) -> Path:
    """The same run in this process; its run directory."""
    cfg = compose_cfg("train", [*TINY, *TRAIN, f"seed={seed}", f"paths.attention_cache={tmp_path / 'local-cache'}"],
                      tmp_path / f"local-{seed}")
    threads = torch.get_num_threads()
    try:
        run(cfg)
    finally:
        torch.set_num_threads(threads)  # threads=1 would hold for the rest of the session
    return Path(cfg.paths.output_dir)


def test_a_seed_sweep_on_slurm_gives_the_local_metrics(cluster, tmp_path):
    on_slurm = Multirun(cluster, "train.py", [*TRAIN, "seed=0,1"], tmp_path)
    local = [metrics(train_here(seed, tmp_path)) for seed in (0, 1)]
    sweep = on_slurm.wait()
    assert len(job_ids(sweep)) == 2
    for seed in (0, 1):
        assert f"seed={seed}" in OmegaConf.load(sweep / str(seed) / ".hydra" / "overrides.yaml")
        assert metrics(sweep / str(seed)) == local[seed], seed
    assert local[0] != local[1]  # the seeds differ, so the equality says something
