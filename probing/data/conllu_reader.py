"""CoNLL-U treebanks: validated line by line (so errors name file and line), parsed by ``conllu``."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import conllu
import numpy as np

from probing.data.lines import ReadReport, TreebankError, check_on_error, numbered_lines
from probing.data.sentence import Sentence

__all__ = ["ReadReport", "TreebankError", "read_conllu"]

log = logging.getLogger(__name__)


def _blocks(path: Path):
    """Yield (first line number, lines) for each blank-line-separated sentence block."""
    start, lines = None, []
    for no, line in numbered_lines(path):
        if line.strip():
            if start is None:
                start = no
            lines.append(line)
        elif lines:
            yield start, lines
            start, lines = None, []
    if lines:
        yield start, lines


def _check_block(path: Path, start: int, lines: list[str]) -> tuple[str, str] | None:
    """Return ``None`` for a well-formed sentence, else ``(kind, "path:line: problem")``."""
    ids, heads, head_lines = [], [], []
    for offset, line in enumerate(lines):
        if line.startswith("#"):
            continue
        where = f"{path}:{start + offset}"
        cols = line.split("\t")
        if len(cols) != 10:
            return "wrong column count", f"{where}: expected 10 tab-separated columns, found {len(cols)}"
        tok_id = cols[0]
        if "-" in tok_id or "." in tok_id:  # multiword ranges and empty nodes carry no basic tree
            continue
        if not tok_id.isdigit():
            return "non-integer word id", f"{where}: word id {tok_id!r} is not an integer"
        if not cols[6].isdigit():
            return "non-integer head", f"{where}: head {cols[6]!r} of word {tok_id} is not an integer"
        ids.append(int(tok_id))
        heads.append(int(cols[6]))
        head_lines.append(start + offset)
    if not ids:
        return "no words", f"{path}:{start}: sentence has no words"
    if ids != list(range(1, len(ids) + 1)):
        dup = [i for i, c in Counter(ids).items() if c > 1]
        if dup:  # name the line of the second occurrence
            second = [k for k, i in enumerate(ids) if i == dup[0]][1]
            return "bad word ids", f"{path}:{head_lines[second]}: duplicate word id {dup[0]}"
        return "bad word ids", f"{path}:{start}: word ids are not 1..{len(ids)}"
    n = len(ids)
    for h, line_no, i in zip(heads, head_lines, ids):
        if h > n:
            return "head out of range", f"{path}:{line_no}: head {h} of word {i} is out of range (sentence has {n} words)"
        if h == i:
            return "self-loop", f"{path}:{line_no}: word {i} is its own head"
    if 0 not in heads:
        return "no root", f"{path}:{start}: sentence has no word attached to ROOT (0)"
    arr = np.array([0] + heads)
    for i in ids:
        seen, j = set(), i
        while j != 0:
            if j in seen:
                return "cycle", f"{path}:{start}: heads form a cycle through word {i}"
            seen.add(j)
            j = arr[j]
    return None


def read_conllu(path: str | Path, on_error: str = "error") -> tuple[list[Sentence], ReadReport]:
    """Read a CoNLL-U file into sentences of syntactic words.

    Multiword-token ranges (``3-4``) and empty nodes (``8.1``) are left out, as the basic tree
    has neither. ``on_error="error"`` raises :class:`TreebankError` at the first bad sentence;
    ``"skip"`` drops it and counts it in the report, which is logged either way.
    """
    check_on_error(on_error)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such treebank file")
    report = ReadReport(str(path), on_error)
    sentences: list[Sentence] = []
    doc_id = None
    for start, lines in _blocks(path):
        problem = _check_block(path, start, lines)
        if problem is not None:
            report.problem(*problem)
            continue
        tokens = conllu.parse("\n".join(lines) + "\n\n")[0]
        doc_id = tokens.metadata.get("newdoc id", doc_id)
        words = [t for t in tokens if isinstance(t["id"], int)]
        sentences.append(
            Sentence(
                words=[t["form"] for t in words],
                sent_id=tokens.metadata.get("sent_id", f"{path.name}:{start}"),
                heads=np.array([t["head"] for t in words], dtype=np.int64),
                rels=[t["deprel"] for t in words],
                upos=[t["upos"] for t in words],
                doc_id=doc_id,
                misc=[dict(t["misc"]) if t["misc"] else None for t in words],
            )
        )
        report.read += 1
    return report.finish(sentences)
