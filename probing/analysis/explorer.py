"""The offline attention explorer: one self-contained HTML page that links every head statistic to
the sentences behind it (issue 19).

    python analyze.py analysis=explorer model=minilm_l6
    python analyze.py analysis=explorer "analysis.quantities=[attention,norm]"

The page holds, per model: a layer x head map coloured by any statistic (the surface shares and
entropy of :func:`~probing.analysis.surface.surface_stats`, each Table 1 relation's accuracy from
:func:`~probing.analysis.syntax.relation_accuracies`, the Table 2 coreference accuracy from
:func:`~probing.analysis.coref.corpus_coref`, the behaviour cluster of
:func:`~probing.analysis.similarity.behaviour_labels`), on raw and norm-weighted attention; a
bertviz-style sentence view with the gold tree and each word marked right or wrong under Table 1's
rules (:meth:`~probing.analysis.syntax.RelationAccumulator.score`); a searchable sample of the split;
the Table 1/2 rows; a thumbnail per head; several models side by side; SVG/PNG export. Nothing is
computed in the page that a table reports: the statistics come from the science code, over the
whole split, and the page only shows them.

Several models on one page (the families run):

    job = ExplorerJob(num_sentences=50)            # or instantiate(cfg.analysis) of analysis=explorer
    pages = [job.collect(ctx_of(model)) for model in models]   # each model's own Context
    write_explorer(pages, "explorer", writer=ctx.writer)        # or a path

Sizes: the sample's maps are stored one byte per weight in steps of 1/255, or coarser steps
(1/127 ... 1/15) until the page fits ``max_bytes`` (5 MB), gzipped and base64-encoded; the page
says which steps, and unpacks the maps with the browser's own ``DecompressionStream``. Scripts and styles are ours,
inline (``explorer_assets/``), and a Content-Security-Policy forbids every network request.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import html
import json
import logging
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import ClassVar

import numpy as np

from probing.analysis.base import Context, Section, layout_of
from probing.analysis.coref import CorefJob, CorefResult, corpus_coref
from probing.analysis.similarity import behaviour_labels
from probing.analysis.surface import surface_stats
from probing.analysis.syntax import (
    DIRECTIONS,
    RelationAccumulator,
    SyntaxJob,
    SyntaxResult,
    WordScores,
    relation_accuracies,
)
from probing.attention.layout import Layout
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("explorer_assets")
RESTAURANT = "The food is always fresh and hot - ready to eat !"  # the paper talk's running example
SURFACE_KEYS = ("first", "start", "end", "punct", "prev", "next", "self", "entropy")
# steps of the stored maps (one byte per weight), the finest whose page fits max_bytes
LEVEL_STEPS = (255, 127, 63, 31, 15)
MAX_BYTES = 5_000_000


def rounding(levels: int) -> str:
    """What the page says about its maps."""
    return (f"Attention weights in the sentence and model views are rounded to multiples of 1/{levels} (one "
            f"byte each), so a weight under {0.5 / levels:.4f} is drawn as 0; every statistic was computed "
            "before rounding, from the float16 cache.")


@dataclass
class QuantityData:
    """One model's statistics and sample maps for one quantity (raw attention or norm-weighted)."""

    stats: dict  # surface_stats() output: (L, H) arrays, None where the layout lacks the token
    behaviour: list[str]  # (K,) behaviour_labels()
    syntax: SyntaxResult | None  # None where the data has no parse
    maps: list[np.ndarray]  # per sample sentence: (K, T, T)
    scores: list[WordScores | None]  # per sample sentence: Table 1's per-word results
    coref: CorefResult | None = None
    coref_about: dict = field(default_factory=dict)  # corpus, split, chunks, skipped


@dataclass
class ExplorerData:
    """Everything the page shows about one model; :func:`write_explorer` takes a list of them."""

    name: str
    caveat: str
    family: str
    num_layers: int
    num_heads: int
    layout: Layout
    special: tuple[str | None, str | None]  # start and end token names
    corpus: str
    split: str
    sentences: list[Sentence]  # the sample
    quantities: dict[str, QuantityData]
    featured: int = 0  # the sample's first sentences that were asked for by text (the page opens on them)
    rules: dict = field(default_factory=dict)  # Table 1's options, said in the page
    notes: list[str] = field(default_factory=list)  # what was left out and why


def pick_sentences(store, sentences: list[Sentence], num: int, *, seed: int = 0, max_words: int = 40,
                   include: list[str] = (RESTAURANT,)) -> list[int]:
    """Indices of ``num`` sentences with maps: those whose text (words joined by spaces) is in
    ``include`` first, then a seeded draw among the parsed sentences of 2..``max_words`` words, in
    corpus order."""
    kept = [int(i) for i in store.kept]
    text = {i: " ".join(sentences[i].words) for i in kept}
    wanted = [i for s in include for i in kept if text[i] == s][:num]
    pool = [i for i in kept if 2 <= len(sentences[i]) <= max_words and i not in wanted
            and sentences[i].heads is not None] or [i for i in kept if i not in wanted]
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(pool), size=min(num - len(wanted), len(pool)), replace=False) if pool else []
    return wanted + sorted(pool[j] for j in drawn)


def quantity_data(store, sentences: list[Sentence], picks: list[int], *, causal: bool = False,
                  max_sentences: int | None = None, min_count: int = 100, **syntax_options) -> QuantityData:
    """Statistics over the split (its first ``max_sentences``, None: all) and the maps of ``picks``."""
    L, H, K, layout = store.num_layers, store.num_heads, store.num_maps, layout_of(store)
    stats = surface_stats(islice(store.pairs(sentences), max_sentences), L, H, layout, causal=causal)
    parsed = any(sentences[i].heads is not None for i in store.kept)
    syntax = relation_accuracies(islice(store.pairs(sentences), max_sentences), K, min_count=min_count,
                                 num_heads=H, layout=layout, **syntax_options) if parsed else None
    scorer = RelationAccumulator(K, H, layout, **syntax_options)
    maps = [np.asarray(store.maps(i), dtype=np.float32) for i in picks]
    scores = [scorer.score(m, sentences[i]) for m, i in zip(maps, picks)]
    return QuantityData(stats, behaviour_labels(stats), syntax, maps, scores)


def quantised(maps: np.ndarray, levels: int = 255) -> np.ndarray:
    """(K, T, T) weights in [0, 1] -> uint8 steps of 1/``levels``."""
    if not 1 <= levels <= 255:
        raise ValueError(f"levels must be 1..255 (one byte per weight), not {levels}")
    return np.clip(np.rint(np.asarray(maps, dtype=np.float64) * levels), 0, levels).astype(np.uint8)


def _r(x, digits: int = 4):
    """Rounded floats for the page's JSON (None stays None)."""
    if x is None:
        return None
    a = np.round(np.asarray(x, dtype=np.float64), digits)
    return a.tolist()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _quantity_json(q: QuantityData, num_heads: int) -> dict:
    out = {"stats": {k: _r(np.ravel(q.stats[k]) if q.stats.get(k) is not None else None) for k in SURFACE_KEYS},
           "behaviour": list(q.behaviour), "uniform_entropy": _r(q.stats["uniform_entropy"]),
           "num_sentences": int(q.stats["num_sentences"]), "relations": [], "coref": None}
    if q.syntax is not None:
        out["relations"] = [{**{k: (_r(v) if isinstance(v, float) else v) for k, v in row.items()},
                             "acc": _r(q.syntax.accuracy[i])} for i, row in enumerate(q.syntax.table)]
    if q.coref is not None:
        c = q.coref
        out["coref"] = {"best_head": c.best_head, "counts": c.counts.tolist(), "acc": _r(c.head_accuracy),
                        "nearest": _r(c.nearest), "same_head": _r(c.same_head), **q.coref_about}
    # Table 1's per-word results of every sample sentence, bit-packed: (2, K, n) each, in order
    bits = [np.zeros((2, num_heads, 0), bool) if s is None else s.correct for s in q.scores]
    out["correct"] = _b64(np.packbits(np.concatenate([b.ravel() for b in bits]) if bits else np.zeros(0, bool)))
    return out


def model_json(d: ExplorerData) -> dict:
    """The page's description of one model (its maps: :func:`map_blobs`)."""
    first = next(iter(d.quantities.values()))
    sentences = []
    for s, m, sc in zip(d.sentences, first.maps, first.scores):
        sentences.append({"id": s.sent_id, "words": list(s.words), "T": int(m.shape[-1]),
                          "heads": None if s.heads is None else [int(h) for h in s.heads],
                          "rels": None if sc is None else [str(r) for r in sc.names]})
    meta = {"name": d.name, "caveat": d.caveat, "family": d.family, "L": d.num_layers, "H": d.num_heads,
            "layout": d.layout.to_dict(), "special": list(d.special), "corpus": d.corpus, "split": d.split,
            "sentences": sentences, "featured": d.featured, "rules": d.rules, "notes": d.notes,
            "directions": list(DIRECTIONS),
            "quantities": {name: _quantity_json(q, d.num_layers * d.num_heads) for name, q in d.quantities.items()}}
    return meta


def map_blobs(d: ExplorerData, levels: int) -> dict[str, str]:
    """Each quantity's sample maps, sentence after sentence: uint8, gzipped, base64."""
    return {name: _b64(gzip.compress(b"".join(quantised(m, levels).tobytes() for m in q.maps), compresslevel=9,
                                     mtime=0))  # mtime 0: same maps, same bytes
            for name, q in d.quantities.items()}


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """JSON inside <script>: no "<" that could close the element early."""
    return text.replace("<", "\\u003c")


def explorer_html(models: list[ExplorerData], title: str | None = None, max_bytes: int | None = MAX_BYTES) -> str:
    """The page for one or more models (several: the compare panel lines their head maps up)."""
    return explorer_page(models, title, max_bytes)[0]


def explorer_page(models: list[ExplorerData], title: str | None = None, max_bytes: int | None = MAX_BYTES,
                  steps: tuple[int, ...] = LEVEL_STEPS) -> tuple[str, int]:
    """The page and the steps its maps were rounded to: the first of ``steps`` whose page stays
    within ``max_bytes`` (None: the first); the page says which. A page that does not fit even at
    the last step is made all the same, with a warning."""
    if not models:
        raise ValueError("the explorer needs at least one model")
    metas = [model_json(d) for d in models]
    for levels in steps if max_bytes else steps[:1]:
        blobs = [map_blobs(d, levels) for d in models]
        page = _page(models, metas, blobs, levels, title)
        if max_bytes is None or len(page.encode("utf-8")) <= max_bytes:
            break
        log.info("explorer: %.1f MB with maps in 1/%d steps, over %.1f MB; rounding more", len(page) / 1e6, levels,
                 max_bytes / 1e6)
    else:
        log.warning("explorer: %.1f MB, over the %.1f MB asked for even in 1/%d steps; fewer sentences "
                    "(analysis.num_sentences) make it smaller", len(page) / 1e6, max_bytes / 1e6, levels)
    return page, levels


def _page(models: list[ExplorerData], metas: list[dict], blobs: list[dict[str, str]], levels: int,
          title: str | None) -> str:
    tags = [f'<script type="application/octet-stream" id="maps-{i}-{html.escape(q)}" '
            f'data-encoding="gzip+base64">{b}</script>' for i, maps in enumerate(blobs) for q, b in maps.items()]
    data = {"models": metas, "rounding": rounding(levels), "levels": levels}
    title = title or "Attention explorer: " + ", ".join(d.name for d in models)
    blob = _script_safe(json.dumps(data, separators=(",", ":"), allow_nan=False))
    csp = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
           "img-src data: blob:; connect-src data: blob:")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{_asset("explorer.css")}</style>
</head>
<body>
{_asset("explorer.html")}
<script type="application/json" id="explorer-data">{blob}</script>
{chr(10).join(tags)}
<script>{_asset("explorer.js")}</script>
</body></html>
"""


def write_explorer(models: list[ExplorerData], path, title: str | None = None, writer=None,
                   max_bytes: int | None = MAX_BYTES) -> Path:
    """One explorer page for ``models`` at ``path`` (one model: the single-model page; see
    :func:`explorer_html`). With a :class:`~probing.writer.Writer`, ``path`` is a name and the
    page goes through ``writer.html`` (and to W&B as ``wandb.Html``)."""
    text = explorer_html(models, title, max_bytes)
    if writer is not None:
        return writer.html(str(path), text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


READY = "document.body.dataset.ready === '1'"
SHOT_PIXELS = 1_500_000  # a panel's screenshot at most (the model view of 270 heads is tall): well under 2 MB


def screenshot_panels(html_path, out_dir, prefix: str | None = None, width: int = 1400,
                      browser=None) -> list[Path]:
    """A PNG of every panel of an explorer page, taken by headless Chromium (``browser``, a
    :class:`probing.browser.Chromium`, or a new one): ``<out_dir>/<prefix>-<panel>.png``, prefix
    the page's file stem; the page as it opens (the first relation's best head selected)."""
    from probing.browser import Chromium

    html_path, out_dir = Path(html_path).resolve(), Path(out_dir)
    prefix = prefix or html_path.stem
    own = browser is None
    browser = browser or Chromium()
    try:
        page = browser.page(width=width)
        page.goto(html_path.as_uri(), READY)
        panels = page.evaluate("[...document.querySelectorAll('section.panel:not([hidden])')].map(e => e.id)")
        return [page.screenshot(out_dir / f"{prefix}-{p.removeprefix('panel-')}.png", f"#{p}", SHOT_PIXELS)
                for p in panels]
    finally:
        if own:
            browser.close()


@dataclass(kw_only=True)
class ExplorerJob:
    """The offline explorer of the run's model: statistics of the split, a sample of its sentences."""

    in_report: ClassVar[bool] = True
    # tiny-train holds the tiny data's one coreference chain; the tiny dev split has 3 sentences
    tiny_overrides: ClassVar[list[str]] = ["data@analysis.coref.corpus=tiny", "analysis.coref_split=train",
                                           "analysis.syntax.min_count=2"]
    num_sentences: int
    include: list[str]  # always in the sample when present
    max_words: int  # longer sentences are left out of the sample (not of the statistics)
    seed: int
    quantities: list[str]  # and/or "norm"
    max_sentences: int | None  # statistics over the first N sentences of the split; None: all
    syntax: SyntaxJob  # Table 1's settings: the syntax_heads job's own
    coref: CorefJob | None  # Table 2's: the coref_heads job's (its corpus, its chunks); None: no column
    coref_split: str | None  # null: the run's split
    coref_quantities: list[str]
    max_bytes: int | None  # the page's size: its maps are rounded more until it fits; None: 1/255
    name: str

    def collect(self, ctx: Context) -> ExplorerData:
        """The model's page data (the families job calls this per model, then :func:`write_explorer`)."""
        if not self.quantities:
            raise ValueError("analysis.quantities is empty: give attention and/or norm")
        causal = ctx.encoder.family == "causal_lm"
        options = {"label_level": self.syntax.label_level, "label_names": self.syntax.label_names,
                   "head_dep_rule": self.syntax.head_dep_rule}
        opened = {q: self._context(ctx, q).attention() for q in self.quantities}
        store, sentences = opened[self.quantities[0]]
        common = set.intersection(*(set(map(int, s.kept)) for s, _ in opened.values()))
        picks = [i for i in pick_sentences(store, sentences, self.num_sentences, seed=self.seed,
                                           max_words=self.max_words, include=self.include) if i in common]
        featured = sum(" ".join(sentences[i].words) in self.include for i in picks)
        notes = []
        quantities = {}
        for q, (st, sents) in opened.items():
            log.info("explorer: %s statistics of %s", q, ctx.encoder.name)
            quantities[q] = quantity_data(st, sents, picks, causal=causal, max_sentences=self.max_sentences,
                                          min_count=self.syntax.min_count, **options)
            if self.coref is not None and q in self.coref_quantities:
                notes += self._coref(self._context(ctx, q), quantities[q])
        layout = layout_of(store)
        return ExplorerData(
            name=ctx.encoder.name, caveat=ctx.caveat(), family=ctx.encoder.family, num_layers=store.num_layers,
            num_heads=store.num_heads, layout=layout, special=ctx.special_names(layout), corpus=ctx.corpus.name,
            split=ctx.split, sentences=[sentences[i] for i in picks], quantities=quantities, featured=featured,
            rules={**options, "min_count": self.syntax.min_count, "max_sentences": self.max_sentences}, notes=notes)

    def _context(self, ctx: Context, quantity: str) -> Context:
        if quantity == ctx.extraction.quantity:
            return ctx
        return dataclasses.replace(ctx, extraction=dataclasses.replace(ctx.extraction, quantity=quantity))

    def _coref(self, ctx: Context, q: QuantityData) -> list[str]:
        corpus, split = self.coref.corpus or ctx.corpus, self.coref_split or ctx.split
        try:
            res, chunks, skipped = corpus_coref(ctx, corpus, split, self.coref.max_words)
        except (FileNotFoundError, ValueError) as e:  # no such corpus here, or no Entity= annotation
            log.warning("explorer: coreference left out: %s", e)
            return [f"Coreference left out ({ctx.extraction.quantity}): {e}"]
        q.coref = res
        q.coref_about = {"corpus": corpus.name, "split": split, "chunks": chunks, "skipped": skipped}
        return []

    def run(self, ctx: Context) -> Section:
        data = self.collect(ctx)
        page, levels = explorer_page([data], max_bytes=self.max_bytes)
        path = ctx.writer.html(self.name, page)
        first = data.quantities[self.quantities[0]]
        best = None if first.syntax is None else first.syntax.table[0]
        summary = {"html": path.name, "bytes": path.stat().st_size, "levels": levels, "sentences": len(data.sentences),
                   "quantities": list(data.quantities), "heads": data.num_layers * data.num_heads,
                   "coref": first.coref is not None,
                   "all_best_head": None if best is None else best["head"]}
        md = (f"Explore every head offline in [`{path.name}`]({path.name}) ({path.stat().st_size / 1e6:.1f} MB; "
              f"{len(data.sentences)} sentences of `{data.corpus}` `{data.split}`, "
              f"{', '.join(data.quantities)}). {rounding(levels)}" + "".join(f" {n}" for n in data.notes))
        return Section("Attention explorer", md, [], summary)
