import csv

import pytest

from probing.compare import main
from probing.record import RunRecord, mean_std


def write_run(root, name, probe, seed, uas, model="m"):
    RunRecord(kind="probe", name=probe, model=model, data="tiny", split={}, seed=seed,
              metrics={"val/uas": uas, "test/uas": uas}).write(root / name)


def test_seeds_become_mean_and_sample_std_through_the_writer(tmp_path):
    write_run(tmp_path, "0", "attn_only", 0, 0.5)
    write_run(tmp_path, "1", "attn_only", 1, 0.7)
    write_run(tmp_path, "2", "right_branching", 0, 0.25, model=None)
    table = main([str(tmp_path)])
    assert [r["probe"] for r in table] == ["right_branching", "attn_only"]  # no model sorts first, then m
    with open(tmp_path / "compare.csv") as f:
        rows = {r["probe"]: r for r in csv.DictReader(f)}
    # mean of 50 and 70 is 60; the sample std is sqrt((10^2 + 10^2) / (2 - 1)) = 14.14 (the
    # population std would be 10); one seed has no spread
    assert rows["attn_only"]["test/uas (%)"] == "60.0 ± 14.1 (n=2)"
    assert (rows["right_branching"]["test/uas (%)"], rows["right_branching"]["seeds"]) == ("25.0 (n=1)", "0")
    assert rows["right_branching"]["model"] == "(no model)"
    assert "| m | tiny | attn_only | 60.0 ± 14.1 (n=2) | 60.0 ± 14.1 (n=2) | 0 1 |" in (tmp_path / "compare.md").read_text()
    assert {"compare.png", "compare.svg", "compare.pdf"} <= {p.name for p in tmp_path.iterdir()}


def test_mean_std_is_the_sample_std_with_its_count():
    assert mean_std([0.5, 0.7]) == "60.0 ± 14.1 (n=2)"
    assert mean_std([0.581]) == "58.1 (n=1)"
    assert mean_std([]) == "—"
    assert mean_std([0.1, 0.2, 0.3], digits=2) == "20.00 ± 10.00 (n=3)"
    with pytest.raises(TypeError):
        mean_std(None)
