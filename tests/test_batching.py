from probing.batching import fill_batches


def test_fill_batches_bounds_items_and_padded_cost():
    lengths = [2, 3, 3, 5, 9]
    assert fill_batches(range(5), lengths, max_items=2) == [[0, 1], [2, 3], [4]]
    # pieces: items x longest. [0, 1, 2] costs 3 x 3 = 9; adding item 3 would cost 4 x 5 = 20
    assert fill_batches(range(5), lengths, 10, max_cost=9) == [[0, 1, 2], [3], [4]]
    # word pairs: items x longest^2. [0, 1] costs 2 x 9 = 18; item 2 would make it 3 x 9 = 27;
    # item 9 alone is over the bound and still gets its own batch
    assert fill_batches(range(5), lengths, 10, max_cost=20, power=2) == [[0, 1], [2], [3], [4]]
    assert fill_batches([], lengths, 4) == []
