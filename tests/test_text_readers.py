
from probing.data.text_readers import read_plain_text, read_semeval

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
