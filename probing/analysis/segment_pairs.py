"""The paper's [SEP] statistics (§3) on its kind of input: ``[CLS] A [SEP] B [SEP]``, two consecutive
spans of one document, at piece level.

The paper's surface statistics come from 1,000 Wikipedia segments of two consecutive paragraphs
(the released ``preprocess_unlabeled.py``: sentences of one document are gathered until they reach
``max_sequence_length - 3`` = 125 pieces, split at a random sentence boundary into A and B, and the
longer of the two is trimmed until the pair fits 128 pieces). Ours (:func:`document_pairs`):
consecutive sentences of one document (``Sentence.doc_id``, EWT's ``newdoc id``) gathered the same
way until they reach ``max_pieces`` minus the pair's special tokens, or the document ends; a chunk of
one sentence has no B and is dropped, as in the released code. A and B are split at the sentence
boundary that makes their piece counts closest (deterministic, where the released code drew it at
random), encoded with the tokenizer's own pair template (BERT: ``[CLS] A [SEP] B [SEP]``; MPNet:
``<s> A </s></s> B </s>``) and trimmed from the end of the longer segment to ``max_pieces``.

Statistics (:func:`pair_stats`), per head, as the released ``General_Analysis.ipynb`` computes them
on its token-level (piece) maps: within one input, the mass each row puts on a set of columns,
averaged over a set of rows; then the mean over inputs (every input weighs the same):

- ``start``: all rows on the start token ([CLS]; the notebook's ``cls``).
- ``sep``: all rows on every separator together (the notebook's ``sep``, both [SEP]s);
  ``sep_a``: all rows on the separator(s) closing A (MPNet has two); ``sep_b``: on the final one.
- ``sep_sep``: the separator rows on every separator, averaged over the separator rows (the
  notebook's ``sep_sep``, which divides by 2, its number of [SEP] rows; the paper: over 90%).
- ``rest_sep``: every other row ([CLS]'s included) on every separator (the notebook's ``rest_sep``).

A model whose tokenizer adds no end token (the causal LMs) has no separator to look at: the job
returns a "cannot be tested: no end token" section instead of numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure

from probing.analysis._common import head_name
from probing.analysis.base import Section
from probing.attention.extract import autocast, forward_layers, model_max_length, pad_batch, resolve_device
from probing.attention.pieces import piece_layout, word_spans
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)

KEYS = ("start", "sep", "sep_a", "sep_b", "sep_sep", "rest_sep")
LABELS = {"start": "to start", "sep": "to both separators", "sep_a": "to separator after A",
          "sep_b": "to separator after B", "sep_sep": "separator rows to separators",
          "rest_sep": "other rows to separators"}
MAX_PIECES = 128  # the released preprocess_unlabeled.py's max_sequence_length


@dataclass(frozen=True)
class PairPositions:
    """Where the special tokens of one encoded pair sit (piece indices)."""

    start: int | None
    sep_a: tuple[int, ...]  # separator(s) between A and B
    sep_b: int  # the final separator

    @property
    def seps(self) -> list[int]:
        return [*self.sep_a, self.sep_b]


def pair_positions(special_mask: Sequence[int]) -> PairPositions:
    """Read a pair's layout off its special-token mask: a special at 0 is the start token, the
    last position the final separator, any special in between closes A."""
    specials = [p for p, s in enumerate(special_mask) if s]
    last = len(special_mask) - 1
    if not specials or specials[-1] != last:
        raise ValueError("the pair encoding ends in no special token: no separator to measure")
    start = 0 if specials[0] == 0 else None
    middle = tuple(p for p in specials if p not in (0, last))
    if not middle:
        raise ValueError("the pair encoding puts no special token between the two segments")
    return PairPositions(start, middle, last)


def pair_stats(maps, pos: PairPositions) -> dict[str, np.ndarray]:
    """One input's ``(L, H, T, T)`` piece maps (row = from) -> ``{key: (L, H)}`` (module docstring);
    ``start`` is absent when the pair has no start token."""
    a = np.asarray(maps, dtype=np.float64)
    T = a.shape[-1]
    seps = pos.seps
    rest = [i for i in range(T) if i not in seps]
    out = {"sep": a[..., :, seps].sum(-1).mean(-1),
           "sep_a": a[..., :, list(pos.sep_a)].sum(-1).mean(-1),
           "sep_b": a[..., :, pos.sep_b].mean(-1),
           "sep_sep": a[..., seps, :][..., :, seps].sum(-1).mean(-1),
           "rest_sep": a[..., rest, :][..., :, seps].sum(-1).mean(-1)}
    if pos.start is not None:
        out["start"] = a[..., :, pos.start].mean(-1)
    return out


def _pieces(tokenizer, sentence: Sentence) -> int:
    return len(tokenizer(word_spans(sentence.words)[0], add_special_tokens=False)["input_ids"])


def document_pairs(sentences: Iterable[Sentence], tokenizer, budget: int) -> Iterator[tuple[list, list]]:
    """``(A sentences, B sentences)`` per chunk of consecutive sentences of one document that reach
    ``budget`` word pieces (or end the document); chunks of one sentence are dropped."""

    def split(chunk, sizes):
        total, best, run = sum(sizes), 1, 0
        for k in range(1, len(chunk)):
            run += sizes[k - 1]
            if abs(2 * run - total) < abs(2 * sum(sizes[:best]) - total):
                best = k
        return chunk[:best], chunk[best:]

    chunk, sizes, doc = [], [], object()
    for s in sentences:
        if chunk and s.doc_id != doc:
            if len(chunk) > 1:
                yield split(chunk, sizes)
            chunk, sizes = [], []
        chunk.append(s)
        sizes.append(_pieces(tokenizer, s))
        doc = s.doc_id
        if sum(sizes) >= budget:
            if len(chunk) > 1:
                yield split(chunk, sizes)
            chunk, sizes = [], []
    if len(chunk) > 1:
        yield split(chunk, sizes)


def encode_pairs(tokenizer, pairs: list[tuple[list, list]], max_pieces: int) -> list[tuple[list[int], PairPositions]]:
    """Each pair through the tokenizer's own pair template, trimmed to ``max_pieces``."""
    out = []
    for a, b in pairs:
        text_a = word_spans([w for s in a for w in s.words])[0]
        text_b = word_spans([w for s in b for w in s.words])[0]
        enc = tokenizer(text_a, text_b, truncation="longest_first", max_length=max_pieces,
                        return_special_tokens_mask=True)
        out.append((list(enc["input_ids"]), pair_positions(enc["special_tokens_mask"])))
    return out


def segment_pair_stats(model, encoded: list[tuple[list[int], PairPositions]], pad_id, device,
                       batch_size: int = 16, quantity: str = "attention", precision: str = "fp32"
                       ) -> dict[str, np.ndarray]:
    """Mean over inputs of :func:`pair_stats`: ``{key: (L, H)}``."""
    sums: dict[str, np.ndarray] = {}
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # little padding per batch
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[b : b + batch_size]]
            ids, mask = pad_batch([e[0] for e in batch], pad_id, device)
            with autocast(device, precision):
                layers = forward_layers(model, ids, mask, quantity)
            layers = torch.stack([a.float() for a in layers], 1).cpu().numpy()
            for k, (row, pos) in enumerate(batch):
                n = len(row)  # padding left out: rows and columns past the input's own length
                for key, v in pair_stats(layers[k, :, :, :n, :n], pos).items():
                    sums[key] = sums.get(key, 0) + v
    return {key: v / len(encoded) for key, v in sums.items()}


def pairs_figure(stats: dict, names: dict[str, str]) -> Figure:
    """Per-layer means (over heads) of each statistic, with the paper's 0.5 and 0.9 marks."""
    L = next(iter(stats.values())).shape[0]
    layers = np.arange(1, L + 1)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for key in ("start", "sep", "sep_sep"):
        if key in stats:
            ax.plot(layers, stats[key].mean(1), marker="o", label=names[key])
    for y in (0.5, 0.9):
        ax.axhline(y, ls=":", color="grey")
    ax.set_xlabel("layer")
    ax.set_ylabel("avg. attention")
    ax.set_xticks(layers)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return fig


@dataclass(kw_only=True)
class SegmentPairsJob:
    """§3's [SEP] statistics on two-segment inputs of consecutive sentences of one document."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["split=train"]
    max_pieces: int
    max_inputs: int | None
    batch_size: int

    def run(self, ctx) -> Section:
        title = "Two-segment inputs: [CLS] A [SEP] B [SEP] (§3)"
        tokenizer = ctx.tokenizer()
        if not piece_layout(tokenizer, ctx.encoder.add_bos).end:
            message = (f"Model `{ctx.encoder.name}` cannot be tested: no end token (its tokenizer puts no separator "
                       "after a segment), so the paper's [SEP] statistics have nothing to measure. No number was written.")
            log.warning(message)
            return Section(title, message, [], {"skipped": message, "family": ctx.encoder.family})
        device = resolve_device(ctx.extraction.device)
        tokenizer, model = ctx.encoder.load(device)
        max_pieces = min(self.max_pieces, model_max_length(tokenizer, model))
        budget = max_pieces - tokenizer.num_special_tokens_to_add(pair=True)
        pairs = list(islice(document_pairs(ctx.sentences(), tokenizer, budget), self.max_inputs))
        if not pairs:
            raise ValueError(f"split {ctx.split} of {ctx.corpus.name} has no document with two sentences: "
                             "no two-segment input could be built")
        encoded = encode_pairs(tokenizer, pairs, max_pieces)
        stats = segment_pair_stats(model, encoded, tokenizer.pad_token_id, device, self.batch_size,
                                   ctx.extraction.quantity, ctx.extraction.compute_dtype())
        start, end = ctx.special_names()
        start, end = start or "start token", end or "end token"
        names = {**LABELS, "start": f"to {start}", "sep": f"to every {end}", "sep_a": f"to {end} after A",
                 "sep_b": f"to {end} after B", "sep_sep": f"{end} rows to {end}", "rest_sep": f"other rows to {end}"}
        keys = [k for k in KEYS if k in stats]
        L, H = stats["sep"].shape
        ctx.writer.table("segment_pairs_heads", [{"head": head_name(l * H + h, H), "layer": l + 1,
                                                  **{names[k]: float(stats[k][l, h]) for k in keys}}
                                                 for l in range(L) for h in range(H)])
        by_layer = {k: stats[k].mean(1) for k in keys}
        text = ctx.writer.table("segment_pairs_layers", [{"layer": l + 1, **{names[k]: float(by_layer[k][l]) for k in keys}}
                                                         for l in range(L)])
        figures = ctx.writer.figure(pairs_figure(stats, names), "segment_pairs")
        lengths = [len(e[0]) for e in encoded]
        summary = {"inputs": len(encoded), "pieces_mean": float(np.mean(lengths)), "max_pieces": max_pieces,
                   "separators_between": len(encoded[0][1].sep_a), "end_token": end, "family": ctx.encoder.family,
                   "quantity": ctx.extraction.quantity,
                   **{f"{k}_by_layer": by_layer[k] for k in keys},
                   **{f"{k}_max": float(by_layer[k].max()) for k in keys},
                   **{f"{k}_max_layer": int(np.argmax(by_layer[k])) + 1 for k in keys},
                   "layers_sep_over_half": [l + 1 for l in range(L) if by_layer["sep"][l] > 0.5]}
        md = (f"{len(encoded)} inputs of two consecutive spans of one document of `{ctx.split}` through the tokenizer's "
              f"pair template ({np.mean(lengths):.0f} pieces on average, at most {max_pieces}), at piece level; per "
              "input the mass each row puts on the tokens, averaged over the rows, then over inputs (as the released "
              f"General_Analysis). Per layer (mean over heads):\n\n{text}\n\nPaper (BERT-base, Wikipedia): layers 6-10 "
              "put over half of their attention on [SEP]; [SEP] rows put over 90% on [SEP] tokens.")
        return Section(title, md, figures[:1], summary)
