"""The analysis-job contract: what every job gets (:class:`Context`), what it is (:class:`Job`)
and what it gives back (:class:`Section`).

A job is one module plus one YAML in ``conf/analysis/`` (its name is the YAML's stem): a
dataclass with the :class:`Job` attributes whose ``run(ctx)`` returns a :class:`Section`. The
runner (:mod:`probing.runner`) builds the context, owns the caveat, the writer, W&B and the run
record; a job holds only its science. The tests and the report find jobs through
:func:`job_classes`, so adding one needs no other edit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from probing import CONF_DIR
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


@dataclass
class Section:
    """What a job gives back: its title, its text (no caveat: the runner puts it beside the
    numbers), its figures and its summary (the JSON-able numbers other code reads from the run
    record). ``corpus``: the corpus the numbers come from when it is not the run's own."""

    title: str
    markdown: str
    figures: list[Path] = field(default_factory=list)  # PNG paths (the SVG/PDF lie beside them)
    summary: dict = field(default_factory=dict)
    corpus: Corpus | None = None


@runtime_checkable
class Job(Protocol):
    """An analysis job. ``tiny_overrides``: the Hydra overrides that make it run on
    ``model=tiny_random data=tiny`` (the tests read them); ``in_report``: the report runs it."""

    tiny_overrides: ClassVar[list[str]]
    in_report: ClassVar[bool]

    def run(self, ctx: Context) -> Section: ...


def check_job(job, name: str):
    """``job`` if it keeps the :class:`Job` contract; else a TypeError naming what it lacks."""
    missing = [a for a in ("tiny_overrides", "in_report", "run") if not hasattr(job, a)]
    if missing:
        raise TypeError(f"conf/analysis/{name}.yaml: {type(job).__name__} is not a Job: it lacks {missing} "
                        "(see probing.analysis.base.Job)")
    return job


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
    overrides: list[str] = field(default_factory=list)  # the run's own (the report passes them on)
    paths: dict = field(default_factory=dict)  # the run's resolved paths (sub-jobs share its caches)
    _tokenizer: object = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_cfg(cls, cfg, out: Path, writer: Writer, overrides: list[str] = ()) -> Context:
        """The context of an ``analyze.yaml`` config (model, data, extraction, cache, split)."""
        return cls(instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract),
                   cfg.paths.attention_cache, cfg.split, Path(out), writer, list(overrides),
                   OmegaConf.to_container(cfg.paths, resolve=True))

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
            out[path.stem] = check_job(get_class(target), path.stem)
    return out
