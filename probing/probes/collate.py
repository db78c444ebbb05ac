"""Pad per-sentence word-level attention into the candidate layout every probe scores.

Candidate 0 is ROOT and candidate c >= 1 is word c, as in CoNLL-U; row d is word d+1.
"""

from __future__ import annotations

import torch

PAD = -100


def collate_sentences(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack sentences into a padded batch; N is the longest sentence, K the number of maps.

    Each item holds ``maps`` (K, n+2, n+2) attention over ``[start] words [end]`` (row = from),
    ``heads`` (n,), ``rels`` (n,), ``punct`` (n,) and ``vectors`` (n, D).

    Returns:
        dep_to_cand: (B, K, N, N+1) attention from word d+1 to candidate c; column 0 is the
            attention to the start token, which stands in for ROOT.
        cand_to_dep: (B, K, N, N+1) attention from candidate c to word d+1; column 0 is word
            d+1's attention to the end token (the original's second ROOT feature).
        cand_vectors: (B, N+1, D) vector of candidate c; ROOT (c = 0) is zeros.
        dep_vectors: (B, N, D) vector of word d+1.
        heads, rels: (B, N) long, padded with -100.
        punct, word_mask: (B, N) bool.
        cand_mask: (B, N, N+1) bool, candidate c exists and is not word d+1 itself.
        lengths: (B,) long.
    """
    lengths = torch.tensor([len(item["heads"]) for item in items], dtype=torch.long)
    B, N = len(items), max(int(lengths.max()), 1)
    K, D = items[0]["maps"].shape[0], items[0]["vectors"].shape[-1]
    dtype = items[0]["maps"].dtype

    dep_to_cand = torch.zeros(B, K, N, N + 1, dtype=dtype)
    cand_to_dep = torch.zeros(B, K, N, N + 1, dtype=dtype)
    cand_vectors = torch.zeros(B, N + 1, D, dtype=items[0]["vectors"].dtype)
    heads = torch.full((B, N), PAD, dtype=torch.long)
    rels = torch.full((B, N), PAD, dtype=torch.long)
    punct = torch.zeros(B, N, dtype=torch.bool)

    for b, item in enumerate(items):
        n = int(lengths[b])
        maps = torch.as_tensor(item["maps"])
        words = maps[:, 1 : n + 1, 1 : n + 1]  # (K, n, n) word-to-word, row = from
        dep_to_cand[b, :, :n, 0] = maps[:, 1 : n + 1, 0]
        dep_to_cand[b, :, :n, 1 : n + 1] = words
        cand_to_dep[b, :, :n, 0] = maps[:, 1 : n + 1, n + 1]
        cand_to_dep[b, :, :n, 1 : n + 1] = words.transpose(-1, -2)
        cand_vectors[b, 1 : n + 1] = torch.as_tensor(item["vectors"])
        heads[b, :n] = torch.as_tensor(item["heads"], dtype=torch.long)
        rels[b, :n] = torch.as_tensor(item["rels"], dtype=torch.long)
        punct[b, :n] = torch.as_tensor(item["punct"], dtype=torch.bool)

    word = torch.arange(N)
    cand = torch.arange(N + 1)
    word_mask = word[None, :] < lengths[:, None]
    cand_mask = (
        word_mask[:, :, None]
        & (cand[None, None, :] <= lengths[:, None, None])
        & (cand[None, None, :] != word[None, :, None] + 1)
    )
    return {
        "dep_to_cand": dep_to_cand,
        "cand_to_dep": cand_to_dep,
        "cand_vectors": cand_vectors,
        "dep_vectors": cand_vectors[:, 1:].clone(),
        "heads": heads,
        "rels": rels,
        "punct": punct,
        "word_mask": word_mask,
        "cand_mask": cand_mask,
        "lengths": lengths,
    }
