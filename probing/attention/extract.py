"""Sentences in, word-level maps out: the one plan-and-forward path every caller shares.

The store (``probing.attention.store``) writes what :func:`word_maps` yields into the cache; the
attention view, the benchmarks and the sharded extraction call the same functions, so batching,
padding, the length limit and the word-level merge exist once. ``python extract.py`` fills the
cache of one split (``probing.attention.store.run``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from probing import provenance
from probing.attention.encoders import EncoderSpec
from probing.attention.layout import Layout
from probing.attention.pieces import Pieces, cut
from probing.attention.wordlevel import MODES, merge_batch, merge_matrices
from probing.batching import fill_batches
from probing.data.sentence import Sentence
from probing.errors import ProbingError

log = logging.getLogger(__name__)

QUANTITIES = ("attention", "norm", "alti", "rollout")
# quantities computed from another quantity's cache, with no forward pass of their own
DERIVED = {"rollout": "attention"}
PRECISIONS = ("fp32", "bf16", "auto")


class ExtractionError(ProbingError, ValueError):
    pass


@dataclass(kw_only=True)
class ExtractionSettings:
    """``max_length`` counts pieces with the special tokens; ``None`` means the model's limit.

    ``quantity``: "attention" (the weights α), "norm" (Kobayashi et al. 2020: ||α_ij f_h(x_j)||,
    :mod:`probing.attention.norm`) or "alti" (Ferrando et al. 2022: the whole attention block's
    contributions, one map per layer, :mod:`probing.attention.alti`). ``renormalize``: norm rows
    are rescaled to sum to 1 at piece level before the merge, so every job reads them like
    attention; false keeps raw norms. ALTI rows sum to 1 by definition: it does not apply there.
    """

    mode: str
    max_length: int | None
    on_overlong: str
    batch_size: int
    max_tokens: int | None
    device: str
    flush_every: int
    quantity: str
    renormalize: bool
    precision: str

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"extract.mode must be one of {MODES}, not {self.mode!r}")
        if self.on_overlong not in ("skip", "error"):
            raise ValueError(f"extract.on_overlong must be 'skip' or 'error', not {self.on_overlong!r}")
        if self.quantity not in QUANTITIES:
            raise ValueError(f"extract.quantity must be one of {QUANTITIES}, not {self.quantity!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"extract.precision must be one of {PRECISIONS}, not {self.precision!r}")

    def key(self) -> dict:
        """The settings that change the maps (part of the cache key)."""
        key = {"mode": self.mode, "max_length": self.max_length or "model"}
        if self.quantity != "attention":  # absent for attention, so older cache keys stay valid
            key["quantity"] = self.quantity
        if self.quantity == "norm":
            key["renormalize"] = self.renormalize
        if self.compute_dtype() != "fp32":  # absent for fp32, likewise
            key["precision"] = self.compute_dtype()
        return key

    def compute_dtype(self) -> str:
        """"fp32" or "bf16": what ``precision`` means on this machine ("auto": bf16 where the
        hardware runs its matmuls fast)."""
        if self.precision != "auto":
            return self.precision
        return "bf16" if fast_bf16(resolve_device(self.device)) else "fp32"


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matmuls natively (a GPU with bf16, a CPU with AMX or AVX512-BF16)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(provenance.cpu_info()[1])  # not Linux: no, and fp32 is always right


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: bf16 matmuls (Linear layers, q·k and attn·v) under
    ``torch.autocast`` where ``precision`` is "bf16"; everything else (embeddings, layer norms,
    the softmax wherever the mask lifts the scores to float32) as the model computes it."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def linear_weights_in_bf16(model) -> None:
    """Store every Linear layer's weights in bf16 once: autocast casts them to bf16 anyway, at every
    call; embeddings, norms and the attention's own arithmetic keep the model's float32."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# where configs declare their length limit, under their various names
LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")
# models with ALiBi or relative positions (BLOOM, MPT) declare none: read at most this many pieces
NO_DECLARED_LIMIT = 2048


def model_max_length(tokenizer, model) -> int:
    """The most pieces a sentence may have: the tokenizer's limit, else the config's, else
    :data:`NO_DECLARED_LIMIT` (a model with no position table has no limit of its own)."""
    limit = tokenizer.model_max_length
    if limit < 100_000:  # tokenizers without a configured limit report a huge sentinel
        return int(limit)
    for key in LENGTH_KEYS:
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    log.info("%s declares no length limit (%s): sentences of at most %d pieces are read",
             type(model).__name__, "/".join(LENGTH_KEYS), NO_DECLARED_LIMIT)
    return NO_DECLARED_LIMIT


def _named(model) -> str:
    return f"model {type(model).__name__} ({getattr(model.config, 'model_type', '?')})"


def no_attention(model) -> ExtractionError:
    return ExtractionError(f"{_named(model)} returned no attention weights with output_attentions=True (load it "
                           "with attn_implementation='eager'; some architectures return none even so): it cannot be read")


def attention_shape(model, layers: tuple[torch.Tensor, ...], batch: int, pieces: int) -> tuple[int, int]:
    """``(num_layers, num_heads)`` of what a forward pass returned, checked: every layer must give
    one ``(batch, H, pieces, pieces)`` map per head, or the model's attention is not the square
    piece-to-piece kind this pipeline reads (a padded window, a pooled sequence); a one-line
    error says so."""
    name = _named(model)
    if not layers or any(a is None for a in layers):
        raise no_attention(model)
    shapes = {tuple(a.shape) for a in layers}
    heads = {s[1] for s in shapes}
    if len(heads) != 1 or any(len(s) != 4 or s[0] != batch or s[2:] != (pieces, pieces) for s in shapes):
        raise ExtractionError(f"{name} returns attention of shape {sorted(shapes)} for {batch} sequence(s) of "
                              f"{pieces} pieces, not (batch, heads, {pieces}, {pieces}) per layer (padded, windowed "
                              "or pooled attention); it cannot be read")
    return len(layers), heads.pop()


def length_sorted_batches(lengths: dict[int, int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Group sentence indices of similar piece length so that batches carry little padding.

    A batch holds at most ``batch_size`` sentences and, with ``max_tokens``, at most that many
    padded pieces, so short sentences share big batches and long ones bound the memory of the
    (B, L*H, P, P) attention stack.
    """
    order = sorted(lengths, key=lambda i: (lengths[i], i))
    return fill_batches(order, lengths, batch_size, max_tokens)


def pad_batch(input_ids: list[list[int]], pad_id: int | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(B, P)`` ids and attention mask."""
    P = max(map(len, input_ids))
    ids = torch.full((len(input_ids), P), 0 if pad_id is None else pad_id, dtype=torch.long)
    mask = torch.zeros((len(input_ids), P), dtype=torch.long)
    for b, row in enumerate(input_ids):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return ids.to(device), mask.to(device)


def forward_layers(model, ids: torch.Tensor, mask: torch.Tensor, quantity: str = "attention",
                   renormalize: bool = True) -> tuple[torch.Tensor, ...]:
    """(B, P) ids -> one (B, H, P, P) piece-level map per layer ((B, 1, P, P) for ALTI).

    Kept per layer, never stacked: a stacked copy would double the peak memory, which long batches
    of a 30-layer model make the largest allocation of the whole extraction.
    """
    if quantity == "norm":
        from probing.attention.norm import norm_weighted_attentions

        layers = norm_weighted_attentions(model, ids, mask)
    elif quantity == "alti":
        from probing.attention.alti import alti

        layers = alti(model, ids, mask)
    else:
        layers = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    if not layers or any(a is None for a in layers):
        raise no_attention(model)
    if quantity == "norm" and renormalize:
        # a padded row is all zeros: it stays zero instead of dividing by nothing
        layers = tuple(a / a.sum(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny) for a in layers)
    return tuple(layers)


def forward_quantity(model, ids: torch.Tensor, mask: torch.Tensor, quantity: str = "attention",
                     renormalize: bool = True) -> torch.Tensor:
    """(B, P) ids -> (B, L*H, P, P) piece-level maps, layer-major (flat index = layer * H + head)."""
    return torch.cat(forward_layers(model, ids, mask, quantity, renormalize), dim=1)


@dataclass
class Plan:
    """Everything an extraction needs, fixed before any batch runs (so a resumed or sharded run
    forms exactly the batches a single clean run forms)."""

    tokenizer: object
    model: object
    device: torch.device
    pieces: Pieces
    skipped: dict[int, str]
    batches: list[list[int]]
    num_layers: int
    num_heads: int

    @property
    def layout(self) -> Layout:
        return self.pieces.layout


def plan_extraction(encoder: EncoderSpec, sentences: list[Sentence], settings: ExtractionSettings,
                    source: str) -> Plan:
    """Load the model, cut the sentences into pieces, set aside overlong ones, form batches."""
    device = resolve_device(settings.device)
    tokenizer, model = encoder.load(device)
    if settings.compute_dtype() == "bf16":
        linear_weights_in_bf16(model)
    limit = settings.max_length or model_max_length(tokenizer, model)
    pieces = cut(tokenizer, sentences, encoder.add_bos)
    if pieces.unk_words:
        log.warning("%s: %d words gave no word pieces and were fed as %s", source, pieces.unk_words,
                    tokenizer.unk_token)
    skipped = {}
    for i, ids in enumerate(pieces.input_ids):
        if len(ids) > limit:
            if settings.on_overlong == "error":
                raise ExtractionError(
                    f"{source}: sentence {sentences[i].sent_id} has {len(ids)} word pieces, over the "
                    f"limit of {limit}; set extract.on_overlong=skip to leave such sentences out"
                )
            skipped[i] = f"longer than {limit} pieces ({len(ids)})"
    if skipped:
        log.warning("%s: skipped %d of %d sentences longer than %d pieces", source, len(skipped), len(sentences), limit)
    todo = {i: len(ids) for i, ids in enumerate(pieces.input_ids) if i not in skipped}
    batches = length_sorted_batches(todo, settings.batch_size, settings.max_tokens)
    # the shape of what the model returns, read off one short sentence rather than off its config:
    # the configs' names for layers and heads differ, and some models return fewer heads than they
    # declare (ConvBERT keeps num_attention_heads / head_ratio)
    first = pieces.input_ids[batches[0][0]] if batches else [tokenizer.unk_token_id or 0]
    ids, mask = pad_batch([first], tokenizer.pad_token_id, device)
    with torch.inference_mode(), autocast(device, settings.compute_dtype()):
        layers = forward_layers(model, ids, mask, settings.quantity, settings.renormalize)
    num_layers, num_heads = attention_shape(model, layers, 1, ids.shape[1])
    return Plan(tokenizer, model, device, pieces, skipped, batches, num_layers, num_heads)


def word_maps(plan: Plan, settings: ExtractionSettings, batches: list[list[int]] | None = None
              ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Run ``batches`` (default: the whole plan) and yield ``(sentence indices, maps)`` per batch,
    each map (K, T, T) float32 with T = the sentence's word-level tokens under ``plan.layout``."""
    pieces, device = plan.pieces, plan.device
    precision = settings.compute_dtype()
    with torch.inference_mode():
        for batch in plan.batches if batches is None else batches:
            ids, mask = pad_batch([pieces.input_ids[i] for i in batch], plan.tokenizer.pad_token_id, device)
            with autocast(device, precision):
                layers = forward_layers(plan.model, ids, mask, settings.quantity, settings.renormalize)
            # every batch checked against the plan: a model whose attention is not square over its
            # pieces (a padded window, a pooled sequence) stops here with a one-line error
            if attention_shape(plan.model, layers, len(batch), ids.shape[1]) != (plan.num_layers, plan.num_heads):
                raise ExtractionError(f"{_named(plan.model)} returned {len(layers)} layers of {layers[0].shape[1]} "
                                      f"maps, its first sentence {plan.num_layers} of {plan.num_heads}: it cannot be "
                                      "read")
            token_of_piece = [pieces.token_of_piece[i] for i in batch]
            T = max(max(t) for t in token_of_piece) + 1
            F, S = merge_matrices(token_of_piece, ids.shape[1], T, settings.mode)
            F, S = F.to(device), S.to(device)
            # merged one layer at a time (see forward_layers); (B, K, T, T) word level is small
            words = torch.cat([merge_batch(a.float(), F, S) for a in layers], dim=1).cpu().numpy()
            del layers
            sizes = [max(t) + 1 for t in token_of_piece]
            yield batch, [words[b, :, :t, :t] for b, t in enumerate(sizes)]


def word_level_attention(encoder: EncoderSpec, sentences: list[Sentence], settings: ExtractionSettings
                         ) -> tuple[list[np.ndarray | None], Plan]:
    """Maps of a few sentences, uncached (the attention view): ``maps[i]`` is None if skipped."""
    plan = plan_extraction(encoder, sentences, settings, "sentences")
    out: list[np.ndarray | None] = [None] * len(sentences)
    for batch, maps in word_maps(plan, settings):
        for i, m in zip(batch, maps):
            out[i] = m
    return out, plan
