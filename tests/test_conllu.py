"""CoNLL-U reading: the basic tree, multiword tokens and empty nodes (malformed input: test_bad_inputs)."""

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
    assert s.rels == ["nsubj:pass", "root"] and s.relations("base") == ["nsubj", "root"]


def test_error_line_numbers_count_from_the_file_start(tmp_path):
    text = GOOD + row(1, "Go", 0, "root") + "\n" + row(2, "!", 9, "punct") + "\n"
    with pytest.raises(TreebankError, match=r"t\.conllu:16: head 9"):
        read_conllu(write(tmp_path, text))
