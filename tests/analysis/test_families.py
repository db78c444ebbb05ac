"""The families job's reading of probe runs: each quantity's Attn probe from the runs on its maps."""

from probing.analysis.families import probe_uas
from probing.record import RunRecord


def test_the_attn_probe_of_each_quantity_reads_only_the_runs_on_its_maps():
    def run(seed, dev, quantity=None, model="enc"):
        return RunRecord(kind="probe", name="attn_only", model=model, data="ud_ewt", split={}, seed=seed,
                         metrics={"val/uas": dev}, config={} if quantity is None else {"extract": {"quantity": quantity}})
    # a record without extract.quantity (written before it existed) read the attention weights
    runs = [run(0, 0.60), run(1, 0.62, "attention"), run(0, 0.40, "alti"), run(1, 0.42, "alti"),
            run(0, 0.33, "rollout", model="other")]
    assert probe_uas(runs, "enc") == {"attn_only": [0.60, 0.62]}
    assert probe_uas(runs, "enc", "alti") == {"attn_only": [0.40, 0.42]}
    assert probe_uas(runs, "enc", "rollout") == {}
