import csv
import json

import pytest

from probing.compare import main


def write_run(root, name, probe, seed, uas):
    d = root / name
    d.mkdir(parents=True)
    record = {"model": "m", "random_init": False, "data": "tiny", "probe": probe, "probe_config": probe,
              "seed": seed, "val/uas": uas, "test/uas": uas}
    (d / "metrics.json").write_text(json.dumps(record))


def test_seeds_become_mean_and_std_through_the_writer(tmp_path):
    write_run(tmp_path, "0", "attn_only", 0, 0.5)
    write_run(tmp_path, "1", "attn_only", 1, 0.7)
    write_run(tmp_path, "2", "right_branching", 0, 0.25)
    table = main([str(tmp_path)])
    assert list(table["probe_config"]) == ["right_branching", "attn_only"]  # the paper's order
    with open(tmp_path / "compare.csv") as f:
        rows = {r["probe"]: r for r in csv.DictReader(f)}
    # mean of 50 and 70 is 60; sample std is sqrt(2 * 10^2 / 1) = 14.14; one seed: std 0
    assert float(rows["attn_only"]["test/uas mean"]) == pytest.approx(60.0)
    assert float(rows["attn_only"]["test/uas std"]) == pytest.approx(14.142, abs=1e-3)
    assert (rows["right_branching"]["test/uas std"], rows["right_branching"]["seeds"]) == ("0.0", "1")
    assert "| m | tiny | attn_only | 60.0 | 14.1 | 60.0 | 14.1 | 2 |" in (tmp_path / "compare.md").read_text()
    assert {"compare.png", "compare.svg", "compare.pdf"} <= {p.name for p in tmp_path.iterdir()}
