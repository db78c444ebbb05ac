import os
from pathlib import Path

import pytest
from hydra.utils import instantiate

from probing.data.corpus import Corpus
from probing.data.sentence import Triplet
from probing.data.text_readers import read_plain_text, read_semeval, read_triplets

from .conftest import compose_cfg

LINE = (
    "The fish tacos were great####The=O fish=T-POS tacos=T-POS were=O great=O"
    "####The=O fish=O tacos=O were=O great=S"
)


def test_semeval_tags_become_bio_spans(tmp_path):
    p = tmp_path / "r.txt"
    p.write_text(LINE + "\n")
    (s,), report = read_semeval(p)
    assert s.words == ["The", "fish", "tacos", "were", "great"] and report.read == 1
    assert s.tags["aspect"] == ["O", "B-ASP", "I-ASP", "O", "O"]
    assert s.tags["opinion"] == ["O", "O", "O", "O", "B-OP"]
    assert s.tags["polarity"] == ["O", "POS", "POS", "O", "O"]


def test_plain_text_one_sentence_a_line(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("The food is fresh .\n\nIt is hot !\n")
    sents, report = read_plain_text(p)
    assert [s.words for s in sents] == [["The", "food", "is", "fresh", "."], ["It", "is", "hot", "!"]]
    assert sents[1].sent_id == "t.txt:3" and sents[1].is_punct.tolist() == [False, False, False, True]


# --- ASTE triplets (data=semeval14_triplets, data=tiny_triplets) ---

def test_triplet_line_becomes_sorted_spans(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("The fish tacos were great but service was slow .####"
                 "[([2, 1], [4], 'POS'), ([6], [8], 'NEG')]\n\nOkay place .####[([1], [0], 'NEU')]\n")
    (a, b), report = read_triplets(p)
    assert a.words[:3] == ["The", "fish", "tacos"] and a.sent_id == "t.txt:1" and b.sent_id == "t.txt:3"
    assert a.triplets == [Triplet((1, 2), (4,), "POS"), Triplet((6,), (8,), "NEG")]
    assert b.triplets == [Triplet((1,), (0,), "NEU")] and report.read == 2 and not report.skipped


def test_other_readers_leave_triplets_unset(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("It is hot !\n")
    assert read_plain_text(p)[0][0].triplets is None


def test_tiny_triplets_ship_with_the_package(tmp_path):
    corpus = instantiate(compose_cfg("extract", ["model=tiny_random", "data=tiny_triplets"], tmp_path).data)
    counts = {split: corpus.read(split)[0] for split in ("train", "dev", "test")}
    assert {k: len(v) for k, v in counts.items()} == {"train": 6, "dev": 3, "test": 3}
    sentiments = {t.sentiment for s in counts["train"] for t in s.triplets}
    assert sentiments == {"POS", "NEG", "NEU"}


@pytest.mark.skipif(not os.environ.get("PROBING_DATA_DIR"), reason="PROBING_DATA_DIR is unset")
@pytest.mark.parametrize("split, sentences, triplets", [("train", 1266, 2338), ("dev", 310, 577), ("test", 492, 994)])
def test_real_semeval14_triplet_counts(tmp_path, split, sentences, triplets):
    corpus = instantiate(compose_cfg("extract", ["model=tiny_random", "data=semeval14_triplets"], tmp_path).data)
    sents, report = corpus.read(split)
    assert (len(sents), sum(len(s.triplets) for s in sents)) == (sentences, triplets)
    assert report.read == sentences and not report.skipped


def test_corpus_passes_on_error_to_readers_that_take_it(tmp_path):
    (tmp_path / "t.txt").write_text("Good food .####[([1], [0], 'POS')]\nBad line\n")
    corpus = Corpus(name="t", format="triplets", files={"dev": "t.txt"}, root=str(tmp_path), on_error="skip", description="",
                    task=None, path=None)
    sents, report = corpus.read("dev")
    assert len(sents) == 1 and report.skipped == {"missing ####": 1}
    # readers without on_error still read
    assert Corpus(name="p", format="text", files={"dev": "t.txt"}, root=str(tmp_path), on_error="skip", description="",
                  task=None, path=None).read("dev")[1].read == 2
    assert Path(corpus.file("dev")).name == "t.txt"
