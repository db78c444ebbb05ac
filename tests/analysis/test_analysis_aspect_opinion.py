"""analysis=aspect_opinion: hand-written maps with a known answer for every direction and baseline."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra.utils import instantiate

from probing.analysis.aspect_opinion import (
    AspectOpinionJob,
    arcs_figure,
    aspect_opinion_accuracies,
    nearest_span,
    offset_predictions,
    score_sentence,
    span_distance,
    span_predictions,
    word_maps,
)
from probing.analysis.base import Context
from probing.attention.layout import Layout
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence, Triplet
from probing.writer import Writer

# "Great fish tacos rude staff": fish tacos <- Great (POS), staff <- rude (NEG)
REVIEW = Sentence(words=["Great", "fish", "tacos", "rude", "staff"], sent_id="r:1",
                  triplets=[Triplet((1, 2), (0,), "POS"), Triplet((4,), (3,), "NEG")])
S, E = "start", "end"
# FROM word -> {TO: weight}; head 0 looks left, head 1 looks right; the rest goes to a special token
ROWS = [
    [{S: 0.6, 3: 0.4}, {0: 0.7, S: 0.3}, {1: 0.8, S: 0.2}, {2: 0.7, S: 0.3}, {3: 0.7, S: 0.3}],
    [{1: 0.7, E: 0.3}, {2: 0.7, E: 0.3}, {3: 0.4, E: 0.6}, {4: 0.7, E: 0.3}, {E: 0.6, 1: 0.4}],
]


def review_maps(layout: Layout, junk: float = 5.0) -> np.ndarray:
    """(2, T, T) maps of REVIEW in ``layout``; special rows hold ``junk`` that must never count."""
    n = len(REVIEW)
    T = layout.num_tokens(n)
    maps = np.full((2, T, T), junk, dtype=np.float32)
    for k, rows in enumerate(ROWS):
        for w, row in enumerate(rows):
            i = layout.word_token(w)
            maps[k, i] = 0
            for to, weight in row.items():
                j = layout.start_index if to == S else layout.end_index(n) if to == E else layout.word_token(to)
                if j is not None:  # a layout without that special token loses the mass
                    maps[k, i, j] = weight
    return maps.astype(np.float16)


def test_span_rows_are_averaged_and_exclude_the_span_and_specials():
    words = word_maps(review_maps(Layout()), 5, Layout())
    assert words.shape == (2, 5, 5)
    # head 0 from "fish tacos": word 1 (0.40) beats word 0 (0.35) until the span itself is excluded
    # head 1: the end token (0.45) would win if special tokens were candidates
    assert span_predictions(words, (1, 2)).tolist() == [0, 3]
    assert span_predictions(words, (0,)).tolist() == [3, 1]
    words[:, 0] = 0  # a row with no mass on any other word predicts nothing
    assert span_predictions(words, (0,)).tolist() == [-1, -1]


def test_spans_distances_and_offsets():
    assert span_distance((1, 2), (0,)) == 1 and span_distance((1, 2), (2, 3)) == 0
    assert nearest_span((1, 2), [(3,), (0,)]) == (0,)  # a tie goes to the span that starts first
    assert nearest_span((4,), [(0,), (3,)]) == (3,) and nearest_span((4,), []) is None
    # o < 0 from the first word, o > 0 from the last; off the sentence is -1
    assert offset_predictions((1, 2), 5).tolist() == [-1, -1, 0, 3, 4, -1]
    assert offset_predictions((3,), 5, offsets=(-1, 1, 2)).tolist() == [2, 4, -1]


@pytest.mark.parametrize("layout", [Layout(True, True), Layout(True, False), Layout(False, False)])
def test_known_answer_for_every_direction_and_baseline(layout):
    res = aspect_opinion_accuracies([(review_maps(layout), REVIEW)], num_maps=2, num_heads=2, layout=layout)
    got = {(r["direction"], r["sentiment"]): r for r in res.rows()}
    assert sorted(got) == sorted((d, g) for d in ("aspect->opinion", "opinion->aspect") for g in ("All", "POS", "NEG"))
    a2o, o2a = got["aspect->opinion", "All"], got["opinion->aspect", "All"]
    assert (a2o["head"], a2o["accuracy"], a2o["pairs"]) == ("1-1", 1.0, 2)  # the left-looking head
    assert (o2a["head"], o2a["accuracy"]) == ("1-2", 1.0)  # the right-looking head
    # nearest gold span: right both times for aspect->opinion; "rude" is as near to "fish tacos" as to
    # "staff", and the tie goes to the earlier span, so opinion->aspect misses the NEG pair
    assert a2o["nearest_span"] == 1.0 and o2a["nearest_span"] == 0.5
    assert got["opinion->aspect", "POS"]["nearest_span"] == 1.0 and got["opinion->aspect", "NEG"]["nearest_span"] == 0
    # opinions sit just left of their aspects: offset -1 for aspect->opinion, +1 back
    assert (a2o["offset"], a2o["offset_accuracy"]) == (-1, 1.0)
    assert (o2a["offset"], o2a["offset_accuracy"]) == (1, 1.0)
    np.testing.assert_allclose(res.accuracy[:, 0], [[1, 0], [0, 1]])  # (direction, All, head)
    np.testing.assert_allclose(res.offset_accuracy[1, 0], [0, 0, 0, 1, 0.5, 0])  # "Great" +2 hits "tacos"
    summary = res.summary()
    assert summary["aspect->opinion"]["NEG"] == {"pairs": 1, "head": "1-1", "accuracy": 1.0, "nearest_span": 1.0,
                                                 "offset": -1, "offset_accuracy": 1.0}
    assert summary["unscorable"] == {"aspect->opinion": 0, "opinion->aspect": 0} and summary["sentences"] == 1
    assert [r["head"] for r in res.head_rows()] == ["1-1", "1-2"]


def test_nested_and_repeated_triplets():
    # "fresh mozzarella" -> "fresh": the opinion lies inside the aspect, so only opinion->aspect is scored;
    # the repeated triplet counts once
    s = Sentence(words=["fresh", "mozzarella", "here"], sent_id="m",
                 triplets=[Triplet((0, 1), (0,), "POS")] * 2)
    words = np.zeros((1, 3, 3), np.float32)
    words[0, 0, 1] = 1
    scores, unscorable = score_sentence(words, s)
    assert unscorable == {"aspect->opinion": 1, "opinion->aspect": 0}
    assert [(p.direction, p.heads.tolist(), p.nearest) for p in scores] == [("opinion->aspect", [True], True)]


def test_sentences_without_triplets_and_wrong_maps():
    res = aspect_opinion_accuracies([(np.zeros((2, 4, 4)), Sentence(["a", "b"], "x")),
                                     (review_maps(Layout()), REVIEW)], 2, 2, Layout())
    assert res.sentences == 1
    with pytest.raises(ValueError, match="do not fit 5 words in the start\\+end layout"):
        aspect_opinion_accuracies([(np.zeros((2, 6, 6)), REVIEW)], 2, 2, Layout())
    with pytest.raises(ValueError, match="maps hold 2 heads, expected 3"):
        aspect_opinion_accuracies([(review_maps(Layout()), REVIEW)], 3, 3, Layout())
    with pytest.raises(ValueError, match="no scorable"):
        aspect_opinion_accuracies([], 2, 2, Layout())


def test_arcs_figure_draws_one_panel_per_review():
    maps = review_maps(Layout()).astype(np.float32)
    labels = ["[CLS]", *REVIEW.words, "[SEP]"]
    fig = arcs_figure([(maps[0], labels, {2, 3}, {1}, "r:1"), (maps[1], labels, {5}, {4}, "r:1")], "1-1")
    assert len(fig.axes) == 2 and "1-1" in fig.get_suptitle() and fig.axes[0].get_title() == "r:1"


def test_job_needs_triplets_and_falls_back_to_its_bound_corpus():
    ud = Corpus(name="ud_ewt", format="conllu", files={"dev": "x"}, root=None, on_error="error", description="", task=None, path=None)
    triplets = Corpus(name="semeval14_triplets", format="triplets", files={"dev": "y"}, root=None, on_error="error", description="", task=None, path=None)
    assert AspectOpinionJob(corpus=triplets, num_examples=0)._corpus(SimpleNamespace(corpus=ud)) is triplets
    tiny = Corpus(name="tiny_triplets", format="triplets", files={"dev": "z"}, root=None, on_error="error", description="", task=None, path=None)
    assert AspectOpinionJob(corpus=triplets, num_examples=0)._corpus(SimpleNamespace(corpus=tiny)) is tiny
    with pytest.raises(ValueError, match="data ud_ewt has none. Use data=semeval14_triplets"):
        AspectOpinionJob(corpus=None, num_examples=0)._corpus(SimpleNamespace(corpus=ud))


def test_runs_on_tiny_data_through_the_plugin_api(compose_tiny):
    cfg = compose_tiny("analyze", "analysis=aspect_opinion", "~logger", *AspectOpinionJob.tiny_overrides)
    job = instantiate(cfg.analysis)
    assert job.corpus.name == "semeval14_triplets"  # bound, but the run's data has triplets: tiny wins
    out = Path(cfg.paths.output_dir)
    ctx = Context(instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract),
                  cfg.paths.attention_cache, "dev", out, Writer(out))
    section = job.run(ctx)
    # tiny dev: 3 reviews, 6 triplets, every pair scorable in both directions
    assert section.summary["aspect->opinion"]["All"]["pairs"] == 6 == section.summary["opinion->aspect"]["All"]["pairs"]
    assert section.summary["corpus"] == "tiny_triplets" and section.summary["sentences"] == 3
    names = {p.name for p in out.iterdir()}
    assert {"aspect_opinion.csv", "aspect_opinion.md", "aspect_opinion_heads.csv",
            "aspect_opinion_examples.png", "aspect_opinion_examples.svg", "aspect_opinion_examples.pdf"} <= names
    assert "aspect_opinion.json" not in names  # the runner writes the summary, in the run's record
    assert section.summary["opinion->aspect"]["NEU"]["pairs"] == 2
    assert section.figures == [out / "aspect_opinion_examples.png"] and "| aspect->opinion |" in section.markdown
