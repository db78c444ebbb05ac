"""ProbeModule inside a real pytorch_lightning Trainer on tiny hand-built data."""

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from probing.probes.attention import AttnOnly, AttnPlusGlove
from probing.probes.baselines import RightBranching
from probing.probes.collate import collate_sentences
from probing.probes.module import ProbeModule

ORACLE = 1  # the map whose words attend to their gold head (ROOT -> start token)
TREES = [[2, 0, 2], [0, 1, 4, 2], [3, 3, 0, 5, 3], [2, 5, 2, 5, 0, 5], [0, 1, 1], [4, 4, 4, 0]]


def _item(heads: list[int], gen: torch.Generator, num_maps: int = 3) -> dict:
    n = len(heads)
    maps = torch.rand(num_maps, n + 2, n + 2, generator=gen) ** 4
    maps[ORACLE] = 0.0
    maps[ORACLE, torch.arange(1, n + 1), torch.tensor(heads)] = 1.0
    maps[ORACLE, 0, 0] = maps[ORACLE, n + 1, n + 1] = 1.0
    types = torch.randint(0, 3, (n,), generator=gen)
    return {
        "maps": maps / maps.sum(-1, keepdim=True),
        "heads": torch.tensor(heads),
        "rels": types,  # the relation is the dependent's word type, readable from its vector
        "punct": torch.zeros(n, dtype=torch.bool),
        "vectors": torch.eye(3)[types],
    }


def _loader(items: list[dict]) -> DataLoader:
    return DataLoader(items, batch_size=3, collate_fn=collate_sentences)


def _trainer(max_epochs: int) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _adam(lr: float) -> functools.partial:
    return functools.partial(torch.optim.Adam, lr=lr)


@pytest.fixture
def loader() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    return _loader([_item(heads, gen) for heads in TREES])


def test_attn_only_hand_set_then_trained(loader):
    hand = ProbeModule(AttnOnly(num_maps=3), _adam(0.1))
    with torch.no_grad():
        hand.net.w[ORACLE] = 10.0
    assert _trainer(1).validate(hand, loader, verbose=False)[0]["val/uas"] == 1.0

    torch.manual_seed(0)
    module = ProbeModule(AttnOnly(num_maps=3), _adam(0.1))
    trainer = _trainer(15)
    assert trainer.validate(module, loader, verbose=False)[0]["val/uas"] < 1.0
    trainer.fit(module, loader, loader)
    assert "train/loss" in trainer.callback_metrics
    assert trainer.callback_metrics["val/uas"] == 1.0
    assert trainer.test(module, loader, verbose=False)[0]["test/uas"] == 1.0
    assert "net" not in module.hparams and "optimizer" not in module.hparams


def test_labels_with_mst_decoding_and_checkpoint_reload(loader, tmp_path):
    torch.manual_seed(0)
    net = AttnPlusGlove(num_maps=3, vector_dim=3)
    module = ProbeModule(net, _adam(0.05), decode="mst", predict_labels=True, num_relations=3)
    trainer = _trainer(30)
    trainer.fit(module, loader, loader)
    assert trainer.callback_metrics["val/uas"] == 1.0
    assert trainer.callback_metrics["val/las"] == 1.0
    result = trainer.test(module, loader, verbose=False)[0]
    assert result["test/uas"] == 1.0 and result["test/las"] == 1.0

    path = tmp_path / "probe.ckpt"
    trainer.save_checkpoint(path)
    reloaded = ProbeModule.load_from_checkpoint(
        path, net=AttnPlusGlove(num_maps=3, vector_dim=3), optimizer=_adam(0.05)
    )
    assert reloaded.hparams.decode == "mst" and reloaded.hparams.num_relations == 3
    batch = next(iter(loader))
    assert torch.equal(reloaded(batch), module(batch))


def test_right_branching_runs_fit_validate_and_test():
    # "The cat sat on the mat ." (UD): det nsubj root case det obl punct
    names = ["det", "nsubj", "root", "case", "obl", "punct"]
    n = 7
    sentence = {
        "maps": torch.full((1, n + 2, n + 2), 1.0 / (n + 2)),
        "heads": torch.tensor([2, 3, 0, 6, 6, 3, 3]),
        "rels": torch.tensor([0, 1, 2, 3, 0, 4, 5]),
        "punct": torch.tensor([False] * 6 + [True]),
        "vectors": torch.zeros(n, 2),
    }
    loader = _loader([sentence])
    module = ProbeModule(
        RightBranching(), _adam(0.1), num_relations=len(names), relation_names=names
    )
    assert module.configure_optimizers() is None
    trainer = _trainer(2)
    trainer.fit(module, loader, loader)
    # predicted 2 3 4 5 6 7 0: The, cat and the are right, sat, on, mat wrong, "." not scored
    assert trainer.callback_metrics["val/uas"] == pytest.approx(3 / 6)
    assert trainer.test(module, loader, verbose=False)[0]["test/uas"] == pytest.approx(3 / 6)
    assert module.per_relation_table() == [
        ["det", 1.0, 2],
        ["nsubj", 1.0, 1],
        ["root", 0.0, 1],
        ["case", 0.0, 1],
        ["obl", 0.0, 1],
    ]
