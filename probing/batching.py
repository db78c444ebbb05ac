"""Length batching: the one greedy rule that cuts length-sorted items into padded batches, used by
the extraction (pieces of a forward pass) and by the probes' batch sampler (word pairs)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def fill_batches(order: Iterable[int], lengths: Sequence[int], max_items: int, max_cost: int | None = None,
                 power: int = 1) -> list[list[int]]:
    """Cut ``order`` (item indices, shortest first) into consecutive batches of at most
    ``max_items`` whose padded cost, items x (longest length) ** ``power``, stays within
    ``max_cost`` (unbounded when None). A single item over the bound still gets a batch.

    Sorted ascending, each newcomer sets the padded length of the batch it would join: extraction
    pads pieces (``power=1``), a probe batch holds (N, N) word pairs per sentence (``power=2``).
    """
    batches, batch = [], []
    for i in order:
        n = int(lengths[i])
        if batch and (len(batch) == max_items or (max_cost and (len(batch) + 1) * n**power > max_cost)):
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + [batch] if batch else batches
