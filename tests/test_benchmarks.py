"""The benchmark scripts run end to end on the tiny model and data (their numbers are not checked:
timings belong to benchmarks/results/, not to tests), and the summary reads what they wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from probing import PACKAGE_DIR
from probing.results.plan import ROOT


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Runs a benchmark script with the tiny data standing in for EWT dev; returns its rows."""
    tmp = tmp_path_factory.mktemp("bench")
    ewt = tmp / "data" / "ud-english-ewt"
    ewt.mkdir(parents=True)
    shutil.copy(PACKAGE_DIR / "data" / "tiny" / "tiny-dev.conllu", ewt / "en_ewt-ud-dev.conllu")
    env = {**os.environ, "PROBING_DATA_DIR": str(tmp / "data"), "PROBING_CACHE_DIR": str(tmp / "cache"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def run(script: str, *args: str) -> list[dict]:
        out = tmp / "results" / f"{script}.md"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *args, "--out", str(out)],
                       check=True, cwd=tmp, env=env, capture_output=True)
        return json.loads(out.with_suffix(".json").read_text())["rows"]

    run.results = tmp / "results"
    return run


@pytest.mark.slow
def test_precision_quantities_and_extraction_benchmarks_run_and_the_summary_reads_them(bench):
    rows = bench("precision", "--models", "tiny_random", "--limit", "4")
    assert [(r["model"], r["precision"]) for r in rows] == [("tiny_random", "fp32"), ("tiny_random", "bf16")]
    assert all(r["gflop"] > 0 and r["peak_gflops_per_s"] > 0 and r["sentences"] == 3 for r in rows)  # all of tiny dev
    rows = bench("quantities", "--models", "tiny_random", "--limit", "4", "--repeat", "1")
    assert [r["variant"] for r in rows] == ["bare_forward", "attention", "rollout", "norm", "alti"]
    rows = bench("extraction", "--models", "tiny_random", "--variants", "bare_forward", "pipeline")
    assert [(r["variant"], r["sentences"]) for r in rows] == [("bare_forward", 3), ("pipeline", 3)]
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--out-dir", str(bench.results),
                    "--skip", "extraction", "training", "memory", "precision", "quantities", "paper"],
                   check=True, capture_output=True)
    summary = (bench.results / "summary.md").read_text()
    assert "bf16 extraction speed-up over fp32 | — | tiny_random" in summary
    assert "rollout time / attention extraction | ≤ 0.05 | tiny_random" in summary
    assert "extraction time / bare batched forward | ≤ 1.15 | tiny_random" in summary
