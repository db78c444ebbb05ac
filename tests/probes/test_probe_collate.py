"""collate_sentences layout, checked against hand-written expected values."""

import torch

from probing.probes.collate import collate_sentences


def _maps(n: int, num_maps: int) -> torch.Tensor:
    # maps[k, i, j] = 100k + 10i + j: every entry says where it came from (rows need not sum to 1)
    k, i, j = torch.meshgrid(
        torch.arange(num_maps), torch.arange(n + 2), torch.arange(n + 2), indexing="ij"
    )
    return (100 * k + 10 * i + j).float()


def _item(n: int) -> dict:
    return {
        "maps": _maps(n, 2),
        "heads": torch.tensor([2, 0, 2][:n]) if n == 3 else torch.tensor([0, 1]),
        "rels": torch.tensor([4, 0, -1][:n]) if n == 3 else torch.tensor([0, 3]),
        "punct": torch.tensor([False, False, True][:n]),
        "vectors": torch.arange(1, 2 * n + 1, dtype=torch.float32).view(n, 2),
    }


def test_three_word_sentence_layout():
    batch = collate_sentences([_item(3), _item(2)])
    # tokens: 0 = start, 1..3 = words, 4 = end; row d is word d+1
    expected_d2c = torch.tensor(
        [[10.0, 11, 12, 13], [20, 21, 22, 23], [30, 31, 32, 33]]  # [start, w1, w2, w3] of row
    )
    expected_c2d = torch.tensor(
        [[14.0, 11, 21, 31], [24, 12, 22, 32], [34, 13, 23, 33]]  # [end of d, from c to d]
    )
    for k in range(2):
        assert torch.equal(batch["dep_to_cand"][0, k], expected_d2c + 100 * k)
        assert torch.equal(batch["cand_to_dep"][0, k], expected_c2d + 100 * k)
    # second sentence, n = 2: end token is 3, and row/column 3 of the words is padding
    expected_d2c_2 = torch.tensor([[10.0, 11, 12, 0], [20, 21, 22, 0], [0, 0, 0, 0]])
    expected_c2d_2 = torch.tensor([[13.0, 11, 21, 0], [23, 12, 22, 0], [0, 0, 0, 0]])
    assert torch.equal(batch["dep_to_cand"][1, 0], expected_d2c_2)
    assert torch.equal(batch["cand_to_dep"][1, 0], expected_c2d_2)

    assert torch.equal(batch["cand_vectors"][0], torch.tensor([[0.0, 0], [1, 2], [3, 4], [5, 6]]))
    assert torch.equal(batch["cand_vectors"][1], torch.tensor([[0.0, 0], [1, 2], [3, 4], [0, 0]]))
    assert torch.equal(batch["dep_vectors"][0], torch.tensor([[1.0, 2], [3, 4], [5, 6]]))
    assert torch.equal(batch["heads"], torch.tensor([[2, 0, 2], [0, 1, -100]]))
    assert torch.equal(batch["rels"], torch.tensor([[4, 0, -1], [0, 3, -100]]))
    assert torch.equal(batch["punct"], torch.tensor([[False, False, True], [False, False, False]]))
    assert torch.equal(batch["word_mask"], torch.tensor([[True, True, True], [True, True, False]]))
    assert torch.equal(batch["lengths"], torch.tensor([3, 2]))
    T, F = True, False
    expected_mask = torch.tensor(
        [
            [[T, F, T, T], [T, T, F, T], [T, T, T, F]],
            [[T, F, T, F], [T, T, F, F], [F, F, F, F]],
        ]
    )
    assert torch.equal(batch["cand_mask"], expected_mask)
    assert batch["heads"].dtype == torch.long and batch["cand_mask"].dtype == torch.bool
