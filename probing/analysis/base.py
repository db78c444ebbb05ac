"""What every analysis job gets (:class:`Context`) and gives back (:class:`Section`).

A job is one module plus one YAML in ``conf/analysis/``: a dataclass whose ``run(ctx)`` returns a
:class:`Section`, with a ``tiny_overrides`` class attribute (the Hydra overrides that make it run on
``model=tiny_random data=tiny``; the tests read it) and optionally ``in_report = False``. The tests
and the report find jobs through :func:`job_classes`, so adding one needs no other edit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.utils import get_class
from omegaconf import OmegaConf

from probing import PACKAGE_DIR
from probing.analysis.paper import PAPER_SETUP
from probing.attention.encoders.base import model_caveat
from probing.attention.layout import Layout
from probing.writer import Writer

if TYPE_CHECKING:
    from probing.attention.encoders import EncoderSpec
    from probing.attention.extract import ExtractionSettings
    from probing.data.corpus import Corpus
    from probing.data.sentence import Sentence

log = logging.getLogger(__name__)

CONF_DIR = PACKAGE_DIR.parent / "conf"


@dataclass
class Section:
    """What a job contributes to the report."""

    title: str
    markdown: str
    figures: list[Path] = field(default_factory=list)  # PNG paths (the SVG/PDF lie beside them)
    summary: dict = field(default_factory=dict)  # JSON-able numbers the report/results read


def layout_of(store) -> Layout:
    """The store's word-level layout; caches written before layouts existed are [CLS] ... [SEP]."""
    return getattr(store, "layout", None) or Layout()


@dataclass
class Context:
    """One run's model, data, settings and output folder, shared by the jobs of a report."""

    encoder: EncoderSpec
    corpus: Corpus
    extraction: ExtractionSettings
    cache_root: str
    split: str  # top-level `split=` of analyze.yaml; may join splits: "train+dev"
    out: Path
    writer: Writer
    _tokenizer: object = field(default=None, init=False, repr=False, compare=False)

    def attention(self, split: str | None = None, corpus: Corpus | None = None):
        """``(store, sentences)`` of a split (default the run's), extracting on a cache miss."""
        from probing.attention.store import open_split

        return open_split(self.encoder, corpus or self.corpus, split or self.split, self.extraction,
                          self.cache_root)

    def unit_attention(self, corpus: Corpus, split: str, units: list[Sentence], what: str, tag: str):
        """The store of ad-hoc units built from one split (coreference's document chunks, each
        unit one "sentence" of joined words); ``what`` describes the units in the cache key."""
        from probing.attention.store import data_key, open_units

        key = {**data_key(corpus, split), "units": what}
        return open_units(self.encoder, units, key, self.extraction, self.cache_root,
                             f"{corpus.name}-{split}-{tag}", str(corpus.file(split)))

    def sentences(self, split: str | None = None, corpus: Corpus | None = None) -> list[Sentence]:
        """The sentences of a split, without attention; ``"a+b"`` reads both, in that order."""
        corpus = corpus or self.corpus
        return [s for part in (split or self.split).split("+") for s in corpus.read(part)[0]]

    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self.encoder.load_tokenizer()
        return self._tokenizer

    def special_names(self, layout: Layout | None = None) -> tuple[str | None, str | None]:
        """The start and end tokens' names (e.g. ``("[CLS]", "[SEP]")``); None where ``layout``
        (default: the encoder's) has no such token."""
        tok = self.tokenizer()
        if layout is None:
            from probing.attention.pieces import piece_layout

            layout = piece_layout(tok, getattr(self.encoder, "add_bos", None))
        start = (tok.cls_token or tok.bos_token) if layout.start else None
        end = (tok.sep_token or tok.eos_token) if layout.end else None
        return start, end

    def caveat(self, corpus: Corpus | None = None) -> str:
        """What the numbers come from, said beside every table: the model's own declared caveat
        (or its name), the data and split, and the paper's setup."""
        corpus = corpus or self.corpus
        model = model_caveat(self.encoder)
        about = getattr(corpus, "description", "")
        data = f"Data `{corpus.name}`" + (f" ({about})" if about else "") + f", split `{self.split}`."
        return f"{model} {data} The paper used {PAPER_SETUP}: compare findings, not numbers."


def job_classes(conf_dir: Path = CONF_DIR) -> dict[str, type]:
    """``{yaml stem: job class}`` for every ``conf/analysis/*.yaml``, read from its ``_target_``."""
    out = {}
    for path in sorted((Path(conf_dir) / "analysis").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        if target:
            out[path.stem] = get_class(target)
    return out
