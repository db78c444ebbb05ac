"""The explorer's page data, without a browser: what the page holds is the science code's numbers.

Hand-written models come from ``conftest.py``; the job runs once end to end on the tiny model.
"""

import base64
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from probing.analysis.explorer import (
    RESTAURANT,
    explorer_html,
    explorer_page,
    pick_sentences,
    quantised,
    write_explorer,
)
from probing.analysis.syntax import RelationAccumulator, relation_accuracies
from probing.data.sentence import Sentence

from ..conftest import analyze

JOB_OVERRIDES = ["analysis=explorer", "~logger", "data@analysis.coref.corpus=tiny", "analysis.coref_split=train",
                 "analysis.syntax.min_count=2"]


def run_job(compose_tiny, *overrides):
    """The explorer through analyze() (one place to switch when the runner replaces it)."""
    cfg = compose_tiny("analyze", *JOB_OVERRIDES, *overrides)
    return analyze(cfg), Path(cfg.paths.output_dir)


def page_data(page: str) -> tuple[dict, dict]:
    """The page's JSON and its maps per ``(model, quantity)``, unpacked as the script does."""
    data = json.loads(re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page,
                                re.S).group(1))
    blobs = {(int(m), q): np.frombuffer(gzip.decompress(base64.b64decode(b)), np.uint8)
             for m, q, b in re.findall(r'<script type="application/octet-stream" id="maps-(\d+)-(\w+)" '
                                       r'data-encoding="gzip\+base64">(.*?)</script>', page, re.S)}
    return data, blobs


def test_pick_sentences_puts_the_example_first_and_is_seeded(hand):
    sentences = [Sentence(words=f"w{i} x y".split(), sent_id=str(i), heads=np.array([0, 1, 1]),
                          rels=["root", "dep", "dep"]) for i in range(30)]
    sentences[17] = Sentence(words=RESTAURANT.split(), sent_id="r", heads=np.zeros(12, int), rels=["root"] * 12)
    sentences[3] = Sentence(words=("long " * 50).split(), sent_id="long", heads=np.zeros(50, int),
                            rels=["root"] * 50)
    store = hand.store(sentences, [np.zeros((1, 1, 1))] * 30, None, 1, 1)
    picks = pick_sentences(store, sentences, 10, seed=0, max_words=40)
    assert picks[0] == 17 and len(picks) == 10 and 3 not in picks  # over max_words: left out
    assert picks[1:] == sorted(picks[1:])
    assert pick_sentences(store, sentences, 10, seed=0) == picks != pick_sentences(store, sentences, 10, seed=1)
    plain = pick_sentences(store, sentences, 5, include=[])
    assert plain == sorted(plain) and 3 not in plain  # no example first: corpus order


def test_page_holds_the_science_numbers(hand):
    alpha, beta = hand.models
    data, blobs = page_data(explorer_html(hand.models))
    a = data["models"][0]
    assert [m["name"] for m in data["models"]] == ["alpha", "beta"] and (a["L"], a["H"]) == (2, 2)
    assert a["sentences"][0]["words"] == RESTAURANT.split()  # the sample: the example first
    for q in ("attention", "norm"):
        qd = alpha.quantities[q]
        got = a["quantities"][q]
        np.testing.assert_allclose(got["stats"]["prev"], np.round(qd.stats["prev"].ravel(), 4))
        assert got["behaviour"] == qd.behaviour
        assert [r["relation"] for r in got["relations"]] == qd.syntax.relations
        np.testing.assert_allclose([r["acc"] for r in got["relations"]], np.round(qd.syntax.accuracy, 4))
        # the maps as stored: uint8 steps of 1/255, sentence after sentence
        want = np.concatenate([quantised(m).ravel() for m in qd.maps])
        np.testing.assert_array_equal(blobs[(0, q)], want)
    assert data["models"][1]["quantities"]["attention"]["stats"]["start"] is None  # beta has no start token
    # relation_accuracies on the hand maps: nsubj by head 2-2 (the gold-head head) 3 of 3, dep->head
    res = relation_accuracies(((hand.rule_a(s, alpha.layout), s) for s in hand.sentences), 4, min_count=1,
                              num_heads=2, layout=alpha.layout)
    nsubj = next(r for r in a["quantities"]["attention"]["relations"] if r["relation"] == "nsubj")
    assert nsubj["head"] == "2-2" and nsubj["acc"][0][3] == 1.0 == res.accuracy[res.relations.index("nsubj"), 0, 3]
    # Table 1's per-word results, bit-packed: the restaurant sentence's (2, K, n) first
    bits = np.unpackbits(np.frombuffer(base64.b64decode(a["quantities"]["attention"]["correct"]), np.uint8))
    scorer = RelationAccumulator(4, 2, alpha.layout)
    first = scorer.score(hand.rule_a(hand.sentences[1], alpha.layout), hand.sentences[1]).correct
    np.testing.assert_array_equal(bits[: first.size].reshape(first.shape), first)
    assert first[0, 3, :].tolist() == [True] * 4 + [False] + [True] * 7  # only the root word is wrong


def test_rounding_is_said_and_the_page_is_self_contained(hand, tmp_path):
    hostile = hand.models[0]
    page = explorer_html([hostile])
    assert "multiples of 1/255" in page
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert csp.startswith("default-src 'none'")
    # the only URL in the page is the SVG namespace; nothing is loaded from anywhere
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", page)
    path = write_explorer([hostile], tmp_path / "sub" / "e.html")
    assert path.read_text(encoding="utf-8") == page


def test_maps_are_rounded_more_until_the_page_fits(hand):
    rng = np.random.default_rng(0)  # dense random rows: finer steps cost more bytes

    def noise(sentence, layout):
        t = layout.num_tokens(len(sentence))
        return rng.dirichlet(np.ones(t), size=(4, t))

    models = [hand.make("noise", hand.models[0].layout, 2, 2, {"attention": noise})]
    sizes = {lv: len(explorer_page(models, steps=(lv,))[0].encode()) for lv in (255, 127, 63, 31, 15)}
    assert sizes[255] > sizes[127] > sizes[63] > sizes[31] > sizes[15]
    page, levels = explorer_page(models, max_bytes=sizes[127])
    assert levels == 127 and len(page.encode()) == sizes[127] and "multiples of 1/127" in page
    data, blobs = page_data(page)
    assert data["levels"] == 127
    maps = models[0].quantities["attention"].maps
    np.testing.assert_array_equal(blobs[(0, "attention")], np.concatenate([quantised(m, 127).ravel() for m in maps]))
    assert explorer_page(models, max_bytes=10)[1] == 15  # never fits: the coarsest, all the same
    assert explorer_page(models, max_bytes=None)[1] == 255
    with pytest.raises(ValueError, match="levels must be"):
        quantised(np.zeros((1, 1, 1)), 256)


def test_a_hostile_word_cannot_close_the_script(hand):
    sentence = Sentence(words=["</script><b>", "x"], sent_id="h", heads=np.array([2, 0]), rels=["dep", "root"])
    alpha = hand.models[0]
    store = hand.store([sentence], [hand.rule_a(sentence, alpha.layout)], alpha.layout, 2, 2)
    from probing.analysis.explorer import ExplorerData, quantity_data

    data = ExplorerData(**{**alpha.__dict__, "sentences": [sentence],
                           "quantities": {"attention": quantity_data(store, [sentence], [0], min_count=1)}})
    page = explorer_html([data])
    assert page.count("</script>") == 3  # the data, one map blob, the script
    assert page_data(page)[0]["models"][0]["sentences"][0]["words"][0] == "</script><b>"


def test_job_on_the_tiny_model(compose_tiny):
    summary, out = run_job(compose_tiny, "analysis.quantities=[attention,norm]")
    assert summary["quantities"] == ["attention", "norm"] and summary["coref"] is True
    assert summary["sentences"] == 3  # tiny dev
    data, blobs = page_data((out / "explorer.html").read_text(encoding="utf-8"))
    (model,) = data["models"]
    assert model["name"] == "tiny_random" and set(model["quantities"]) == {"attention", "norm"}
    assert set(blobs) == {(0, "attention"), (0, "norm")}
    assert model["quantities"]["attention"]["coref"]["corpus"] == "tiny"
    assert model["quantities"]["norm"]["coref"] is None  # coref_quantities: attention only
    # raw and norm-weighted maps differ
    assert not np.array_equal(blobs[(0, "attention")], blobs[(0, "norm")])


def test_job_without_the_coreference_corpus_says_so(compose_tiny, tmp_path):
    summary, out = run_job(compose_tiny, "data@analysis.coref.corpus=ud_gum", f"paths.data_dir={tmp_path}/none")
    assert summary["coref"] is False
    data, _ = page_data((out / "explorer.html").read_text(encoding="utf-8"))
    assert "Coreference left out" in data["models"][0]["notes"][0]


@pytest.mark.parametrize("bad", ["analysis.quantities=[]"])
def test_job_refuses_no_quantity(compose_tiny, bad):
    with pytest.raises(ValueError, match="quantities is empty"):
        run_job(compose_tiny, bad)
