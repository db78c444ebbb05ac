"""Unparsed corpora: SemEval-2014 restaurant reviews (tagged and ASTE triplets) and plain text."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from probing.data.lines import ReadReport, TreebankError, check_on_error, numbered_lines
from probing.data.sentence import SENTIMENTS, Sentence, Triplet

log = logging.getLogger(__name__)


def _lines(path: Path):
    """The non-blank lines, numbered."""
    return ((no, line) for no, line in numbered_lines(path) if line.strip())


def _bio(tags: list[str], kind: str) -> list[str]:
    """SemEval ``T-POS``/``S``-style tags to B-/I-/O spans: a run of tagged words is one span."""
    out, prev = [], "O"
    for tag in tags:
        if tag == "O":
            out.append("O")
        else:
            out.append(f"I-{kind}" if prev != "O" else f"B-{kind}")
        prev = tag
    return out


def read_semeval(path: str | Path) -> tuple[list[Sentence], ReadReport]:
    """Read ``sentence####word=TAG ...(aspects)####word=TAG ...(opinions)`` lines.

    Aspect tags (``T-POS``/``T-NEG``/``T-NEU``) become ``B-ASP``/``I-ASP`` in ``tags["aspect"]``
    (the polarity goes to ``tags["polarity"]``); opinion tags (``S``) become ``B-OP``/``I-OP``.
    """
    path = Path(path)
    report = ReadReport(str(path))
    sentences = []
    for no, line in _lines(path):
        parts = line.split("####")
        if len(parts) != 3:
            raise TreebankError(f"{path}:{no}: expected 3 '####'-separated fields, found {len(parts)}")
        words = parts[0].split()
        tagged = [p.split() for p in parts[1:]]
        for field_name, pairs in zip(("aspect", "opinion"), tagged):
            if len(pairs) != len(words):
                raise TreebankError(
                    f"{path}:{no}: {field_name} field has {len(pairs)} tags for {len(words)} words"
                )
            bad = [p for p in pairs if "=" not in p]
            if bad:
                raise TreebankError(f"{path}:{no}: {field_name} tag {bad[0]!r} lacks '=TAG'")
        aspect = [p.rsplit("=", 1)[1] for p in tagged[0]]
        opinion = [p.rsplit("=", 1)[1] for p in tagged[1]]
        sentences.append(
            Sentence(
                words=words,
                sent_id=f"{path.name}:{no}",
                tags={
                    "aspect": _bio(aspect, "ASP"),
                    "opinion": _bio(opinion, "OP"),
                    "polarity": [t.split("-")[-1] if t != "O" else "O" for t in aspect],
                },
            )
        )
        report.read += 1
    return report.finish(sentences)


def read_plain_text(path: str | Path) -> tuple[list[Sentence], ReadReport]:
    """One sentence a line, words separated by whitespace; blank lines are ignored."""
    path = Path(path)
    report = ReadReport(str(path))
    sentences = [Sentence(words=line.split(), sent_id=f"{path.name}:{no}") for no, line in _lines(path)]
    report.read = len(sentences)
    return report.finish(sentences)


class _BadLine(ValueError):
    """One malformed triplet line: ``kind`` is the skip reason, the message says what is wrong."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _span(value, n: int, what: str) -> tuple[int, ...]:
    """A list of word indices -> a sorted tuple, checked against a sentence of ``n`` words."""
    # bool is an int subclass: True would silently mean word 1
    if not isinstance(value, (list, tuple)) or not all(type(i) is int for i in value):
        raise _BadLine("wrong tuple shape", f"{what} span {value!r} is not a list of word indices")
    if not value:
        raise _BadLine("empty span", f"{what} span is empty")
    if len(set(value)) != len(value):
        raise _BadLine("wrong tuple shape", f"{what} span {list(value)} repeats an index")
    bad = [i for i in value if not 0 <= i < n]
    if bad:
        raise _BadLine("index out of range", f"{what} index {bad[0]} is out of range (sentence has {n} words)")
    return tuple(sorted(value))


def _parse_triplet_line(line: str) -> Sentence:
    """``sentence####[([a..], [o..], 'POS'), ...]`` -> words and triplets (``sent_id`` left blank)."""
    parts = line.split("####")
    if len(parts) != 2:
        raise _BadLine("missing ####", f"expected 'sentence####[triplets]', found {len(parts) - 1} '####'")
    words = parts[0].split()
    if not words:
        raise _BadLine("no words", "sentence has no words")
    try:
        # literal_eval, never eval: the file is data, not code
        value = ast.literal_eval(parts[1].strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise _BadLine("unparseable triplets", f"triplet list is not a Python literal ({type(e).__name__})") from None
    if not isinstance(value, list):
        raise _BadLine("unparseable triplets", f"expected a list of triplets, found {type(value).__name__}")
    triplets = []
    for k, item in enumerate(value, start=1):
        if not isinstance(item, tuple) or len(item) != 3:
            raise _BadLine("wrong tuple shape", f"triplet {k} is {item!r}, not (aspect, opinion, sentiment)")
        aspect, opinion, sentiment = item
        if sentiment not in SENTIMENTS:
            raise _BadLine("unknown sentiment", f"triplet {k} has sentiment {sentiment!r}, not one of {SENTIMENTS}")
        n = len(words)
        triplets.append(Triplet(_span(aspect, n, f"triplet {k} aspect"), _span(opinion, n, f"triplet {k} opinion"),
                                sentiment))
    return Sentence(words=words, sent_id="", triplets=triplets)


def read_triplets(path: str | Path, on_error: str = "error") -> tuple[list[Sentence], ReadReport]:
    """Read ASTE-Data-V2 lines ``sentence####[([aspect idx], [opinion idx], 'POS'), ...]``.

    Indices are 0-based into the whitespace-split sentence; each triplet becomes a
    :class:`Triplet` with sorted index tuples. ``on_error="error"`` raises :class:`TreebankError`
    naming ``file:line`` at the first malformed line; ``"skip"`` drops it and counts it by reason
    in the report, which is logged either way. Non-UTF-8 bytes always raise.
    """
    check_on_error(on_error)
    path = Path(path)
    report = ReadReport(str(path), on_error)
    sentences = []
    for no, line in _lines(path):
        try:
            sentence = _parse_triplet_line(line)
        except _BadLine as e:
            report.problem(e.kind, f"{path}:{no}: {e}")
            continue
        sentence.sent_id = f"{path.name}:{no}"
        sentences.append(sentence)
        report.read += 1
    return report.finish(sentences)
