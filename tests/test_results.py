"""The results command: its tables from canned run records, and one real stage on the tiny data."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from probing import provenance
from probing.record import RunRecord
from probing.results import pages, tables
from probing.results.__main__ import main
from probing.results.pages import Block, Page
from probing.results.plan import ROOT


def probe(name, model, seed, dev, test=None, **extra) -> RunRecord:
    return RunRecord(kind="probe", name=name, model=model, data="ud_ewt", split={}, seed=seed,
                     metrics={"val/uas": dev, "test/uas": dev if test is None else test}, **extra)


CANNED = [
    # attention-free: no model, so they stand in every model's column
    probe("right_branching", None, 0, 0.32), probe("right_branching", None, 1, 0.32),
    probe("distances_plus_glove", None, 0, 0.58), probe("distances_plus_glove", None, 1, 0.60),
    probe("attn_only", "enc", 0, 0.61), probe("attn_only", "enc", 1, 0.63),
    probe("attn_plus_glove", "enc", 0, 0.70), probe("attn_plus_glove", "enc", 1, 0.72),
    # a causal LM whose Attn falls below Distances + GloVe: the ordering must say so
    probe("attn_only", "lm", 0, 0.55), probe("attn_plus_glove", "lm", 0, 0.68),
]


def test_table3_cells_share_the_attention_free_runs_and_say_their_seeds():
    rows = {r["probe"]: r for r in tables.table3_rows(CANNED, ["enc", "lm"])}
    assert rows["right-branching"]["paper (WSJ-SD dev)"] == 26
    # one pair of runs, in both models' columns; the sample std of 0.58, 0.60 is 1.4 points
    assert rows["Distances + GloVe"]["enc dev"] == rows["Distances + GloVe"]["lm dev"] == "59.0 ± 1.4 (n=2)"
    assert rows["Attn"]["lm dev"] == "55.0 (n=1)" and rows["Attn"]["enc dev"] == "62.0 ± 1.4 (n=2)"
    assert rows["random-init Attn + GloVe"]["lm dev"] == "—"


def test_orderings_list_every_model_the_causal_lm_included():
    rows = tables.orderings(CANNED, ["enc", "lm"])
    failing = [(r["model"], r["a"], r["b"]) for r in rows if not r["replicates"]]
    # the paper: right-branching 26 < Distances 58 < Attn 61 < Attn + GloVe 77; here right-branching
    # (32) is above nothing it should not be, and only lm's Attn (55) falls below Distances (59)
    assert failing == [("lm", "Distances + GloVe", "Attn")]
    (line,) = tables.ordering_lines(rows)
    assert line == ("- **Does not replicate** (lm): Distances + GloVe 59.0 (n=2) vs Attn 55.0 (n=1), where the paper "
                    "had 58 vs 61; gap +4.0, its sample std 1.4.")


def test_an_ordering_inside_the_seed_spread_is_marked():
    recs = [probe("distances_plus_glove", None, s, v) for s, v in enumerate((0.50, 0.70))]
    recs += [probe("attn_only", "m", s, v) for s, v in enumerate((0.58, 0.59))]
    (line,) = tables.ordering_lines(tables.orderings(recs, ["m"]))
    # 60.0 - 58.5 = 1.5; the gap's std is sqrt(14.14^2 + 0.71^2) = sqrt(200 + 0.5) = 14.2
    assert line.endswith("gap +1.5, its sample std 14.2 (within the seed spread).")


def test_recipe_rows_name_the_runs_that_hit_the_epoch_limit():
    paper = [probe("attn_only", "enc", 0, 0.60)]
    default = [probe("attn_only", "enc", 0, 0.62, best_epoch=5, epochs_run=9, max_epochs=30),
               probe("attn_only", "enc", 1, 0.61, best_epoch=29, epochs_run=30, max_epochs=30)]
    rows, capped = tables.recipe_rows(paper, default, ["enc"])
    assert rows == [{"model": "enc", "probe": "Attn", "paper recipe dev": "60.0 (n=1)",
                     "default dev": "61.5 ± 0.7 (n=2)", "default − paper": "+1.5", "default ≥ paper": "yes",
                     "best epoch / epochs run": "5/9, 29/30"}]
    assert capped == ["enc Attn seed 1 (best epoch 29 of 30)"]


def test_readme_block_is_built_from_the_pages_data_in_stage_order(tmp_path):
    late = Page("Late", "intro", [Block("Kept out", rows=[{"a": 1}]), Block("Claims", "text", [{"claim": "x"}],
                                                                            readme=True)], link="Late page")
    early = Page("Early", "intro", [Block("Table 3", rows=[{"probe": "Attn", "m dev": "61.0 (n=1)"}], readme=True)])
    pages.write(tmp_path, "zz_late", late, ["--only", "x"], 60.0, ["m"], order=5)
    pages.write(tmp_path, "aa_early", early, [], 1.0, ["m"], order=7)
    (tmp_path / "aa_early.md").write_text("edited by hand: not read")
    block = pages.readme_block(tmp_path)
    links = [line for line in block.splitlines() if line.startswith("- **")]
    assert links == ["- **Late page**: [`results/zz_late.md`](results/zz_late.md)",
                     "- **Early**: [`results/aa_early.md`](results/aa_early.md)"]
    assert block.index("#### Claims") < block.index("#### Table 3") and "Kept out" not in block
    assert "| Attn | 61.0 (n=1) |" in block and "edited by hand" not in block
    head = (tmp_path / "zz_late.md").read_text().splitlines()[0]
    assert "python -m probing.results --only x" in head and "This stage took 1.0 min (models: m)" in head


@pytest.fixture(scope="module")
def quick_table3(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    readme = (ROOT / "README.md").read_bytes()
    committed = {p.name: p.stat().st_mtime_ns for p in (ROOT / "results").glob("*")}
    assert main(["--quick", "--only", "table3", "--models", "tiny_random", "tiny_llama", "--out", str(out)]) == 0
    # --quick writes under --out only: README's block and results/ are the full run's
    assert (ROOT / "README.md").read_bytes() == readme
    assert {p.name: p.stat().st_mtime_ns for p in (ROOT / "results").glob("*")} == committed
    return out


@pytest.mark.slow
def test_one_real_stage_writes_its_page_its_data_and_the_hand_counted_cells(quick_table3):
    results = quick_table3 / "results"
    assert sorted(p.name for p in results.glob("*.md")) == ["table3.md"]
    head = (results / "table3.md").read_text().splitlines()[0]
    assert head.startswith("Written by `python -m probing.results --quick --only table3")
    assert re.search(r" on \d{4}-\d{2}-\d{2}T\d{2}:\d{2}", head) and provenance.device() in head
    assert "commit `" in head and re.search(r"This stage took \d+\.\d min \(models: tiny_random, tiny_llama", head)
    data = json.loads((results / "table3.json").read_text())
    (table,) = [b for b in data["blocks"] if b["heading"].startswith("Table 3")]
    rb = next(r for r in table["rows"] if r["probe"] == "right-branching")
    # tiny dev 8/19 and tiny test 9/22 (see test_train.py), the same run in every model's column
    assert rb["paper (WSJ-SD dev)"] == 26
    for model in ("tiny_random", "tiny_llama"):
        assert (rb[f"{model} dev"], rb[f"{model} test"]) == (f"{100 * 8 / 19:.1f} (n=1)", f"{100 * 9 / 22:.1f} (n=1)")
    # the attention-free rows ran once, not once per model; the caches stayed under --out
    assert len(list((quick_table3 / "table3" / "paper" / "no_model").rglob("record.json"))) == 2
    assert (quick_table3 / "cache" / "attention").is_dir()


@pytest.mark.slow
def test_with_several_jobs_the_caches_the_train_runs_read_are_built_first_once(tmp_path, monkeypatch):
    from probing.results.plan import Executor, Plan
    from probing.results.stages import table3_specs

    monkeypatch.setenv("PROBING_CACHE_DIR", str(tmp_path / "cache"))
    plan = Plan.load(True, tmp_path / "runs", models=["tiny_random"], jobs=2)
    plan.seeds = [0, 1]
    specs = table3_specs(plan, "paper", probes=["right_branching", "attn_only", "attn_plus_glove"])
    assert len(specs) == 6
    # the attention-free rows read no cache; the two attention probes over every seed read one set
    assert Executor(plan).caches_first(specs) == 1
    built = sorted(p for p in (tmp_path / "cache" / "attention" / "tiny_random").iterdir() if p.is_dir())
    assert len(built) == 3  # train, dev and test
    stamps = [p.stat().st_mtime_ns for d in built for p in d.rglob("*")]
    # opened again, nothing is rebuilt
    assert Executor(plan).caches_first(specs) == 1
    assert [p.stat().st_mtime_ns for d in built for p in d.rglob("*")] == stamps


def test_plan_settings_narrow_the_quantity_probes(tmp_path):
    from probing.results.plan import Plan
    from probing.results.stages import Quantities

    def probes(plan):
        return sorted(dict(a.split("=", 1) for a in s.overrides if "=" in a).get("extract.quantity", "attention")
                      for s in Quantities().specs(plan) if s.config == "train")

    every = Plan.load(True, tmp_path / "runs", models=["tiny_random"])
    assert every.quantity_probes == ["norm", "rollout", "alti"]
    assert probes(every) == ["alti", "attention", "norm", "rollout"]
    narrowed = Plan.load(True, tmp_path / "runs", models=["tiny_random"], settings=["quantity_probes=[rollout]"])
    assert probes(narrowed) == ["attention", "rollout"]
    # the analysis jobs still run on every quantity
    assert (sum(s.config == "analyze" for s in Quantities().specs(narrowed))
            == sum(s.config == "analyze" for s in Quantities().specs(every)))


def test_the_commit_is_dirty_for_changed_code_not_for_the_pages_the_command_writes(tmp_path, monkeypatch):
    monkeypatch.delenv("PROBING_COMMIT", raising=False)

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table3.md").write_text("old\n")
    (tmp_path / "README.md").write_text("old\n")
    (tmp_path / "train.py").write_text("old\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    head = provenance.commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,}", head)
    (tmp_path / "results" / "table3.md").write_text("new\n")
    (tmp_path / "README.md").write_text("new\n")
    assert provenance.commit(tmp_path) == head
    (tmp_path / "train.py").write_text("new\n")
    assert provenance.commit(tmp_path) == head + "+dirty"


def test_definitions_run_an_attention_free_probe_once_not_once_per_encoder(tmp_path):
    from probing.results.plan import Plan
    from probing.results.stages import Definitions

    plan = Plan.load(True, tmp_path / "runs", models=["tiny_random", "tiny_llama"])
    plan.families = {"tiny_random": "encoder", "tiny_llama": "encoder"}  # two encoders
    specs = Definitions().specs(plan)
    free = [s for s in specs if "probe=distances_plus_glove" in s.overrides]
    assert free and not any(o.startswith("model=") for s in free for o in s.overrides)
    assert len(free) == len({s.overrides for s in free}) == 2  # the released definition and one option
    attn = [s for s in specs if "probe=attn_only" in s.overrides]
    assert {o for s in attn for o in s.overrides if o.startswith("model=")} == {"model=tiny_random", "model=tiny_llama"}


def test_a_run_writing_its_pages_elsewhere_leaves_readme_alone(tmp_path, monkeypatch):
    from probing.results import __main__ as cli
    from probing.results.stages import Stage

    class Fake(Stage):
        name, title = "fake", "A fake stage"

        def run(self, plan, execute):
            return {"fake": Page("Fake", "intro", [Block("numbers", rows=[{"a": 1}], readme=True)], link=self.title)}

    monkeypatch.setattr(cli, "STAGES", {"fake": Fake()})
    calls = []
    monkeypatch.setattr(cli.pages, "update_readme", lambda *a: calls.append(a))
    monkeypatch.setenv("PROBING_DATA_DIR", str(tmp_path))
    assert cli.main(["--only", "fake", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "pages"),
                     "--cache", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "pages" / "fake.md").is_file() and (tmp_path / "pages" / "fake.json").is_file()
    assert calls == []  # the benchmark of the whole paper writes its pages to a temporary folder
