"""Unparsed corpora: SemEval-2014 restaurant reviews and plain whitespace-tokenised text."""

from __future__ import annotations

import logging
from pathlib import Path

from probing.data.conllu_reader import ReadReport, TreebankError
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


def _lines(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    for no, bline in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line = bline.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise TreebankError(f"{path}:{no}: not UTF-8 ({e.reason} at byte {e.start})") from None
        if line.strip():
            yield no, line


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
    if not sentences:
        raise TreebankError(f"{path}:1: file holds no sentences")
    log.info(report.summary())
    return sentences, report


def read_plain_text(path: str | Path) -> tuple[list[Sentence], ReadReport]:
    """One sentence a line, words separated by whitespace; blank lines are ignored."""
    path = Path(path)
    report = ReadReport(str(path))
    sentences = [Sentence(words=line.split(), sent_id=f"{path.name}:{no}") for no, line in _lines(path)]
    report.read = len(sentences)
    if not sentences:
        raise TreebankError(f"{path}:1: file holds no sentences")
    log.info(report.summary())
    return sentences, report
