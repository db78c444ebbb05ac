"""ProbeModule: exact loss and accuracy on a hand-written sentence, gold sets, mask_self, and
training inside a real pytorch_lightning Trainer."""

import functools
import math

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from probing.probes.baselines import RightBranching
from probing.probes.batch import collate
from probing.probes.module import ProbeModule

from ..conftest import make_module, make_net
from ._items import item, where_from


def _loader(items: list, batch_size: int = 3) -> DataLoader:
    return DataLoader(items, batch_size=batch_size, collate_fn=collate)


def _trainer(max_epochs: int = 1) -> pl.Trainer:
    return pl.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)


def _adam(lr: float) -> functools.partial:
    return functools.partial(torch.optim.Adam, lr=lr)


def _hand_probe(**kwargs) -> ProbeModule:
    """Scores of word q+1 = [10d, 10d+1, 10d+2, 10d+3] (ROOT, words 1..3), d = q+1: map A weighs 1,
    its transpose 0, ROOT = 1 * A(q -> start) + 0 * A(q -> end)."""
    net = make_net("attn_only", num_maps=1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([1.0, 0.0]))
        net.root.start.fill_(1.0)
        net.root.end.fill_(0.0)
    return make_module(net, _adam(0.1), **kwargs)


# tokens 0 = start, 1..3 = words, 4 = end; heads 2 0 2, the third word is punctuation
SENTENCE = item(where_from(3), [2, 0, 2], punct=[False, False, True])
L = math.log(1 + math.e + math.e**2 + math.e**3)  # log-partition of [a, a+1, a+2, a+3] minus a


def test_hand_written_sentence_scores_loss_and_uas():
    module = _hand_probe()
    batch = collate([SENTENCE])
    assert module(batch)[0].tolist() == [[10, 11, 12, 13], [20, 21, 22, 23], [30, 31, 32, 33]]
    result = _trainer().validate(module, _loader([SENTENCE]), verbose=False)[0]
    # every word picks word 3 (no self-masking): wrong, wrong, (right but punctuation)
    assert result["val/uas"] == 0.0
    # summed over the sentence: -log p(2) - log p(ROOT) - log p(2)
    assert result["val/loss"] == pytest.approx((L - 2) + L + (L - 2), rel=1e-6)
    mean = _trainer().validate(_hand_probe(loss="query_mean"), _loader([SENTENCE]), verbose=False)[0]
    assert mean["val/loss"] == pytest.approx((3 * L - 4) / 3, rel=1e-6)
    with_punct = _trainer().validate(_hand_probe(include_punct=True), _loader([SENTENCE]), verbose=False)[0]
    assert with_punct["val/uas"] == 0.0


def test_mask_self_removes_the_query_itself():
    module = _hand_probe(mask_self=True)
    scores = module(collate([SENTENCE]))[0]
    assert torch.isinf(scores.diagonal(offset=1)).all()
    result = _trainer().validate(module, _loader([SENTENCE]), verbose=False)[0]
    # word 3 can no longer pick itself and picks word 2, its head; it is punctuation, so UAS 0/2
    assert scores.argmax(-1).tolist() == [3, 3, 2]
    lse = math.log
    expected = (lse(1 + math.e**2 + math.e**3) - 2) + lse(1 + math.e + math.e**3) + (lse(1 + math.e + math.e**2) - 2)
    assert result["val/loss"] == pytest.approx(expected, rel=1e-6) and result["val/uas"] == 0.0
    punct_too = _trainer().validate(_hand_probe(mask_self=True, include_punct=True), _loader([SENTENCE]),
                                    verbose=False)[0]
    assert punct_too["val/uas"] == pytest.approx(1 / 3)


def test_a_gold_set_sums_its_probabilities():
    # word 1's gold is {2, 3}: -log(p(2) + p(3)); word 3 picks word 3, which is now in its set
    sentence = item(where_from(3), [0, 0, 0], gold=[(2, 3), (0,), (1, 3)])
    result = _trainer().validate(_hand_probe(metric="acc", labeled_metric=None, trees=False),
                                 _loader([sentence]), verbose=False)[0]
    expected = (L - math.log(math.e**2 + math.e**3)) + L + (L - math.log(math.e + math.e**3))
    assert result["val/loss"] == pytest.approx(expected, rel=1e-6)
    assert result["val/acc"] == pytest.approx(2 / 3) and "val/uas" not in result


def test_a_batch_whose_gold_is_no_candidate_trains_on_nothing():
    # every word's gold is itself, which mask_self takes away: no loss, and the step is skipped
    sentence = item(where_from(3), [0, 0, 0], gold=[(1,), (2,), (3,)])
    module = _hand_probe(mask_self=True, metric="acc", labeled_metric=None, trees=False)
    assert module.training_step(collate([sentence]), 0) is None


ORACLE = 1  # the map whose words attend to their gold head (ROOT -> start token)
TREES = [[2, 0, 2], [0, 1, 4, 2], [3, 3, 0, 5, 3], [2, 5, 2, 5, 0, 5], [0, 1, 1], [4, 4, 4, 0]]


def _oracle_item(heads: list[int], gen: torch.Generator, num_maps: int = 3):
    n = len(heads)
    maps = torch.rand(num_maps, n + 2, n + 2, generator=gen) ** 4
    maps[ORACLE] = 0.0
    maps[ORACLE, torch.arange(1, n + 1), torch.tensor(heads)] = 1.0
    maps[ORACLE, 0, 0] = maps[ORACLE, n + 1, n + 1] = 1.0
    types = torch.randint(0, 3, (n,), generator=gen)
    # the label is the dependent's word type, readable from its vector
    return item(maps / maps.sum(-1, keepdim=True), heads, labels=types.tolist(), vectors=torch.eye(3)[types])


@pytest.fixture
def loader() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    return _loader([_oracle_item(heads, gen) for heads in TREES])


def test_attn_only_hand_set_then_trained(loader):
    hand = make_module(make_net("attn_only", num_maps=3, init="zeros"), _adam(0.1))
    with torch.no_grad():
        hand.net.weight[ORACLE] = 10.0
        hand.net.root.start.fill_(1.0)
    assert _trainer().validate(hand, loader, verbose=False)[0]["val/uas"] == 1.0

    torch.manual_seed(0)
    module = make_module(make_net("attn_only", num_maps=3), _adam(0.1))
    trainer = _trainer(15)
    assert trainer.validate(module, loader, verbose=False)[0]["val/uas"] < 1.0
    trainer.fit(module, loader, loader)
    assert "train/loss" in trainer.callback_metrics
    assert trainer.callback_metrics["val/uas"] == 1.0
    assert trainer.test(module, loader, verbose=False)[0]["test/uas"] == 1.0
    assert "net" not in module.hparams and "optimizer" not in module.hparams


def test_train_loss_is_the_epoch_mean_over_sentences_and_steps_are_logged_when_lightning_writes():
    gen = torch.Generator().manual_seed(0)
    batches = _loader([_oracle_item(heads, gen) for heads in TREES], batch_size=4)  # 4 sentences, then 2
    torch.manual_seed(0)
    module = make_module(make_net("attn_only", num_maps=3), _adam(0.0))  # lr 0: the losses stay put
    want = [module._loss(b, module(b), b.gold_index)[0].item() for b in batches]
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(module, batches)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx((4 * want[0] + 2 * want[1]) / 6, rel=1e-6)
    assert trainer.callback_metrics["train/loss_step"].item() == pytest.approx(want[1], rel=1e-6)


def test_labels_with_mst_decoding_and_checkpoint_reload(loader, tmp_path):
    torch.manual_seed(0)
    module = make_module(make_net("attn_plus_glove", num_maps=3, vector_dim=3), _adam(0.05), decode="mst", predict_labels=True,
                         num_labels=3)
    trainer = _trainer(30)
    trainer.fit(module, loader, loader)
    assert trainer.callback_metrics["val/uas"] == 1.0 and trainer.callback_metrics["val/las"] == 1.0
    result = trainer.test(module, loader, verbose=False)[0]
    assert result["test/uas"] == 1.0 and result["test/las"] == 1.0

    path = tmp_path / "probe.ckpt"
    trainer.save_checkpoint(path)
    # the net and the partials are not pickled (the run's config records them): passed again
    reloaded = ProbeModule.load_from_checkpoint(path, net=make_net("attn_plus_glove", num_maps=3, vector_dim=3),
                                                optimizer=_adam(0.05), scheduler=None)
    assert reloaded.hparams.decode == "mst" and reloaded.hparams.num_labels == 3
    batch = next(iter(loader))
    assert torch.equal(reloaded(batch), module(batch))


def test_right_branching_has_no_loss_and_fits_validates_and_tests():
    # "The cat sat on the mat ." (UD): det nsubj root case det obl punct
    names = ["det", "nsubj", "root", "case", "obl", "punct"]
    sentence = item(None, [2, 3, 0, 6, 6, 3, 3], labels=[0, 1, 2, 3, 0, 4, 5], punct=[False] * 6 + [True])
    module = make_module(RightBranching(), _adam(0.1), num_labels=len(names), label_names=names)
    assert module.configure_optimizers() is None
    trainer = _trainer(2)
    trainer.fit(module, _loader([sentence]), _loader([sentence]))
    # predicted 2 3 4 5 6 7 0: The, cat and the are right, sat, on, mat wrong, "." not scored
    assert trainer.callback_metrics["val/uas"] == pytest.approx(3 / 6)
    assert not any("loss" in key for key in trainer.callback_metrics)
    result = trainer.test(module, _loader([sentence]), verbose=False)[0]
    assert result == {"test/uas": pytest.approx(3 / 6)}
    assert module.per_label_table() == [["det", 1.0, 2], ["nsubj", 1.0, 1], ["root", 0.0, 1], ["case", 0.0, 1],
                                        ["obl", 0.0, 1]]


def test_bad_options():
    with pytest.raises(ValueError, match="mst"):
        make_module(RightBranching(), _adam(0.1), decode="mst", trees=False)
    with pytest.raises(ValueError, match="labels"):
        make_module(RightBranching(), _adam(0.1), predict_labels=True, num_labels=3, labeled_metric=None)
    with pytest.raises(ValueError, match="loss"):
        make_module(RightBranching(), _adam(0.1), loss="sum")
