"""The families job's reading of probe runs: each quantity's Attn probe from the runs on its maps."""

from probing.analysis.families import probe_records, probe_uas
from probing.record import RunRecord


def run(seed, dev, quantity=None, model="enc"):
    return RunRecord(kind="probe", name="attn_only", model=model, data="ud_ewt", split={}, seed=seed,
                     metrics={"val/uas": dev}, config={} if quantity is None else {"extract": {"quantity": quantity}})


def test_the_attn_probe_of_each_quantity_reads_only_the_runs_on_its_maps():
    # a record without extract.quantity (written before it existed) read the attention weights
    runs = [run(0, 0.60), run(1, 0.62, "attention"), run(0, 0.40, "alti"), run(1, 0.42, "alti"),
            run(0, 0.33, "rollout", model="other")]
    assert probe_uas(runs, "enc") == {"attn_only": [0.60, 0.62]}
    assert probe_uas(runs, "enc", "alti") == {"attn_only": [0.40, 0.42]}
    assert probe_uas(runs, "enc", "rollout") == {}


def test_probe_runs_are_read_from_one_folder_or_several(tmp_path):
    run(0, 0.60).write(tmp_path / "table3" / "attn_only" / "seed0")
    run(0, 0.40, "alti").write(tmp_path / "quantities" / "attn_only-alti" / "seed0")
    one = probe_records(str(tmp_path / "table3"))
    both = probe_records([str(tmp_path / "table3"), str(tmp_path / "quantities")])
    assert [r.metrics["val/uas"] for r in one] == [0.60]
    assert sorted(r.metrics["val/uas"] for r in both) == [0.40, 0.60]
    assert probe_records(None) == []
