"""Dependency labels: UD (our treebanks) and Stanford Dependencies (the paper's WSJ), one module.

Two choices decide a Table 1 row's name:

- ``level``: ``"exact"`` keeps the full UD label (``nmod:poss``, ``aux:pass``, ``compound:prt``
  are rows of their own, as SD's ``poss``, ``auxpass`` and ``prt`` are in the paper);
  ``"base"`` folds subtypes into their base (``aux`` then holds ``aux:pass``), the old behaviour.
- ``names``: ``"ud"`` reports UD names, ``"sd"`` the paper's SD names where UD has a twin.

:func:`paper_row` says which of the paper's rows a reported row is set against.
"""

from __future__ import annotations

from probing.analysis.paper import TABLE1
from probing.data.sentence import relation_at

ALL = "All"
NAMES = ("ud", "sd")

# PAPER.md's SD -> UD map
SD_TO_UD = {
    "dobj": "obj",
    "nn": "compound",
    "poss": "nmod:poss",
    "possessive": "case",
    "auxpass": "aux:pass",
    "nsubjpass": "nsubj:pass",
    "num": "nummod",
    "rcmod": "acl:relcl",
    "prt": "compound:prt",
    "neg": "advmod",
    "tmod": "obl:tmod",
}
# neg and possessive are left out of the inverse: UD advmod / case are mostly not SD neg /
# possessive, so relabelling all of them would be wrong
UD_TO_SD = {ud: sd for sd, ud in SD_TO_UD.items() if sd not in {"neg", "possessive"}}

# the 37 universal relations of UD v2 (subtypes such as nmod:poss extend them)
UD_RELATIONS = frozenset(
    "acl advcl advmod amod appos aux case cc ccomp clf compound conj cop csubj dep det discourse "
    "dislocated expl fixed flat goeswith iobj list mark nmod nsubj nummod obj obl orphan parataxis "
    "punct reparandum root vocative xcomp".split()
)


def check(level: str, names: str) -> None:
    relation_at("root", level)  # refuses an unknown level
    if names not in NAMES:
        raise ValueError(f"label_names must be one of {NAMES}, not {names!r}")


def relation_name(label: str, level: str = "exact", names: str = "ud") -> str:
    """The row a word with UD ``label`` counts in."""
    ud = relation_at(label, level)
    return UD_TO_SD.get(ud, ud) if names == "sd" else ud


def ud_twin(sd: str) -> str | None:
    """The UD label of an SD relation, or None where UD has no relation with that attachment
    (``prep`` and ``pobj``: UD hangs the preposition on its noun as ``case``)."""
    ud = SD_TO_UD.get(sd, sd)
    return ud if ud.split(":")[0] in UD_RELATIONS else None


def paper_row(name: str, names: str = "ud") -> str | None:
    """The paper's Table 1 row (SD name) a reported row ``name`` is set against, or None."""
    if name == ALL:
        return ALL
    sd = name if names == "sd" else UD_TO_SD.get(name, name)
    return sd if sd in TABLE1 and ud_twin(sd) is not None else None
