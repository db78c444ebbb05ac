"""``python -m probing.results --quick``: every stage of the results command on the tiny data."""

from __future__ import annotations

import re

import pytest

from probing import provenance, results

pytestmark = pytest.mark.slow  # about 30 process starts of train.py and analyze.py


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert results.main(["--quick", "--out", str(out)]) == 0
    return out / "results"


def test_every_stage_writes_its_file_under_a_provenance_header(quick):
    written = sorted(p.name for p in quick.glob("*.md"))
    # benchmarks time the real models and are not part of --quick
    assert written == ["analysis_tiny_llama.md", "analysis_tiny_random.md", "aspect_opinion.md", "definitions.md",
                       "families.md", "lr_sweep.md", "table3.md", "table3_default.md"]
    device = provenance.device()
    for path in quick.glob("*.md"):
        head = path.read_text().splitlines()[0]
        assert head.startswith("Written by `python -m probing.results --quick"), path.name
        assert re.search(r" on \d{4}-\d{2}-\d{2}T\d{2}:\d{2}", head) and device in head and "commit `" in head, path.name


def test_table3_holds_the_hand_counted_right_branching_uas(quick):
    # tiny dev 8/19 and tiny test 9/22 (see test_train.py), in % with one decimal, both recipes
    rows = [line for name in ("table3.md", "table3_default.md") for line in (quick / name).read_text().splitlines()
            if line.startswith("| right-branching |")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "26"  # the paper's WSJ dev number beside ours
        assert cells[2:4] == [f"{100 * 8 / 19:.1f}", f"{100 * 9 / 22:.1f}"]


def test_quick_never_touches_the_committed_results(quick):
    # --quick writes under its own directory only; README's block and results/ are the full run's
    assert quick.parent.name != "results" or quick.parent.parent != results.ROOT
    assert not re.search(r"results-quick|/tmp/", (results.ROOT / "README.md").read_text())


def test_readme_block_takes_the_claims_from_the_committed_page_not_from_outputs(tmp_path):
    plan = results.Plan(False, tmp_path / "outputs", tmp_path / "results")  # outputs/ empty, as on a fresh clone
    plan.results.mkdir()
    (plan.results / "families.md").write_text("Written by ...\n\n# Families\n\n## The paper's claims\n\n"
                                              "| claim | m |\n|---|---|\n| sink | holds |\n\n## Sink share per layer\n\n"
                                              "| layer | share |\n")
    block = results.readme_block(plan)
    assert "| claim | m |\n|---|---|\n| sink | holds |" in block
    assert "share" not in block.split("| sink | holds |", 1)[1]
