"""Named corpora, found under a data root (``PROBING_DATA_DIR`` or ``paths.data_dir``)."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

from probing.data.conllu_reader import ReadReport, read_conllu
from probing.data.sentence import Sentence
from probing.data.text_readers import read_plain_text, read_semeval, read_triplets
from probing.errors import ProbingError
from probing.files import sha256_file

log = logging.getLogger(__name__)

READERS = {"conllu": read_conllu, "semeval": read_semeval, "text": read_plain_text, "triplets": read_triplets}


class DataRootError(ProbingError, FileNotFoundError):
    pass


@dataclass(kw_only=True)
class Corpus:
    """One dataset: a reader format and a file per split, relative to ``root``.

    ``path``: one file for every split not named in ``files`` (``data=conllu data.path=FILE``:
    analyse or test on a treebank of your own). ``description`` says what the data is, for the
    caveat printed beside every number. ``task``: what a probe predicts on it (the data config's
    ``task:`` node, e.g. :class:`probing.probes.tasks.DependencyTask`, built by Hydra); None where
    the data has no probing targets.
    """

    name: str
    format: str
    files: dict[str, str]
    root: str | None
    on_error: str
    description: str
    task: object | None
    path: str | None  # one file for every split not in ``files`` (data=conllu data.path=FILE)

    def __post_init__(self):
        if self.format not in READERS:
            raise ValueError(f"data {self.name}: unknown format {self.format!r}; one of {list(READERS)}")
        # a split named with no file (data=conllu's train/dev/test slots) falls back on ``path``
        self.files = {k: v for k, v in self.files.items() if v is not None}
        if not self.files and not self.path:
            raise ValueError(f"data {self.name}: give one file for every split (data.path=FILE) or one per split "
                             "(data.files.train=... data.files.dev=... data.files.test=...)")

    def file(self, split: str) -> Path:
        """The file of ``split``; an error naming the data root or the missing file otherwise."""
        if split not in self.files and not self.path:
            raise KeyError(f"data {self.name} has no split {split!r}; it has {sorted(self.files)}")
        if split not in self.files:
            own = Path(self.path).expanduser()
            if not own.is_file():
                raise DataRootError(f"data {self.name}: {own} does not exist")
            return own
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
        path = self.file(split)
        reader = READERS[self.format]
        # every reader that can skip bad input gets the corpus' choice; the others always raise
        if "on_error" in inspect.signature(reader).parameters:
            return reader(path, on_error=self.on_error)
        return reader(path)

    def fingerprint(self, split: str) -> str:
        """sha256 of the split's file: the cache key changes whenever the data does."""
        return sha256_file(self.file(split))
