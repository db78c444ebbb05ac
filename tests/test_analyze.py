"""analyze.py jobs through Hydra's compose API on the tiny encoder and treebank."""

import json
from pathlib import Path

import pytest

from probing.analysis_run import analyze

from .conftest import CONF

JOBS = sorted(p.stem for p in (Path(CONF) / "analysis").glob("*.yaml"))
# the tiny treebank has 8 train sentences; coreference reads the tiny data too (it has Entity=)
TINY_JOB = {
    "surface": ["analysis.split=train"],
    "syntax_heads": ["analysis.split=train", "analysis.min_count=2"],
    "coref_heads": ["analysis.split=train"],
    "head_similarity": ["analysis.split=train"],
    "attention_view": [],
    "sep_gradient": ["analysis.split=train"],
    "report": ["data@analysis.jobs.coref_heads.corpus=tiny"]
    + [f"analysis.jobs.{j}.split=train" for j in ("surface", "syntax_heads", "coref_heads", "head_similarity", "sep_gradient")],
}


@pytest.mark.parametrize("job", JOBS)
def test_every_analysis_runs_on_tiny(job, compose_tiny):
    cfg = compose_tiny("analyze", f"analysis={job}", "~logger", *TINY_JOB[job])
    summary = analyze(cfg)
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "summary.json").read_text())
    assert summary


def test_surface_writes_tables_and_figures(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=surface", "~logger", "analysis.split=train")
    summary = analyze(cfg)
    out = Path(cfg.paths.output_dir)
    assert {"surface_heads.csv", "surface_layers.md", "surface_by_layer.png", "entropy.png"} <= {p.name for p in out.iterdir()}
    assert summary["sentences"] == 8 and len(summary["end_by_layer"]) == 2
    rows = (out / "surface_heads.csv").read_text().splitlines()
    assert len(rows) == 1 + 8 and rows[1].startswith("1-1,1,")


def test_coref_counts_the_pronoun_of_the_tiny_treebank(compose_tiny):
    # tiny-train holds one scored mention: "it" -> "the dog" (entity 1)
    cfg = compose_tiny("analyze", "analysis=coref_heads", "~logger", "analysis.split=train")
    summary = analyze(cfg)
    assert summary["mentions_scored"] == 1 and summary["chunks_skipped"] == 0


def test_coref_without_entity_annotation_says_which_data_to_use(compose_tiny, tmp_path):
    cfg = compose_tiny("analyze", "analysis=coref_heads", "~logger", "analysis.split=dev")
    with pytest.raises(ValueError, match="no Entity= coreference annotation.*data=ud_gum"):
        analyze(cfg)


def test_sep_gradient_refuses_models_without_an_mlm_head(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=sep_gradient", "~logger", "model=minilm_l6")
    summary = analyze(cfg)
    assert "no masked-LM head" in summary["skipped"]
    assert not (Path(cfg.paths.output_dir) / "sep_gradient.csv").exists()


def test_report_gathers_every_section_offline(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=report", "~logger", *TINY_JOB["report"])
    summary = analyze(cfg)
    out = Path(cfg.paths.output_dir)
    html = (out / "report.html").read_text()
    assert len(summary) == 6 and "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")
    md = (out / "report.md").read_text()
    assert "Model `tiny_random` on `tiny`" in md and "(surface/surface_by_layer.png)" in md


def test_report_logs_its_tables_and_figures_to_an_offline_wandb_run(compose_tiny):
    # tables mix numbers with None (the paper's column is empty for relations it lacks)
    cfg = compose_tiny("analyze", "analysis=report", "logger=wandb", *TINY_JOB["report"])
    analyze(cfg)
    (run,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*")
    tables = {p.name.rsplit("_", 2)[0] for p in (run / "files" / "media" / "table").glob("*.table.json")}
    assert {"syntax_heads", "surface_layers", "coref_heads"} <= tables
    assert list((run / "files" / "media" / "images").glob("*.png"))
    # the caveat is said once, at the top, when every section reads the same model and data
    report = (Path(cfg.paths.output_dir) / "report.md").read_text()
    assert report.count("not MLM-pretrained BERT") == 1 and report.index("not MLM") < report.index("## ")


def test_tables_with_numpy_values_log_to_wandb(tmp_path):
    import numpy as np
    import wandb

    from probing.analysis.jobs import Context

    run = wandb.init(mode="offline", dir=str(tmp_path), project="t")
    try:
        ctx = Context(encoder=None, corpus=None, extraction=None, cache_root="", out=tmp_path / "o", wandb_run=run)
        rows = [{"relation": "All", "count": 5, "acc": 40.0, "paper": 34.5},
                {"relation": np.str_("nsubj"), "count": np.int64(3), "acc": np.float32(58.5), "paper": ""}]
        text = ctx.table("syntax_heads", rows)
    finally:
        wandb.finish()
    assert "nsubj" in text and (tmp_path / "o" / "syntax_heads.csv").read_text().count("\n") == 3
    assert list((tmp_path / "wandb").glob("offline-run-*/files/media/table/syntax_heads_*.table.json"))
