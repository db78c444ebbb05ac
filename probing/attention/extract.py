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

from probing.attention.encoders import EncoderSpec
from probing.attention.layout import Layout
from probing.attention.pieces import Pieces, cut
from probing.attention.wordlevel import MODES, merge_batch, merge_matrices
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)

QUANTITIES = ("attention", "norm", "alti")


class ExtractionError(ValueError):
    pass


@dataclass
class ExtractionSettings:
    """``max_length`` counts pieces with the special tokens; ``None`` means the model's limit.

    ``quantity``: "attention" (the weights α), "norm" (Kobayashi et al. 2020: ||α_ij f_h(x_j)||,
    :mod:`probing.attention.norm`) or "alti" (Ferrando et al. 2022: the whole attention block's
    contributions, one map per layer, :mod:`probing.attention.alti`). ``renormalize``: norm rows
    are rescaled to sum to 1 at piece level before the merge, so every job reads them like
    attention; false keeps raw norms. ALTI rows sum to 1 by definition: it does not apply there.
    """

    mode: str = "mean"
    max_length: int | None = None
    on_overlong: str = "skip"
    batch_size: int = 64
    max_tokens: int | None = 4096
    device: str = "auto"
    flush_every: int = 20
    quantity: str = "attention"
    renormalize: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"extract.mode must be one of {MODES}, not {self.mode!r}")
        if self.on_overlong not in ("skip", "error"):
            raise ValueError(f"extract.on_overlong must be 'skip' or 'error', not {self.on_overlong!r}")
        if self.quantity not in QUANTITIES:
            raise ValueError(f"extract.quantity must be one of {QUANTITIES}, not {self.quantity!r}")

    def key(self) -> dict:
        """The settings that change the maps (part of the cache key)."""
        key = {"mode": self.mode, "max_length": self.max_length or "model"}
        if self.quantity != "attention":  # absent for attention, so older cache keys stay valid
            key["quantity"] = self.quantity
        if self.quantity == "norm":
            key["renormalize"] = self.renormalize
        return key

    def maps_per_layer(self, num_heads: int) -> int:
        """Heads for attention and norm; ALTI is one map per layer."""
        return 1 if self.quantity == "alti" else num_heads


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_max_length(tokenizer, model) -> int:
    limit = tokenizer.model_max_length
    # tokenizers without a configured limit report a huge sentinel
    return int(limit) if limit < 100_000 else int(model.config.max_position_embeddings)


def length_sorted_batches(lengths: dict[int, int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Group sentence indices of similar piece length so that batches carry little padding.

    A batch holds at most ``batch_size`` sentences and, with ``max_tokens``, at most that many
    padded pieces, so short sentences share big batches and long ones bound the memory of the
    (B, L*H, P, P) attention stack.
    """
    order = sorted(lengths, key=lambda i: (lengths[i], i))
    batches, batch = [], []
    for i in order:
        # sorted ascending, so the newcomer sets the padded length
        if batch and (len(batch) == batch_size or (max_tokens and (len(batch) + 1) * lengths[i] > max_tokens)):
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + [batch] if batch else batches


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
        raise ExtractionError("the model returned no attention weights: load it with attn_implementation='eager'")
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
    cfg = model.config
    return Plan(tokenizer, model, device, pieces, skipped, batches, cfg.num_hidden_layers,
                settings.maps_per_layer(cfg.num_attention_heads))


def word_maps(plan: Plan, settings: ExtractionSettings, batches: list[list[int]] | None = None
              ) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Run ``batches`` (default: the whole plan) and yield ``(sentence indices, maps)`` per batch,
    each map (K, T, T) float32 with T = the sentence's word-level tokens under ``plan.layout``."""
    pieces, device = plan.pieces, plan.device
    with torch.inference_mode():
        for batch in plan.batches if batches is None else batches:
            ids, mask = pad_batch([pieces.input_ids[i] for i in batch], plan.tokenizer.pad_token_id, device)
            layers = forward_layers(plan.model, ids, mask, settings.quantity, settings.renormalize)
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
