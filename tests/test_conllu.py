"""CoNLL-U reading: the basic tree, multiword tokens, empty nodes, and every malformed case."""

import numpy as np
import pytest

from probing.data.conllu_reader import TreebankError, read_conllu


def row(i, form, head, rel, misc="_"):
    return f"{i}\t{form}\t{form.lower()}\tX\t_\t_\t{head}\t{rel}\t_\t{misc}"


GOOD = "\n".join(
    [
        "# newdoc id = d1",
        "# sent_id = s1",
        row(1, "I", 3, "nsubj"),
        "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
        row(2, "do", 4, "aux"),
        row(3, "n't", 4, "advmod"),
        row(4, "know", 0, "root"),
        "4.1\tknew\t_\t_\t_\t_\t_\t_\t_\t_",
        row(5, ".", 4, "punct", "Entity=(1-x-new)"),
        "",
        "# sent_id = s2",
        row(1, "Go", 0, "root"),
        row(2, "!", 1, "punct"),
        "",
        "",
    ]
)


def write(tmp_path, text, name="t.conllu"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_reads_words_heads_relations_and_skips_ranges_and_empty_nodes(tmp_path):
    # word 1's head is 3 in this fixture on purpose: ids after the range must stay aligned
    sents, report = read_conllu(write(tmp_path, GOOD))
    assert report.read == 2 and not report.skipped
    s = sents[0]
    assert s.words == ["I", "do", "n't", "know", "."]
    np.testing.assert_array_equal(s.heads, [3, 4, 4, 0, 4])
    assert s.rels == ["nsubj", "aux", "advmod", "root", "punct"]
    assert s.doc_id == "d1" and sents[1].doc_id == "d1"
    assert s.misc[4] == {"Entity": "(1-x-new)"}
    assert s.is_punct.tolist() == [False, False, False, False, True]


def test_subtyped_relations_keep_the_full_label_and_give_a_base(tmp_path):
    text = "\n".join([row(1, "It", 2, "nsubj:pass"), row(2, "ran", 0, "root"), ""])
    (s,), _ = read_conllu(write(tmp_path, text))
    assert s.rels == ["nsubj:pass", "root"] and s.base_rels == ["nsubj", "root"]


BAD = {
    "wrong column count": ("1\tGo\tgo\tX\t_\t_\t0\troot\t_\n", ":1: expected 10 tab-separated columns, found 9"),
    "non-integer head": (row(1, "Go", "x", "root") + "\n", ":1: head 'x' of word 1 is not an integer"),
    "head out of range": (row(1, "Go", 0, "root") + "\n" + row(2, "!", 7, "punct") + "\n", ":2: head 7 of word 2 is out of range"),
    "cycle": ("# c\n" + row(1, "a", 0, "root") + "\n" + row(2, "b", 3, "dep") + "\n" + row(3, "c", 2, "dep") + "\n", ":1: heads form a cycle"),
    "duplicate ids": (row(1, "a", 0, "root") + "\n" + row(1, "b", 1, "dep") + "\n", "duplicate word id 1"),
    "self loop": (row(1, "a", 0, "root") + "\n" + row(2, "b", 2, "dep") + "\n", ":2: word 2 is its own head"),
    "no root": (row(1, "a", 2, "dep") + "\n" + row(2, "b", 1, "dep") + "\n", "no word attached to ROOT"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_sentence_names_file_line_and_problem(tmp_path, case):
    text, message = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(TreebankError) as err:
        read_conllu(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_error_line_numbers_count_from_the_file_start(tmp_path):
    text = GOOD + row(1, "Go", 0, "root") + "\n" + row(2, "!", 9, "punct") + "\n"
    with pytest.raises(TreebankError, match=r"t\.conllu:16: head 9"):
        read_conllu(write(tmp_path, text))


def test_skip_mode_counts_every_dropped_sentence(tmp_path):
    text = GOOD + BAD["cycle"][0] + "\n" + BAD["head out of range"][0] + "\n" + BAD["cycle"][0]
    sents, report = read_conllu(write(tmp_path, text), on_error="skip")
    assert len(sents) == 2 and report.read == 2
    assert report.skipped == {"cycle": 2, "head out of range": 1}
    assert "read 2 sentences, skipped 3 (2 cycle, 1 head out of range)" in report.summary()


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(TreebankError, match=r"t\.conllu:1: file holds no sentences"):
        read_conllu(write(tmp_path, "\n\n"))


def test_non_utf8_bytes_name_the_line(tmp_path):
    data = GOOD.encode() + b"1\tcaf\xe9\tx\tX\t_\t_\t0\troot\t_\t_\n"
    with pytest.raises(TreebankError, match=r"t\.conllu:15: not UTF-8"):
        read_conllu(write(tmp_path, data))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such treebank file"):
        read_conllu(tmp_path / "absent.conllu")
