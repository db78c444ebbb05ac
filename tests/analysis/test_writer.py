import csv
import json
import logging

import numpy as np
from matplotlib.figure import Figure

from probing.tracking import start_wandb
from probing.writer import Writer, plain


def test_table_writes_csv_and_markdown_with_missing_values(tmp_path):
    rows = [{"layer": 1, "to [CLS]": 0.25, "to [SEP]": None},
            {"layer": 2, "to [CLS]": np.float32(0.5), "to [SEP]": float("nan"), "note": "x"}]
    text = Writer(tmp_path).table("t", rows, digits=2)
    assert text.splitlines() == ["| layer | to [CLS] | to [SEP] | note |", "|---|---|---|---|",
                                 "| 1 | 0.25 | n/a | n/a |", "| 2 | 0.50 | n/a | x |"]
    assert (tmp_path / "t.md").read_text() == text + "\n"
    with open(tmp_path / "t.csv") as f:
        got = list(csv.DictReader(f))
    # missing values are empty cells, never 0
    assert got == [{"layer": "1", "to [CLS]": "0.25", "to [SEP]": "", "note": ""},
                   {"layer": "2", "to [CLS]": "0.5", "to [SEP]": "", "note": "x"}]
    assert Writer(tmp_path).table("empty", []) == "(no rows)" and (tmp_path / "empty.csv").read_text() == ""


def test_figure_in_three_formats(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    paths = Writer(tmp_path / "sub").figure(fig, "f")
    assert [p.name for p in paths] == ["f.png", "f.svg", "f.pdf"]
    png, svg, pdf = (p.read_bytes() for p in paths)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg[:500] and pdf[:5] == b"%PDF-"
    # no creation date, so the same figure gives the same SVG bytes twice
    assert Writer(tmp_path / "again").figure(fig, "f")[1].read_bytes() == svg


def test_json_is_plain(tmp_path):
    path = Writer(tmp_path).json("s", {"a": np.arange(2), "b": np.float64("nan"), "c": {"d": np.int64(3)}})
    assert json.loads(path.read_text()) == {"a": [0, 1], "b": None, "c": {"d": 3}}
    assert plain((np.str_("x"), [np.bool_(True)])) == ["x", [True]]


def test_tables_with_numpy_values_log_to_wandb(tmp_path):
    import wandb

    run = wandb.init(mode="offline", dir=str(tmp_path), project="t")
    try:
        # W&B types a column by its first row: numpy values and a paper column mixing numbers
        # with None used to break the table
        rows = [{"relation": "All", "count": 5, "acc": 40.0, "paper": 34.5},
                {"relation": np.str_("nsubj"), "count": np.int64(3), "acc": np.float32(58.5), "paper": None}]
        text = Writer(tmp_path / "o", run).table("syntax_heads", rows)
    finally:
        wandb.finish()
    assert "nsubj" in text and (tmp_path / "o" / "syntax_heads.csv").read_text().count("\n") == 3
    (table,) = tmp_path.glob("wandb/offline-run-*/files/media/table/syntax_heads_*.table.json")
    assert json.loads(table.read_text())["data"] == [["All", 5, 40.0, 34.5], ["nsubj", 3, 58.5, None]]


def test_start_wandb_gives_none_when_w_and_b_cannot_start(caplog):
    assert start_wandb(None, ["t"]) is None
    node = {"_target_": "probing.no_such_module.Logger"}
    with caplog.at_level(logging.WARNING, logger="probing.tracking"):
        assert start_wandb(node, ["t"]) is None
    assert "W&B unavailable" in caplog.text


def test_start_wandb_starts_an_offline_run(tmp_path):
    node = {"_target_": "pytorch_lightning.loggers.WandbLogger", "project": "t", "save_dir": str(tmp_path),
            "mode": "offline"}
    logger = start_wandb(node, ["analysis:x"], group="g", config={"a": 1})
    try:
        assert logger.experiment.tags == ("analysis:x",) and logger.experiment.group == "g"
        assert logger.experiment.config["a"] == 1
    finally:
        import wandb

        wandb.finish()




def test_html_page_written_and_logged_to_wandb(tmp_path):
    import wandb

    page = "<!DOCTYPE html><html><body><p id=x>ü</p></body></html>"
    assert Writer(tmp_path / "plain").html("page", page).read_text(encoding="utf-8") == page
    run = wandb.init(mode="offline", dir=str(tmp_path), project="t")
    try:
        path = Writer(tmp_path / "o", run).html("explorer", page)
    finally:
        wandb.finish()
    assert path == tmp_path / "o" / "explorer.html"
    (logged,) = tmp_path.glob("wandb/offline-run-*/files/media/html/explorer_*.html")
    # passed through unchanged: no stylesheet injected (it would be fetched from the network)
    assert logged.read_text(encoding="utf-8") == page
