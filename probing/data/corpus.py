"""Named corpora, found under a data root (``PROBING_DATA_DIR`` or ``paths.data_dir``)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from probing.data.conllu_reader import ReadReport, read_conllu
from probing.data.sentence import Sentence
from probing.data.text_readers import read_plain_text, read_semeval

log = logging.getLogger(__name__)

READERS = {"conllu": read_conllu, "semeval": read_semeval, "text": read_plain_text}


class DataRootError(FileNotFoundError):
    pass


@dataclass
class Corpus:
    """One dataset: a reader format and a file per split, relative to ``root``."""

    name: str
    format: str
    files: dict[str, str]
    root: str | None = None
    on_error: str = "error"

    def __post_init__(self):
        if self.format not in READERS:
            raise ValueError(f"data {self.name}: unknown format {self.format!r}; one of {list(READERS)}")

    def path(self, split: str) -> Path:
        if split not in self.files:
            raise KeyError(f"data {self.name} has no split {split!r}; it has {sorted(self.files)}")
        rel = Path(self.files[split])
        if rel.is_absolute():
            return rel
        if self.root is None:
            raise DataRootError(
                f"data {self.name}: no data root. Set PROBING_DATA_DIR (for example "
                f"`export PROBING_DATA_DIR=../shared/data`) or pass paths.data_dir=DIR; "
                f"`python -m probing.data.prepare DIR` downloads the UD treebanks."
            )
        path = Path(self.root).expanduser() / rel
        if not path.is_file():
            raise DataRootError(f"data {self.name}: {path} does not exist (data root {self.root})")
        return path

    def read(self, split: str) -> tuple[list[Sentence], ReadReport]:
        path = self.path(split)
        reader = READERS[self.format]
        if self.format == "conllu":
            return reader(path, on_error=self.on_error)
        return reader(path)

    def fingerprint(self, split: str) -> str:
        """sha256 of the split's file: the cache key changes whenever the data does."""
        return hashlib.sha256(self.path(split).read_bytes()).hexdigest()
