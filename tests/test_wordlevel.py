"""The word-piece merge on a hand-written sentence: [CLS] the un ##real cat [SEP], and the same
sentence under every special-token layout (start only, end only, none)."""

import pytest
import torch

from probing.attention.layout import Layout
from probing.attention.wordlevel import merge_batch, merge_matrices, merge_pieces, piece_to_token

# pieces: 0 [CLS], 1 the, 2 un, 3 ##real, 4 cat, 5 [SEP]; words: the(1) unreal(2) cat(3)
WORD_IDS = [None, 0, 1, 1, 2, None]
A = torch.tensor(
    [
        [0.50, 0.10, 0.10, 0.10, 0.10, 0.10],
        [0.20, 0.20, 0.20, 0.20, 0.00, 0.20],
        [0.00, 0.40, 0.20, 0.20, 0.10, 0.10],
        [0.10, 0.10, 0.40, 0.00, 0.20, 0.20],
        [0.05, 0.05, 0.30, 0.30, 0.10, 0.20],
        [0.10, 0.10, 0.10, 0.10, 0.10, 0.50],
    ]
).unsqueeze(0)

# by hand: "to" unreal = columns 2+3 summed; "from" unreal = mean of rows 2 and 3
EXPECTED_MEAN = torch.tensor(
    [
        [0.50, 0.10, 0.20, 0.10, 0.10],
        [0.20, 0.20, 0.40, 0.00, 0.20],
        [0.05, 0.25, 0.40, 0.15, 0.15],
        [0.05, 0.05, 0.60, 0.10, 0.20],
        [0.10, 0.10, 0.20, 0.10, 0.50],
    ]
)


def test_merge_mean_matches_hand_computation():
    got = merge_pieces(A, WORD_IDS, n_words=3, mode="mean")[0]
    torch.testing.assert_close(got, EXPECTED_MEAN)
    torch.testing.assert_close(got.sum(-1), torch.ones(5))


def test_merge_first_takes_the_first_piece_row():
    got = merge_pieces(A, WORD_IDS, n_words=3, mode="first")[0]
    # row of "unreal" is piece 2's row with columns 2+3 summed: [0, .4, .4, .1, .1]
    torch.testing.assert_close(got[2], torch.tensor([0.0, 0.4, 0.4, 0.1, 0.1]))
    torch.testing.assert_close(got[[0, 1, 3, 4]], EXPECTED_MEAN[[0, 1, 3, 4]])


def test_padding_in_a_batch_changes_nothing():
    short = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    padded = torch.zeros(6, 6)
    padded[:3, :3] = short
    padded[3:, :] = 0.77  # garbage in pad rows must not leak into anything
    batch = torch.stack([A[0], padded]).unsqueeze(1)
    tokens = [piece_to_token(WORD_IDS, 3), piece_to_token([None, 0, None], 1)]
    F, S = merge_matrices(tokens, 6, 5)
    out = merge_batch(batch, F, S)
    torch.testing.assert_close(out[0, 0], EXPECTED_MEAN)
    torch.testing.assert_close(out[1, 0, :3, :3], short)
    assert out[1, 0, 3:].abs().sum() == 0 and out[1, 0, :, 3:].abs().sum() == 0


def test_piece_to_token_rejects_a_word_without_pieces():
    with pytest.raises(ValueError, match="no pieces"):
        piece_to_token([None, 0, 2, None], 3)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        merge_pieces(A, WORD_IDS, 3, mode="last")


# The same sentence cut to each layout: drop the [CLS] row/column (a causal LM without a start
# token), the [SEP] one (Gemma: <bos> first, nothing after), or both (SmolLM2). Rows of the piece
# map are renormalised by hand so that each still sums to 1, as a model's would.
LAYOUT_CASES = {
    Layout(True, True): [0, 1, 2, 3, 4, 5],
    Layout(True, False): [0, 1, 2, 3, 4],
    Layout(False, True): [1, 2, 3, 4, 5],
    Layout(False, False): [1, 2, 3, 4],
}


@pytest.mark.parametrize("layout", list(LAYOUT_CASES), ids=lambda lay: lay.describe())
def test_merge_works_for_every_layout(layout):
    keep = LAYOUT_CASES[layout]
    a = A[0][keep][:, keep]
    a = a / a.sum(-1, keepdim=True)
    # pieces of "the un ##real cat" are words 1, 2, 2, 3 of the layout's tokens
    first = layout.first_word
    tokens = ([0] if layout.start else []) + [first, first + 1, first + 1, first + 2]
    tokens += [layout.end_index(3)] if layout.end else []
    T = layout.num_tokens(3)
    F, S = merge_matrices([tokens], len(keep), T)
    got = merge_batch(a[None, None], F, S)[0, 0]
    # by hand, for the words only: column of "unreal" = pieces 2+3 summed, its row = their mean
    w = [keep.index(p) for p in (1, 2, 3, 4)]
    rows = torch.stack([a[w[0]], (a[w[1]] + a[w[2]]) / 2, a[w[3]]])
    cols = torch.stack([rows[:, w[0]], rows[:, w[1]] + rows[:, w[2]], rows[:, w[3]]], 1)
    words = layout.words(3)
    torch.testing.assert_close(got[words, words], cols)
    torch.testing.assert_close(got.sum(-1), torch.ones(T))
    assert got.shape == (T, T)
