"""analyze.py jobs through Hydra's compose API on the tiny encoder and treebank.

Jobs are discovered from conf/analysis/ (a new job is tested without editing this file). Exact
numbers come from hand-written maps put in place of the attention store (:class:`FakeStore`), so
each expected value below can be counted from the tiny treebank by hand; the comments do that.
"""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from probing import record
from probing.analysis.base import Context, job_classes
from probing.attention.layout import Layout

from .conftest import analyze, run

JOBS = job_classes()
BOTH, NONE = Layout(True, True), Layout(False, False)


def tiny(compose_tiny, job, *overrides):
    """The job's config on model=tiny_random data=tiny, with the job's own tiny overrides."""
    return compose_tiny("analyze", f"analysis={job}", "~logger", *JOBS[job].tiny_overrides, *overrides)


def read_csv(path: Path) -> dict[str, dict]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {next(iter(r.values())): r for r in rows}


@pytest.mark.parametrize("job", sorted(set(JOBS) - {"report"}))
def test_every_analysis_runs_on_tiny(job, compose_tiny):
    cfg = tiny(compose_tiny, job)
    rec = run(cfg)
    out = Path(cfg.paths.output_dir)
    # the runner, not the job, leaves the record, the caveat and the section's page
    assert rec.kind == "analysis" and rec.name == job and rec.title and rec.summary
    assert rec.caveat.startswith("Model `tiny_random`") and not rec.markdown.startswith(rec.caveat)
    assert rec.config["analysis"]["_target_"] == cfg.analysis._target_ and rec.wall_time_s > 0
    assert rec.provenance["device"] and rec.provenance["command"].startswith("python analyze.py ")
    assert f"analysis={job}" in rec.provenance["command"].split()
    page = (out / "section.md").read_text()
    assert page.startswith(f"# {rec.title}\n\n> {rec.caveat}")
    assert record.read(out).summary == json.loads(json.dumps(rec.summary))  # what tables will read
    files = {p.name for p in out.iterdir()}
    assert all(f in files for f in rec.figures)
    # every figure in PNG, SVG and PDF; every table in CSV and Markdown
    for png in (f for f in files if f.endswith(".png")):
        assert {png[:-4] + ".svg", png[:-4] + ".pdf"} <= files, png
    for table in (f for f in files if f.endswith(".csv")):
        assert table[:-4] + ".md" in files


class FakeStore:
    """Hand-written maps in place of the attention store: ``rule(sentence, layout)`` -> (K, T, T)."""

    def __init__(self, sentences, rule, layout, num_layers=1, num_heads=2):
        self._maps = [rule(s, layout).astype(np.float16) for s in sentences]
        self.layout, self.num_layers, self.num_heads = layout, num_layers, num_heads
        self.num_maps = num_layers * num_heads
        self.kept, self.skipped = np.arange(len(sentences)), {}

    def __len__(self):
        return len(self._maps)

    def maps(self, i):
        return self._maps[i]

    def pairs(self, sentences):
        for i in self.kept:
            yield self._maps[i], sentences[i]


def use_maps(monkeypatch, rule, layout=BOTH):
    def attention(self, split=None, corpus=None):
        sentences = self.sentences(split, corpus)
        return FakeStore(sentences, rule, layout), sentences

    monkeypatch.setattr(Context, "attention", attention)
    monkeypatch.setattr(Context, "unit_attention",
                        lambda self, corpus, split, units, what, tag: FakeStore(units, rule, layout))


def shift_rule(sentence, layout):
    """Head 1-1 attends to the previous token (the first row to itself), 1-2 to the next token
    (the last row to itself), over every token row the layout has."""
    t = layout.num_tokens(len(sentence))
    maps = np.zeros((2, t, t))
    maps[0, np.arange(t), np.maximum(np.arange(t) - 1, 0)] = 1.0
    maps[1, np.arange(t), np.minimum(np.arange(t) + 1, t - 1)] = 1.0
    return maps


def test_surface_tables_from_hand_written_maps(compose_tiny, monkeypatch):
    # tiny dev: 3 sentences of 7, 8, 7 words -> 9 + 10 + 9 = 28 token rows with [CLS]/[SEP].
    # 1-1 (previous token): rows 0 and 1 of each sentence land on [CLS] (6/28), only row 0 on
    # itself (3/28), [SEP]'s row on the last word (sep_sep 0). 1-2 (next token) mirrors it.
    use_maps(monkeypatch, shift_rule)
    cfg = tiny(compose_tiny, "surface")
    summary = analyze(cfg)
    assert (summary["sentences"], summary["rows"], summary["layout"]) == (3, 28, "start+end")
    heads = read_csv(Path(cfg.paths.output_dir) / "surface_heads.csv")
    want = {"1-1": dict(start=6 / 28, end=0, self=3 / 28, prev=1, next=0, sep_sep=0),
            "1-2": dict(start=0, end=6 / 28, self=3 / 28, prev=0, next=1, sep_sep=1)}
    for head, values in want.items():
        for key, value in values.items():
            assert float(heads[head][key]) == pytest.approx(value, abs=1e-3), (head, key)
    layer = read_csv(Path(cfg.paths.output_dir) / "surface_layers.csv")["1"]
    assert float(layer["to [CLS]"]) == pytest.approx(3 / 28, abs=1e-3)  # mean of 6/28 and 0
    assert float(layer["[SEP]->[SEP]"]) == pytest.approx(0.5, abs=1e-3)


def test_surface_without_special_tokens_reports_them_missing(compose_tiny, monkeypatch):
    # SmolLM2-like layout: T = n, 22 rows; nothing about [CLS]/[SEP] can be measured: empty
    # CSV cells and n/a in Markdown, never 0. The first word of each sentence has no previous
    # token, so 1-1 keeps it on itself (3/22).
    use_maps(monkeypatch, shift_rule, NONE)
    cfg = tiny(compose_tiny, "surface")
    summary = analyze(cfg)
    assert (summary["rows"], summary["layout"], summary["start_by_layer"]) == (22, "no specials", None)
    out = Path(cfg.paths.output_dir)
    heads = read_csv(out / "surface_heads.csv")
    assert [heads["1-1"][k] for k in ("start", "end", "sep_sep", "cls_entropy")] == ["", "", "", ""]
    assert float(heads["1-1"]["self"]) == pytest.approx(3 / 22, abs=1e-3) and float(heads["1-1"]["prev"]) == 1
    md = (out / "surface_layers.md").read_text().splitlines()
    assert md[0] == ("| layer | to first word (sink) | to start token | to end token | to . , | prev | next "
                     "| end token->end token | entropy | start token entropy |")
    # the sink: in each of the 3 sentences, head 1-1's words 1 and 2 put everything on word 1
    # (6 of 22 rows); 1-2 (next token) never does; the layer's column is their mean, 3/22
    assert md[2].split(" | ")[2:4] == ["n/a", "n/a"]
    assert float(heads["1-1"]["first"]) == pytest.approx(6 / 22, abs=1e-3)
    assert float(heads["1-2"]["first"]) == 0 and float(md[2].split(" | ")[1]) == pytest.approx(3 / 22, abs=1e-3)


def spread_rule(sentence, layout):
    """Head 1-1 attends to itself only (predicts nothing); 1-2 spreads each word's row equally over
    its dependents (a word without dependents, and every special token, attends to itself)."""
    n = len(sentence)
    t = layout.num_tokens(n)
    maps = np.zeros((2, t, t))
    maps[:, np.arange(t), np.arange(t)] = 1.0
    for h in range(n):
        deps = [layout.word_token(d) for d in range(n) if sentence.heads[d] == h + 1]
        if deps:
            maps[1, layout.word_token(h)] = 0.0
            maps[1, layout.word_token(h), deps] = 1.0 / len(deps)
    return maps


# tiny dev, relations with >= 2 instances (the job's tiny override): det 3, nsubj 3, advmod 2,
# amod 2, obj 2. Baselines (offsets -3..+3, ties to the earlier offset): det The/this +1, the +2
# -> +1 2/3; nsubj waiter/robots +1, We +3 -> +1 2/3; advmod quickly -3, definitely +1 -> -3 1/2;
# amod +1 twice; obj soup -2, visitors -3 -> -3 1/2.
BASELINES = {"det": (1, 66.7), "nsubj": (1, 66.7), "advmod": (-3, 50.0), "amod": (1, 100.0), "obj": (-3, 50.0)}
# All at +1: The waiter our | definitely this | Anthropomorphic robots astonished = 8 of 22
ALL_BASELINE = (1, 36.4)


def test_syntax_table_from_hand_written_maps(compose_tiny, monkeypatch):
    # default (released) column rule: each word's head is the word attending most TO it; in
    # 1-2 that is its gold head, for the 19 of 22 words that have one (3 are ROOT-attached)
    use_maps(monkeypatch, spread_rule)
    cfg = tiny(compose_tiny, "syntax_heads")
    summary = analyze(cfg)
    rows = read_csv(Path(cfg.paths.output_dir) / "syntax_heads.csv")
    assert list(rows) == ["All", "det", "nsubj", "advmod", "amod", "obj"]
    assert [rows["All"][k] for k in ("count", "head", "direction", "accuracy")] == ["22", "1-2", "head->dep", "86.4"]
    assert (int(rows["All"]["baseline_offset"]), float(rows["All"]["baseline_accuracy"])) == ALL_BASELINE
    for rel, (offset, acc) in BASELINES.items():
        assert [rows[rel][k] for k in ("head", "direction", "accuracy")] == ["1-2", "head->dep", "100.0"], rel
        assert (int(rows[rel]["baseline_offset"]), float(rows[rel]["baseline_accuracy"])) == (offset, acc), rel
    # paper columns: obj is the paper's dobj, All is All
    assert [rows["obj"][k] for k in ("paper_head", "paper_acc", "paper_baseline", "paper_offset")] == [
        "8-10", "86.8", "40.0", "-2"]
    assert rows["All"]["paper_acc"] == "34.5"
    assert summary["rows"]["det"]["accuracy"] == 100.0


def test_syntax_head_row_rule_counts_first_dependents(compose_tiny, monkeypatch):
    # head_row: d is right when its head attends most to d; 1-2's head rows are spread evenly,
    # so argmax picks each head's FIRST dependent: The, waiter, our (sentence 1), We, to (2),
    # Anthropomorphic, robots, the (3) -> 8 of 22 = 36.4; det: The and the, not this -> 66.7
    use_maps(monkeypatch, spread_rule)
    cfg = tiny(compose_tiny, "syntax_heads", "analysis.head_dep_rule=head_row")
    analyze(cfg)
    rows = read_csv(Path(cfg.paths.output_dir) / "syntax_heads.csv")
    assert (rows["All"]["head"], rows["All"]["accuracy"]) == ("1-2", "36.4")
    assert {r: rows[r]["accuracy"] for r in BASELINES} == {
        "det": "66.7", "nsubj": "100.0", "advmod": "0.0", "amod": "50.0", "obj": "0.0"}


def five_back_rule(sentence, layout):
    """Head 1-1 attends to itself; 1-2 from every word to the word 5 before it (or itself)."""
    n = len(sentence)
    t = layout.num_tokens(n)
    maps = np.zeros((2, t, t))
    maps[:, np.arange(t), np.arange(t)] = 1.0
    for w in range(5, n):
        maps[1, layout.word_token(w)] = 0.0
        maps[1, layout.word_token(w), layout.word_token(w - 5)] = 1.0
    return maps


def test_coref_counts_the_pronoun_of_the_tiny_treebank(compose_tiny, monkeypatch):
    # tiny train: 3 documents -> 3 chunks. One mention has an antecedent: "it" -> "the dog"
    # (entity 1). In its chunk (Kaczynski's 6 words first) "it" is word 14 and "dog" word 9, so
    # 1-2 (five back) is right; the nearest preceding mention is "the dog" too; no earlier
    # mention is headed "it".
    use_maps(monkeypatch, five_back_rule)
    summary = analyze(tiny(compose_tiny, "coref_heads"))
    # "it" is a pronoun; with no earlier "it" the strict reading counts it wrong, the fallback one
    # takes the nearest mention, "the dog", which is right
    # (no proper or nominal mention is scored: their accuracies are 0 of 0, written 0.0)
    both = {"same_head_accuracy_none": 0.0, "same_head_accuracy_none_pronoun": 0.0,
            "same_head_accuracy_none_proper": 0.0, "same_head_accuracy_none_nominal": 0.0,
            "same_head_accuracy_nearest": 1.0, "same_head_accuracy_nearest_pronoun": 1.0,
            "same_head_accuracy_nearest_proper": 0.0, "same_head_accuracy_nearest_nominal": 0.0}
    assert summary == {"chunks": 3, "chunks_skipped": 0, "mentions_scored": 1, "best_head": "1-2",
                       "best_accuracy": 1.0, "nearest_accuracy": 1.0, "same_head_fallback": "none",
                       "same_head_accuracy": 0.0, **both}
    fallback = analyze(tiny(compose_tiny, "coref_heads", "analysis.same_head_fallback=nearest"))
    assert fallback["same_head_accuracy"] == 1.0 and fallback["same_head_fallback"] == "nearest"
    assert {k: v for k, v in fallback.items() if k.startswith("same_head_accuracy_")} == both
    with pytest.raises(Exception, match="same_head_fallback must be one of"):
        analyze(tiny(compose_tiny, "coref_heads", "analysis.same_head_fallback=closest"))


def test_coref_without_entity_annotation_says_what_to_do(compose_tiny):
    cfg = tiny(compose_tiny, "coref_heads", "split=dev")  # tiny dev has no Entity=
    with pytest.raises(ValueError, match="no Entity= coreference annotation.*ud_gum"):
        analyze(cfg)


def test_joined_splits_as_in_the_readme(compose_tiny):
    # `python analyze.py analysis=surface split=train+dev+test`: 8 + 3 + 3 sentences,
    # 90 + 28 + 31 token rows (words + [CLS] + [SEP]), read by the real tiny encoder
    summary = analyze(tiny(compose_tiny, "surface", "split=train+dev+test"))
    assert (summary["sentences"], summary["rows"]) == (14, 149)


def test_the_gradient_job_refuses_models_without_an_lm_head(compose_tiny):
    cfg = tiny(compose_tiny, "gradient", "model=minilm_l6")
    summary = analyze(cfg)
    assert "has no trained LM head" in summary["skipped"]
    assert not (Path(cfg.paths.output_dir) / "gradient.csv").exists()


def test_the_gradient_job_reads_the_sink_of_a_causal_lm(compose_tiny):
    cfg = tiny(compose_tiny, "gradient", "model=tiny_gemma3")
    summary = analyze(cfg)
    # Gemma reads <bos> first: that is the sink the next-token gradient is split by
    assert summary["objective"] == "causal" and summary["sink"] == "<bos>"
    assert len(summary["ratio_by_layer"]) == 2 and "end_by_layer" not in summary
    np.testing.assert_allclose(np.array(summary["first_by_layer"]) / np.array(summary["other_by_layer"]),
                               summary["ratio_by_layer"])


def test_caveat_comes_from_the_encoder_and_the_data(compose_tiny):
    from hydra.utils import instantiate

    cfg = tiny(compose_tiny, "surface", "model=minilm_l6")
    enc = instantiate(cfg.model)
    ctx = Context(enc, instantiate(cfg.data), None, "", "dev", Path("."), None)
    assert ctx.caveat().startswith(enc.caveat().rstrip(".")) and "Data `tiny` (14 hand-written sentences for tests and smoke runs), split `dev`" in ctx.caveat()

    class Bare:  # an encoder that declares nothing: the caveat still names it
        name, random_init = "bare", True

    assert Context(Bare(), instantiate(cfg.data), None, "", "dev", Path("."), None).caveat().startswith(
        "Model `bare` with random weights.")


def other_jobs(*keep):
    return "analysis.skip=[" + ",".join(sorted(set(JOBS) - {"report", *keep})) + "]"


def test_report_passes_job_overrides_to_its_job(compose_tiny, monkeypatch):
    # one job only; its overrides name its own fields, as a user would
    use_maps(monkeypatch, spread_rule)
    cfg = tiny(compose_tiny, "report", other_jobs("syntax_heads"),
               "analysis.job_overrides={syntax_heads:['min_count=1','head_dep_rule=head_row']}")
    summary = analyze(cfg)
    assert list(summary) == ["syntax_heads"]
    rows = summary["syntax_heads"]["rows"]
    # min_count=1 adds the 5 relations seen once (nmod:poss aux case obl) next to the 5 above;
    # head_row scores 36.4 for All (see the test above)
    assert len(rows) == 1 + 5 + 4 and rows["All"]["accuracy"] == 36.4
    assert (Path(cfg.paths.output_dir) / "syntax_heads" / "syntax_heads.csv").is_file()


def test_report_gathers_every_section_and_logs_to_an_offline_wandb_run(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=report", "logger=wandb", *JOBS["report"].tiny_overrides)
    summary = analyze(cfg)
    out = Path(cfg.paths.output_dir)
    in_report = {name for name, cls in JOBS.items() if cls.in_report}
    assert set(summary) == in_report and {p.name for p in out.iterdir() if p.is_dir()} >= in_report
    assert all(record.read(out / name).name == name for name in in_report)  # each job's own record
    md = (out / "report.md").read_text()
    # every figure the report links exists, beside its SVG and PDF
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert links and all((out / link).is_file() for link in links)
    assert all((out / link).with_suffix(".pdf").is_file() for link in links)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(links) and not re.search(r"https?://", html)
    # the caveat is said once, at the top, when every section reads the same model and data;
    # coreference keeps its own (it reads tiny train, not the run's split)
    caveat = md.splitlines()[2]
    assert caveat.startswith("> Model `tiny_random`") and md.count(caveat[2:]) == 1
    (run,) = (out / "wandb").glob("offline-run-*")
    tables = {p.name.rsplit("_", 2)[0] for p in (run / "files" / "media" / "table").glob("*.table.json")}
    assert {"syntax_heads", "surface_layers", "coref_heads"} <= tables
    assert list((run / "files" / "media" / "images").glob("*.png"))
