"""AttnPlusGlove must pair candidate c with word c's own vector (the original was off by one)."""

import torch
import torch.nn.functional as F

from probing.probes.attention import AttnPlusGlove
from probing.probes.collate import collate_sentences

H, X, P, Q = torch.eye(4)  # word types; ROOT's vector is zeros


def _item(types: list[torch.Tensor], heads: list[int], attends: list[dict[int, float]]) -> dict:
    """One map; ``attends[d]`` maps token -> attention for word d+1 (token 0 = start)."""
    n = len(heads)
    maps = torch.zeros(1, n + 2, n + 2)
    maps[0, 0, 0] = maps[0, n + 1, n + 1] = 1.0
    for d, row in enumerate(attends):
        for token, value in row.items():
            maps[0, d + 1, token] = value
    return {
        "maps": maps,
        "heads": torch.tensor(heads),
        "rels": torch.zeros(n, dtype=torch.long),
        "punct": torch.zeros(n, dtype=torch.bool),
        "vectors": torch.stack(types),
    }


# Word 4 (type Q) attends half to its gold head (type H) and half to a distractor (type X), so
# attention alone cannot tell them apart and only the candidate's own vector can. Under the
# off-by-one pairing candidate c sees word c+1's vector: gold/distractor look like P/Q in
# sentence 1 and Q/P in sentence 2, with everything else in their scores equal, so no weights can
# get word 4 right in both (in a tie argmax picks the lower index, the distractor in sentence 2).
SENTENCES = [
    _item([H, P, X, Q], [0, 1, 1, 1], [{0: 1.0}, {1: 1.0}, {1: 1.0}, {1: 0.5, 3: 0.5}]),
    _item([X, P, H, Q], [3, 3, 0, 3], [{3: 1.0}, {3: 1.0}, {0: 1.0}, {3: 0.5, 1: 0.5}]),
]


def _off_by_one(batch: dict) -> dict:
    """The released code's pairing: candidate c gets word c+1's vector, the last one ROOT's."""
    shifted = torch.cat([batch["dep_vectors"], torch.zeros_like(batch["cand_vectors"][:, :1])], 1)
    return {**batch, "cand_vectors": shifted}


def _train_and_predict(batch: dict, steps: int = 300) -> torch.Tensor:
    torch.manual_seed(0)
    net = AttnPlusGlove(num_maps=1, vector_dim=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    mask = batch["word_mask"]
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(net(batch)[mask], batch["heads"][mask]).backward()
        optimizer.step()
    with torch.no_grad():
        return net(batch).argmax(-1)


def test_correct_pairing_reaches_full_uas():
    batch = collate_sentences(SENTENCES)
    pred = _train_and_predict(batch)
    assert torch.equal(pred, batch["heads"])


def test_off_by_one_pairing_cannot():
    batch = _off_by_one(collate_sentences(SENTENCES))
    pred = _train_and_predict(batch)
    right = pred == batch["heads"]
    assert not (right[0, 3] and right[1, 3])
    assert right.float().mean() < 1.0


def test_scores_match_the_formula_with_each_candidates_own_vector():
    gen = torch.Generator().manual_seed(1)
    items = []
    for n in (4, 2):
        maps = torch.rand(3, n + 2, n + 2, generator=gen)
        items.append(
            {
                "maps": maps / maps.sum(-1, keepdim=True),
                "heads": torch.zeros(n, dtype=torch.long),
                "rels": torch.zeros(n, dtype=torch.long),
                "punct": torch.zeros(n, dtype=torch.bool),
                "vectors": torch.randn(n, 5, generator=gen),
            }
        )
    batch = collate_sentences(items)
    net = AttnPlusGlove(num_maps=3, vector_dim=5)
    scores = net(batch)
    for b, item in enumerate(items):
        n, maps, vectors = len(item["heads"]), item["maps"], item["vectors"]
        for d in range(n):
            j = d + 1  # the dependent's token
            for c in range(n + 1):
                if c == j:
                    assert scores[b, d, c] == float("-inf")
                    continue
                v_c = torch.zeros(5) if c == 0 else vectors[c - 1]
                pair = torch.cat([v_c, vectors[d]])
                w = torch.cat([net.w_head.weight, net.w_dep.weight], 1) @ pair + net.w_dep.bias
                u = torch.cat([net.u_head.weight, net.u_dep.weight], 1) @ pair + net.u_dep.bias
                to_c = maps[:, j, c]  # token c is the start token when c = 0
                from_c = maps[:, j, n + 1] if c == 0 else maps[:, c, j]
                expected = (w * to_c + u * from_c).sum()
                assert torch.allclose(scores[b, d, c], expected, atol=1e-5)
        assert torch.isinf(scores[b, n:]).all() and torch.isinf(scores[b, :, n + 1 :]).all()
