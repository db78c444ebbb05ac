"""AttnPlusGlove must pair candidate c with word c's own vector (the original was off by one)."""

import torch
import torch.nn.functional as F

from probing.probes.attention import AttnPlusGlove
from probing.probes.batch import ProbeBatch, collate

from ..conftest import make_net, probe_node
from ._items import item

H, X, P, Q = torch.eye(4)  # word types; ROOT's vector is zeros


def _item(types: list[torch.Tensor], heads: list[int], attends: list[dict[int, float]]):
    """One map; ``attends[d]`` maps token -> attention for word d+1 (token 0 = start)."""
    n = len(heads)
    maps = torch.zeros(1, n + 2, n + 2)
    maps[0, 0, 0] = maps[0, n + 1, n + 1] = 1.0
    for d, row in enumerate(attends):
        for token, value in row.items():
            maps[0, d + 1, token] = value
    return item(maps, heads, vectors=torch.stack(types))


# Word 4 (type Q) attends half to its gold head (type H) and half to a distractor (type X), so
# attention alone cannot tell them apart and only the candidate's own vector can. Under the
# off-by-one pairing candidate c sees word c+1's vector: gold/distractor look like P/Q in
# sentence 1 and Q/P in sentence 2, with everything else in their scores equal, so no weights can
# get word 4 right in both (in a tie argmax picks the lower index, the distractor in sentence 2).
SENTENCES = [
    _item([H, P, X, Q], [0, 1, 1, 1], [{0: 1.0}, {1: 1.0}, {1: 1.0}, {1: 0.5, 3: 0.5}]),
    _item([X, P, H, Q], [3, 3, 0, 3], [{3: 1.0}, {3: 1.0}, {0: 1.0}, {3: 0.5, 1: 0.5}]),
]


class OffByOne(AttnPlusGlove):
    """The released code's pairing: candidate c (ROOT = 0) gets word c+1's vector, the last word ROOT's
    zeros, because ROOT went first in the attention and last in the word pairs."""

    def forward(self, batch: ProbeBatch) -> torch.Tensor:
        vectors = torch.cat([batch.word_vectors, torch.zeros_like(batch.word_vectors[:, :1])], 1)  # (B, N+1, D)
        cand = self.cand(vectors)
        query = self.query(batch.query_vectors)
        weights = query[:, :, None] + cand[:, None]  # (B, Q, N+1, M)
        attn = torch.cat([self.root(batch.special_attn)[:, :, None], batch.word_attn], 2)
        return (attn * weights).sum(-1)


def _train_and_predict(net: AttnPlusGlove, batch: ProbeBatch, steps: int = 300) -> torch.Tensor:
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    mask = batch.query_mask
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(net(batch)[mask], batch.gold_index[mask]).backward()
        optimizer.step()
    with torch.no_grad():
        return net(batch).argmax(-1)


def test_correct_pairing_reaches_full_uas():
    batch = collate(SENTENCES)
    torch.manual_seed(0)
    pred = _train_and_predict(make_net("attn_plus_glove", num_maps=1, vector_dim=4), batch)
    assert torch.equal(pred, batch.gold_index)


def test_off_by_one_pairing_cannot():
    batch = collate(SENTENCES)
    torch.manual_seed(0)
    released = {k: v for k, v in probe_node("attn_plus_glove")["net"].items() if k != "_target_"}
    pred = _train_and_predict(OffByOne(num_maps=1, vector_dim=4, **released), batch)
    right = pred == batch.gold_index
    assert not (right[0, 3] and right[1, 3])
    assert right.float().mean() < 1.0
