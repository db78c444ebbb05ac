"""The field's attention-sink metric (Gu et al., ICLR 2025, "When Attention Sink Emerges in Language
Models: An Empirical View"), at piece level, beside their published shares.

Definition, as their released code computes it (sail-sg/Attention-Sink, ``eval_sink_open_source.py``,
``compute_attention_sink``):

- ``α₁`` of head (l, h) on one input of ``T`` pieces: the attention TO the first position averaged
  over ALL ``T`` query rows, the first row itself included (``(1/T) Σ_i A[i, 0]``; their code divides
  column j by ``T - j``, the number of rows that can see it, which for j = 0 is every row). In a
  causal model that first row is 1 by construction; :func:`alpha_first` with ``forced_rows=1``
  leaves it out, which we report beside theirs (issue 18 §5: forced rows are no finding).
- ``Sink₁^ε``: the share of (input, layer, head) triples with ``α₁ > ε``, strictly, ε = 0.3. The
  threshold is applied per input, then averaged over inputs, layers and heads (their
  ``(importance_scores > epsilon).mean(dim=(0, 1, 2))``), not applied to an input-averaged α₁.
- Their inputs: natural-text prompts, each run through the tokenizer with its own special tokens
  (a BOS for LLaMA/Mistral, none for GPT-2) and cut to its first T = 64 tokens.

Ours (:func:`pack_inputs`): the run's split as running text. Each input starts at a sentence start
(their prompts start at a text's start), takes consecutive sentences (documents may be crossed;
EWT's are short) joined by spaces and cut by :func:`probing.attention.pieces.cut` with the
tokenizer's own special tokens (encoders: [CLS]/<s> first and [SEP]/</s> last; Gemma: <bos>;
SmolLM2: none), and keeps the first ``T - specials`` word pieces, so every input is exactly T
pieces, specials included. The next input starts at the next unused sentence. For an encoder the
first position is its start token, so α₁ is attention to [CLS]/<s>, not to the end token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure

from probing.analysis import paper
from probing.analysis._common import head_name
from probing.analysis.base import Section
from probing.analysis.coref import join_chunk
from probing.attention.extract import autocast, forward_layers, model_max_length, pad_batch, resolve_device
from probing.attention.layout import Layout
from probing.attention.pieces import cut, piece_layout
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)

EPSILON = 0.3  # Gu et al.'s ε
TOKENS = 64  # Gu et al.'s T


def alpha_first(maps, forced_rows: int = 0) -> np.ndarray:
    """``(..., T, T)`` attention maps (row = from) -> ``(...)`` mean attention to position 0 over
    the query rows ``forced_rows..T-1``, in float64 (so a hand-written 0.3 stays 0.3)."""
    a = np.asarray(maps)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"maps must be (..., T, T), got {a.shape}")
    return column_mean(a[..., 0], forced_rows)


def column_mean(column, forced_rows: int = 0) -> np.ndarray:
    """``(..., T)`` attention of every query row to position 0 -> ``(...)`` its mean over the rows
    ``forced_rows..T-1``, in float64."""
    c = np.asarray(column, dtype=np.float64)
    if not 0 <= forced_rows < c.shape[-1]:
        raise ValueError(f"forced_rows={forced_rows} leaves no row of {c.shape[-1]}")
    return c[..., forced_rows:].mean(-1)


def sink_stats(alpha, epsilon: float = EPSILON) -> dict:
    """``alpha`` ``(N, L, H)`` (input, layer, head) -> ``share`` (Sink₁^ε as a fraction: the mean
    of ``alpha > epsilon`` over all three axes), ``share_by_layer`` (L,), ``alpha_by_layer`` (L,),
    ``alpha_by_head`` and ``share_by_head`` (L, H)."""
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] == 0:
        raise ValueError(f"alpha must be (inputs, layers, heads) with at least one input, got {a.shape}")
    over = a > epsilon  # strict, as in their code
    return {"share": float(over.mean()), "share_by_layer": over.mean((0, 2)), "alpha_by_layer": a.mean((0, 2)),
            "alpha_by_head": a.mean(0), "share_by_head": over.mean(0)}


def pack_inputs(tokenizer, sentences: Sequence[Sentence], tokens: int, add_bos: bool | None = None,
                max_inputs: int | None = None) -> tuple[list[list[int]], Layout]:
    """Piece ids of inputs of exactly ``tokens`` pieces, specials included (module docstring), and
    the tokenizer's layout. Text left over at the end that cannot fill an input is dropped."""
    layout = piece_layout(tokenizer, add_bos)
    need = tokens - layout.num_specials
    if need < 1:
        raise ValueError(f"tokens={tokens} leaves no room for words beside the {layout.describe()} special tokens")
    start, end = int(layout.start), int(layout.end)
    out, i = [], 0
    while i < len(sentences) and (max_inputs is None or len(out) < max_inputs):
        group = []
        # sentence by sentence until the running text has enough pieces (re-cut each time: a
        # sentence's pieces depend on the text before it, e.g. a BPE leading space)
        while i < len(sentences):
            group.append(sentences[i])
            i += 1
            ids = cut(tokenizer, [join_chunk(group)], add_bos).input_ids[0]
            if len(ids) - start - end >= need:
                out.append(ids[:start] + ids[start : len(ids) - end][:need] + ids[len(ids) - end :])
                break
    return out, layout


def first_position_alphas(model, inputs: list[list[int]], pad_id, device, causal: bool, batch_size: int = 16,
                          quantity: str = "attention", precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """α₁ of every (input, layer, head): ``(N, L, H)`` with every row, and ``(N, L, H)`` without the
    rows whose attention is forced (a causal model's first row; none in an encoder)."""
    every, free = [], []
    with torch.inference_mode():
        for b in range(0, len(inputs), batch_size):
            ids, mask = pad_batch(inputs[b : b + batch_size], pad_id, device)
            with autocast(device, precision):
                layers = forward_layers(model, ids, mask, quantity)
            # (B, L, H, T): only the first column is needed
            col = torch.stack([a[..., :, 0].double() for a in layers], 1).cpu().numpy()
            every.append(column_mean(col))
            free.append(column_mean(col, int(causal)))
    return np.concatenate(every), np.concatenate(free)


def sink_figure(stats: dict, epsilon: float, first: str) -> Figure:
    """Per-head α₁ (dots) and the layer means (line) against ε."""
    L, H = stats["alpha_by_head"].shape
    layers = np.arange(1, L + 1)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(np.repeat(layers, H), stats["alpha_by_head"].ravel(), s=8, alpha=0.5, label="head (mean over inputs)")
    ax.plot(layers, stats["alpha_by_layer"], marker="o", color="C1", label="layer mean")
    ax.axhline(epsilon, ls="--", color="k", label=f"ε = {epsilon}")
    ax.set_xlabel("layer")
    ax.set_ylabel(f"α₁: attention to {first}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return fig


@dataclass(kw_only=True)
class SinkMetricJob:
    """Gu et al.'s Sink₁^ε: the share of heads whose mean attention to the first position is over ε."""

    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["split=train", "analysis.tokens=16"]
    tokens: int
    epsilon: float
    max_inputs: int | None
    batch_size: int

    def run(self, ctx) -> Section:
        device = resolve_device(ctx.extraction.device)
        tokenizer, model = ctx.encoder.load(device)
        limit = model_max_length(tokenizer, model)
        if self.tokens > limit:
            raise ValueError(f"analysis.tokens={self.tokens} is over model {ctx.encoder.name}'s limit of {limit} pieces")
        inputs, layout = pack_inputs(tokenizer, ctx.sentences(), self.tokens, ctx.encoder.add_bos, self.max_inputs)
        if not inputs:
            raise ValueError(f"split {ctx.split} of {ctx.corpus.name} holds fewer than {self.tokens} pieces of text: "
                             "no input could be packed; lower analysis.tokens or use a larger split")
        causal = ctx.encoder.family == "causal_lm"
        alpha, alpha_free = first_position_alphas(model, inputs, tokenizer.pad_token_id, device, causal,
                                                  self.batch_size, ctx.extraction.quantity,
                                                  ctx.extraction.compute_dtype())
        stats, free = sink_stats(alpha, self.epsilon), sink_stats(alpha_free, self.epsilon)
        first = (ctx.special_names(layout)[0] if layout.start else None) or "the first word piece"
        L, H = stats["alpha_by_head"].shape
        heads = [{"head": head_name(l * H + h, H), "layer": l + 1, "alpha1": float(stats["alpha_by_head"][l, h]),
                  f"share of inputs with alpha1 > {self.epsilon}": float(stats["share_by_head"][l, h])}
                 for l in range(L) for h in range(H)]
        ctx.writer.table("sink_metric_heads", heads)
        layers = [{"layer": l + 1, "alpha1 (mean over heads and inputs)": float(stats["alpha_by_layer"][l]),
                   f"share alpha1 > {self.epsilon}": float(stats["share_by_layer"][l]),
                   "share without forced rows": float(free["share_by_layer"][l])} for l in range(L)]
        layer_text = ctx.writer.table("sink_metric_layers", layers)
        shares = [{"model": f"{ctx.encoder.name} (ours, {ctx.corpus.name} {ctx.split})", "Sink share %": 100 * stats["share"]}]
        shares += [{"model": f"paper: {name}", "Sink share %": v} for name, v in paper.SINK_METRIC.items()]
        share_text = ctx.writer.table("sink_metric", shares, digits=1)
        figures = ctx.writer.figure(sink_figure(stats, self.epsilon, first), "sink_metric")
        summary = {"inputs": len(inputs), "tokens": self.tokens, "epsilon": self.epsilon, "first_token": first,
                   "quantity": ctx.extraction.quantity, "family": ctx.encoder.family, "layout": layout.describe(),
                   "sink_share": stats["share"], "sink_share_without_forced_row": free["share"],
                   "alpha1_by_layer": stats["alpha_by_layer"], "share_by_layer": stats["share_by_layer"],
                   "alpha1_max_layer": int(np.argmax(stats["alpha_by_layer"])) + 1,
                   "alpha1_max": float(stats["alpha_by_layer"].max())}
        forced = ("The first row of a causal model attends only to itself (1 by construction); without it the "
                  f"share is {100 * free['share']:.1f}%." if causal else "An encoder has no forced rows.")
        md = (f"Gu et al.'s sink metric: the share of (input, layer, head) triples whose attention to the first "
              f"position ({first}), averaged over all {self.tokens} query rows, is over ε = {self.epsilon} "
              f"(strictly), over {len(inputs)} inputs of exactly {self.tokens} pieces packed from consecutive "
              f"sentences of `{ctx.split}` ({ctx.extraction.quantity}). {forced}\n\n{share_text}\n\n"
              f"The paper's shares: {paper.SINK_METRIC_SETUP}. Per layer:\n\n{layer_text}")
        return Section("Attention-sink metric (Gu et al. 2025)", md, figures[:1], summary)
