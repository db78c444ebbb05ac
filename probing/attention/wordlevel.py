"""Word-piece attention to word-level attention (Clark et al. 2019, section 4.1).

Attention *to* a split word is the sum over its pieces; attention *from* a split word is the
mean over its pieces (``mode="mean"``, the paper) or its first piece (``mode="first"``, what the
released code did). Both are linear maps, so a whole batch is ``F @ A @ S`` with a "from"
matrix ``F`` and a "to" matrix ``S``; padded pieces get zero rows and columns in both.
Rows still sum to 1 because each row of ``F`` sums to 1 and ``S`` only adds columns up.

Token layout of the result: 0 = start special token, 1..n = words, n+1 = end special token.
"""

from __future__ import annotations

import torch

MODES = ("mean", "first")


def piece_to_token(word_ids: list[int | None], n_words: int) -> list[int]:
    """Map each piece to its word-level token: 0 for the start special, n+1 for the end one.

    ``word_ids`` is the tokenizer's ``word_ids()`` for one unpadded single sentence.
    """
    last = len(word_ids) - 1
    out = []
    for p, w in enumerate(word_ids):
        if w is not None:
            out.append(w + 1)
        elif p == 0:
            out.append(0)
        elif p == last:
            out.append(n_words + 1)
        else:
            raise ValueError(f"special token inside the sentence at piece {p}: {word_ids}")
    if out[0] != 0 or out[-1] != n_words + 1:
        raise ValueError(f"expected start and end special tokens around the words: {word_ids}")
    if sorted(set(out)) != list(range(n_words + 2)):
        missing = sorted(set(range(n_words + 2)) - set(out))
        raise ValueError(f"tokens {missing} have no pieces")
    return out


def merge_matrices(
    token_of_piece: list[list[int]], num_pieces: int, num_tokens: int, mode: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build the batch's "from" ``F`` (B, T, P) and "to" ``S`` (B, P, T) matrices.

    ``token_of_piece[b]`` comes from :func:`piece_to_token`; pieces past its length are padding.
    """
    if mode not in MODES:
        raise ValueError(f"word-level mode must be one of {MODES}, not {mode!r}")
    B = len(token_of_piece)
    S = torch.zeros(B, num_pieces, num_tokens)
    for b, tokens in enumerate(token_of_piece):
        S[b, torch.arange(len(tokens)), torch.tensor(tokens)] = 1.0
    F = S.transpose(1, 2).clone()
    if mode == "mean":
        F = F / F.sum(-1, keepdim=True).clamp_min(1.0)
    else:
        # the first piece of each token is where the running count of its pieces is 1
        F = F * (F.cumsum(-1) == 1)
    return F, S


def merge_batch(attn: torch.Tensor, F: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """(B, K, P, P) piece attention -> (B, K, T, T) word-level attention: ``F @ A @ S``.

    Two large matmuls per sentence instead of K small ones per sentence: twice as fast on a CPU.
    """
    B, K, P, _ = attn.shape
    T = S.shape[-1]
    to_words = torch.bmm(attn.reshape(B, K * P, P), S)  # (B, K*P, T)
    to_words = to_words.reshape(B, K, P, T).transpose(1, 2).reshape(B, P, K * T)
    return torch.bmm(F, to_words).reshape(B, T, K, T).transpose(1, 2)


def merge_pieces(attn: torch.Tensor, word_ids: list[int | None], n_words: int, mode: str = "mean"):
    """One sentence: (K, P, P) piece attention -> (K, n+2, n+2) word-level attention."""
    tokens = piece_to_token(word_ids, n_words)
    F, S = merge_matrices([tokens], attn.shape[-1], n_words + 2, mode)
    return merge_batch(attn.unsqueeze(0), F, S)[0]
