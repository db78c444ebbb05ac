"""The typed batch every probe scores, and how sentences become one.

Sizes: B examples, Q queries (padded), N words (padded), K attention maps (layers x heads),
M = 2K (each map and its transpose, as the released probe's 288 = 2 x 144), D vector dim.
Candidate 0 is ROOT and candidate c >= 1 is word c, as in CoNLL-U.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from probing.attention.layout import Layout

PAD = -100


@dataclass
class ProbeBatch:
    """What a probe net sees.

    lengths: (B,) long, n words per example.
    word_vectors: (B, N, D) float, frozen vector of word c+1 (zeros for padding or without GloVe).
    query_words: (B, Q, N) bool, word c+1 belongs to query q's span.
    query_vectors: (B, Q, D) float, mean vector of the query's words.
    query_mask: (B, Q) bool, real queries.
    cand_mask: (B, Q, N+1) bool, candidate c exists for query q (ROOT only when the task has it).
        Self-attachment is NOT masked here: that is the module's ``mask_self`` option.
    gold: (B, Q, N+1) bool, the query's gold candidate set.
    labels: (B, Q) long, gold label id (-1: outside the vocabulary or none, -100: padding).
    scored: (B, Q) bool, the queries the metrics count (the task's choice, e.g. punctuation out).
    word_attn: (B, Q, N, M) float or None (attention-free probes); maps last, so that weighting
        them is one matrix-vector product. Map m < K: attention FROM the query TO word c+1 (a
        span's rows averaged); m >= K: map m-K's attention FROM word c+1 TO the query (a span's
        columns summed), i.e. the transposed map.
    special_attn: (B, Q, 2, M) float or None, the same for the [start, end] special tokens in place
        of word c+1: m < K FROM the query TO start/end, m >= K FROM start/end TO the query. 0 where
        the model's layout has no such token; a layout without a start token puts the first
        position (its first word, a causal LM's sink) in the start slot unless told not to.
    """

    lengths: Tensor
    word_vectors: Tensor
    query_words: Tensor
    query_vectors: Tensor
    query_mask: Tensor
    cand_mask: Tensor
    gold: Tensor
    labels: Tensor
    scored: Tensor
    word_attn: Tensor | None = None
    special_attn: Tensor | None = None

    @property
    def num_maps(self) -> int:
        """K (the transposes not counted)."""
        return 0 if self.word_attn is None else self.word_attn.shape[-1] // 2

    @property
    def in_query(self) -> Tensor:
        """(B, Q, N+1) bool: candidate c is a word of query q (never ROOT)."""
        return torch.nn.functional.pad(self.query_words, (1, 0))

    @property
    def gold_index(self) -> Tensor:
        """(B, Q) long: the first gold candidate (0 for padding), for the label classifier."""
        return self.gold.to(torch.uint8).argmax(-1)

    def __len__(self) -> int:
        return self.lengths.numel()

    def to(self, device: torch.device | str) -> ProbeBatch:
        """The batch with every tensor on ``device``."""
        return replace(self, **{f.name: None if (t := getattr(self, f.name)) is None else t.to(device)
                                for f in fields(self)})


@dataclass
class ProbeItem:
    """One example as the dataset hands it to :func:`collate`.

    ``maps``: (K, T, T) float16 word-level attention (row = FROM) or None; ``spans``: (Q, S) long
    word indices, 0-based, -1 padding; ``gold``: (Q, G) long candidate indices, -1 padding;
    ``labels``: (Q,) long; ``scored``: (Q,) bool; ``vectors``: (n, D) float32.
    """

    n: int
    spans: np.ndarray
    gold: np.ndarray
    labels: np.ndarray
    scored: np.ndarray
    vectors: np.ndarray
    root: bool
    maps: np.ndarray | None = None
    layout: Layout = Layout()
    # without a start token, ROOT's feature reads attention to the first position (the word there),
    # as a causal LM's sink stands in for [CLS]; False leaves that slot 0 (ROOT's logit constant)
    first_as_start: bool = True


def span_attention(maps: np.ndarray, layout: Layout, spans: np.ndarray, n: int) -> tuple[Tensor, Tensor]:
    """Attention FROM each query to every token and FROM every token to each query, maps last.

    ``maps`` (K, T, T) (row = FROM), ``spans`` (Q, S) 0-based words with -1 padding. Returns
    ``from_query`` (Q, T, K): the span's rows averaged, and ``to_query`` (Q, T, K): the span's
    columns summed, exactly like a split word in the word-level merge. One-word spans take the
    rows and columns as they are, in the maps' own dtype, so their features are bit for bit those
    of the word.
    """
    A = torch.from_numpy(maps)
    if spans.shape[1] == 1:
        tokens = layout.first_word + spans[:, 0]
        if len(tokens) and np.array_equal(tokens, np.arange(tokens[0], tokens[0] + len(tokens))):
            at = slice(int(tokens[0]), int(tokens[0]) + len(tokens))  # consecutive words: views, not copies
        else:
            at = torch.from_numpy(tokens)
        return A[:, at, :].permute(1, 2, 0), A[:, :, at].permute(2, 1, 0)
    A = A.float()
    member = torch.zeros(len(spans), n)  # (Q, n)
    for q, span in enumerate(spans):
        member[q, torch.from_numpy(span[span >= 0])] = 1.0
    words = layout.words(n)
    rows = (member / member.sum(1, keepdim=True)) @ A[:, words, :]  # (K, Q, T)
    cols = A[:, :, words] @ member.T  # (K, T, Q)
    return rows.permute(1, 2, 0), cols.permute(2, 1, 0)


def _specials(layout: Layout, n: int, first_as_start: bool = True) -> list[tuple[int, int]]:
    """(slot, token) for ROOT's features: slot 0 = the start token (without one: the first
    position, when ``first_as_start``), slot 1 = the end token, where the layout has them."""
    start = layout.start_index if layout.start else (0 if first_as_start else None)
    slots = [(0, start), (1, layout.end_index(n))]
    return [(slot, token) for slot, token in slots if token is not None]


def collate(items: list[ProbeItem]) -> ProbeBatch:
    """Pad examples into one :class:`ProbeBatch` (see its docstring for the layout)."""
    B = len(items)
    N = max(max(item.n for item in items), 1)
    Q = max(max(len(item.spans) for item in items), 1)
    G = max(item.gold.shape[1] for item in items)
    D = items[0].vectors.shape[1]
    lengths = torch.tensor([item.n for item in items], dtype=torch.long)

    # small per-query arrays are padded in numpy (cheap) and converted once
    spans = np.full((B, Q, max(item.spans.shape[1] for item in items)), -1, dtype=np.int64)
    gold = np.full((B, Q, G), -1, dtype=np.int64)
    labels = np.full((B, Q), PAD, dtype=np.int64)
    scored = np.zeros((B, Q), dtype=bool)
    vectors = np.zeros((B, N, D), dtype=np.float32)
    root = np.zeros(B, dtype=bool)
    for b, item in enumerate(items):
        q, s = item.spans.shape
        spans[b, :q, :s] = item.spans
        gold[b, :q, : item.gold.shape[1]] = item.gold
        labels[b, :q] = item.labels
        scored[b, :q] = item.scored
        vectors[b, : item.n] = item.vectors
        root[b] = item.root

    spans_t, gold_t = torch.from_numpy(spans), torch.from_numpy(gold)
    query_mask = (spans_t >= 0).any(-1)  # (B, Q)
    query_words = torch.zeros(B, Q, N + 1, dtype=torch.bool)  # column N catches the -1 padding
    query_words.scatter_(2, spans_t.masked_fill(spans_t < 0, N), True)
    query_words = query_words[..., :N].contiguous()
    gold_mask = torch.zeros(B, Q, N + 2, dtype=torch.bool)  # column N+1 catches the -1 padding
    gold_mask.scatter_(2, gold_t.masked_fill(gold_t < 0, N + 1), True)
    gold_mask = gold_mask[..., : N + 1] & query_mask[..., None]

    cand = torch.arange(N + 1)
    cand_mask = (cand[None, None, :] <= lengths[:, None, None]) & query_mask[..., None]
    cand_mask[..., 0] &= torch.from_numpy(root)[:, None]

    word_vectors = torch.from_numpy(vectors)
    counts = query_words.sum(-1, keepdim=True).clamp_min(1)
    # exact for one-word spans: 1.0 * v + 0.0 * the others
    query_vectors = torch.bmm(query_words.float() / counts, word_vectors)

    batch = ProbeBatch(
        lengths=lengths, word_vectors=word_vectors, query_words=query_words, query_vectors=query_vectors,
        query_mask=query_mask, cand_mask=cand_mask, gold=gold_mask, labels=torch.from_numpy(labels),
        scored=torch.from_numpy(scored) & query_mask,
    )
    if items[0].maps is not None:
        batch.word_attn, batch.special_attn = _collate_attention(items, Q, N)
    return batch


def _collate_attention(items: list[ProbeItem], Q: int, N: int) -> tuple[Tensor, Tensor]:
    """(B, Q, N, M) word and (B, Q, 2, M) special-token attention.

    float16 maps become float32 inside the copies into the batch, never as a whole-map copy; only
    the padding is zeroed, not the whole batch.
    """
    K = items[0].maps.shape[0]
    word_attn = torch.empty(len(items), Q, N, 2 * K)
    special_attn = torch.zeros(len(items), Q, 2, 2 * K)
    with warnings.catch_warnings():
        # the store's maps are read-only buffers; nothing here writes to them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for b, item in enumerate(items):
            n, q = item.n, len(item.spans)
            from_query, to_query = span_attention(item.maps, item.layout, item.spans, n)  # (q, T, K) each
            words = item.layout.words(n)
            word_attn[b, :q, :n, :K] = from_query[:, words]
            word_attn[b, :q, :n, K:] = to_query[:, words]
            word_attn[b, q:] = 0.0
            word_attn[b, :q, n:] = 0.0
            for slot, token in _specials(item.layout, n, item.first_as_start):
                special_attn[b, :q, slot, :K] = from_query[:, token]
                special_attn[b, :q, slot, K:] = to_query[:, token]
    return word_attn, special_attn
