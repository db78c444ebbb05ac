"""What every reader shares: lines decoded with errors that name the file and line, the one
error type for bad input, and the report of what a read kept and skipped."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from probing.errors import ProbingError

log = logging.getLogger(__name__)

ON_ERROR = ("error", "skip")


class TreebankError(ProbingError, ValueError):
    """Malformed input; the message names the file, the line and the problem."""


def numbered_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line, 1-based, ``\\r`` stripped; non-UTF-8 bytes raise a
    :class:`TreebankError` naming the line (a missing file: ``FileNotFoundError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    for no, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            yield no, raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise TreebankError(f"{path}:{no}: not UTF-8 ({e.reason} at byte {e.start})") from None


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, not {on_error!r}")


@dataclass
class ReadReport:
    """What a read kept and what it skipped (``skipped`` maps a reason to its count)."""

    path: str
    on_error: str = "error"
    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def problem(self, kind: str, message: str) -> None:
        """Bad input: raised with ``on_error="error"``, counted under ``kind`` with ``"skip"``."""
        if self.on_error == "error":
            raise TreebankError(message)
        self.skipped[kind] += 1
        self.examples.append(message)

    def summary(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common()) or "none"
        return f"{self.path}: read {self.read} sentences, skipped {sum(self.skipped.values())} ({why})"

    def finish(self, sentences: list) -> tuple[list, ReadReport]:
        """What every reader ends with: refuse a file with nothing in it, log what was read and
        skipped (with the first few skipped lines), and return ``(sentences, self)``."""
        if not sentences and not self.skipped:
            raise TreebankError(f"{self.path}:1: file holds no sentences")
        log.info(self.summary())
        for example in self.examples[:5]:
            log.warning("skipped %s", example)
        return sentences, self
