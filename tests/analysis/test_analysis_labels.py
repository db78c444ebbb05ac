import pytest

from probing.analysis import labels
from probing.analysis.paper import TABLE1
from probing.analysis.syntax import paper_columns


def test_exact_and_base_levels():
    assert labels.relation_name("nmod:poss") == "nmod:poss"
    assert labels.relation_name("nmod:poss", "base") == "nmod"
    assert labels.relation_name("aux:pass", "exact", "sd") == "auxpass"
    assert labels.relation_name("aux:pass", "base", "sd") == "aux"
    assert labels.relation_name("obj", "base", "sd") == "dobj"
    # UD advmod and case are mostly not SD neg / possessive: never relabelled
    assert labels.relation_name("advmod", names="sd") == "advmod"
    assert labels.relation_name("case", names="sd") == "case"


def test_every_paper_row_with_a_ud_twin_gets_its_paper_columns():
    # prep and pobj: UD hangs the preposition on its noun as `case`, so neither has a twin
    twinless = {sd for sd in TABLE1 if labels.ud_twin(sd) is None and sd != labels.ALL}
    assert twinless == {"prep", "pobj"}
    for sd, (head, acc, base, offset) in TABLE1.items():
        if sd in twinless:
            continue
        ud = labels.ud_twin(sd) if sd != labels.ALL else labels.ALL
        for names, row in (("ud", ud), ("sd", sd)):
            assert paper_columns(row, names) == {"paper_head": head, "paper_acc": acc,
                                                 "paper_baseline": base, "paper_offset": offset}, (sd, names)


@pytest.mark.parametrize("ud, sd", [("nmod:poss", "poss"), ("aux:pass", "auxpass"), ("compound:prt", "prt"),
                                    ("obj", "dobj"), ("compound", "nn")])
def test_exact_labels_meet_their_sd_rows(ud, sd):
    assert labels.paper_row(ud) == sd
    # folded to the base, a subtype no longer has its own paper row
    base = labels.relation_name(ud, "base")
    assert labels.paper_row(base) != sd or base == ud


def test_rows_without_a_twin_get_none():
    assert paper_columns("case", "ud") == dict.fromkeys(("paper_head", "paper_acc", "paper_baseline",
                                                         "paper_offset"))
    assert labels.paper_row("nmod") is None and labels.paper_row("obl:tmod") is None
    with pytest.raises(ValueError):
        labels.check("exact", "stanford")
