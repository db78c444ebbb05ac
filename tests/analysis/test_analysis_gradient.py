import copy

import numpy as np
import pytest
import torch
import transformers.models.bert.modeling_bert as modeling_bert

from probing.analysis.gradient import (
    NoMLMHeadError,
    attention_gradients,
    has_mlm_head,
    mask_sentences,
    plot_sep_gradient,
    sep_gradient,
)
from probing.attention.encoders import TinyRandomBert

SHORT = ["The", "dog", "barked", "."]
LONG = ["A", "much", "longer", "sentence", "about", "unbelievably", "complicated", "things", "."]
SENTENCES = [SHORT, LONG, ["Colorless", "green", "ideas", "sleep", "furiously", "."]]


@pytest.fixture(scope="module")
def tiny():
    return TinyRandomBert(name="tiny_random", mlm_head=True).load()


def test_has_mlm_head(tiny):
    _, model = tiny
    _, bare = TinyRandomBert(name="tiny_random", mlm_head=False).load()
    assert has_mlm_head(model) and not has_mlm_head(bare)


def test_no_head_raises_with_message(tiny):
    tok, _ = tiny
    _, bare = TinyRandomBert(name="tiny_random", mlm_head=False).load()
    with pytest.raises(NoMLMHeadError, match="has no masked-LM head") as info:
        sep_gradient(bare, tok, SENTENCES)
    assert "mlm_head=true" in str(info.value) and "no result was written" in str(info.value)


def test_masking_as_bert(tiny):
    tok, _ = tiny
    sentences = [SHORT, LONG * 3]
    ids, labels, kept = mask_sentences(tok, sentences, mask_prob=0.15, seed=0)
    assert kept == [0, 1]
    for row, lab in zip(ids, labels):
        picked = [p for p, x in enumerate(lab) if x != -100]
        n = len(row) - 2  # [CLS] pieces [SEP]
        assert len(picked) == max(1, round(0.15 * n))
        assert 0 not in picked and len(row) - 1 not in picked  # never a special token
        assert all(row[p] == tok.mask_token_id for p in picked)
    assert row[-1] == tok.sep_token_id and row[0] == tok.cls_token_id


def test_shapes_finite_and_plot(tiny, tmp_path):
    tok, model = tiny
    r = sep_gradient(model, tok, SENTENCES, batch_size=2)
    layers = model.config.num_hidden_layers
    assert r["num_sentences"] == 3 and r["end_token"] == "[SEP]"
    for key in ("to_sep", "to_other"):
        assert r[key].shape == (layers,)
        assert np.isfinite(r[key]).all() and (r[key] > 0).all()
        assert r[f"per_sentence_{key}"].shape == (3, layers)
        np.testing.assert_allclose(r[key], r[f"per_sentence_{key}"].mean(0))
    plot_sep_gradient(r, tmp_path / "sep_gradient.png")
    data = (tmp_path / "sep_gradient.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_same_seed_same_result(tiny):
    tok, model = tiny
    a = sep_gradient(model, tok, SENTENCES, seed=3)
    b = sep_gradient(model, tok, SENTENCES, seed=3)
    c = sep_gradient(model, tok, SENTENCES, seed=4)
    for key in ("to_sep", "to_other"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["to_other"], c["to_other"])  # other masks, other loss


def test_padding_and_batching_do_not_change_the_result(tiny):
    tok, model = tiny
    alone = sep_gradient(model, tok, [SHORT])
    padded = sep_gradient(model, tok, [SHORT, LONG], batch_size=2)  # SHORT padded to LONG
    single = sep_gradient(model, tok, [SHORT, LONG], batch_size=1)  # no padding at all
    for key in ("to_sep", "to_other"):
        per = f"per_sentence_{key}"
        np.testing.assert_allclose(padded[per][0], alone[key], rtol=1e-5)
        np.testing.assert_allclose(padded[per], single[per], rtol=1e-5)
        np.testing.assert_allclose(padded[key], single[key], rtol=1e-5)


def _batch(tok, sentences):
    ids, labels, _ = mask_sentences(tok, sentences, mask_prob=0.15, seed=0)
    width = max(len(r) for r in ids)
    pad = lambda rows, v: torch.tensor([r + [v] * (width - len(r)) for r in rows])  # noqa: E731
    return pad(ids, 0), pad([[1] * len(r) for r in ids], 0), pad(labels, -100)


def test_retained_grad_matches_autograd_grad(tiny):
    tok, model = tiny
    input_ids, attention_mask, labels = _batch(tok, [SHORT, LONG])
    _, _, grads = attention_gradients(model, input_ids, attention_mask, labels)
    # the brief's recipe: retain_grad() on the returned tensors, then loss.backward()
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    picked = labels != -100
    token_loss = torch.nn.functional.cross_entropy(out.logits[picked], labels[picked], reduction="none")
    rows = picked.nonzero()[:, 0]
    loss = sum(token_loss[rows == b].mean() for b in range(labels.shape[0]))
    loss.backward()
    model.zero_grad(set_to_none=True)
    for a, g in zip(out.attentions, grads):
        assert a.grad is not None and a.grad.abs().sum() > 0
        torch.testing.assert_close(a.grad, g)


def test_gradient_matches_finite_difference(tiny, monkeypatch):
    """Perturb one attention weight inside the forward pass: the loss moves by grad * eps.

    This also checks that the returned weights are the ones multiplied with the values.
    """
    tok, model = tiny
    model = copy.deepcopy(model).double().eval()
    input_ids, attention_mask, labels = _batch(tok, [SHORT, LONG])
    _, attentions, grads = attention_gradients(model, input_ids, attention_mask, labels)

    original = modeling_bert.eager_attention_forward
    perturb = {}

    def patched(module, query, key, value, attention_mask, **kwargs):
        out, weights = original(module, query, key, value, attention_mask, **kwargs)
        recomputed = torch.matmul(weights, value).transpose(1, 2)
        torch.testing.assert_close(out, recomputed)  # the returned weights are the used ones
        if perturb and module.layer_idx == perturb["layer"]:
            w = weights.clone()
            w[perturb["index"]] += perturb["eps"]
            out = torch.matmul(w, value).transpose(1, 2).contiguous()
        return out, weights

    monkeypatch.setattr(modeling_bert, "eager_attention_forward", patched)

    def loss_with(eps, layer, index):
        perturb.update(eps=eps, layer=layer, index=index)
        with torch.no_grad():
            loss, _, _ = attention_gradients(model, input_ids, attention_mask, labels)
        return loss.item()

    lengths = attention_mask.sum(1)
    checked = 0
    for layer, g in enumerate(grads):
        for b in range(2):
            n = int(lengths[b])
            real = g[b, :, :n, :n].abs()
            h, i, j = np.unravel_index(int(real.argmax()), real.shape)  # largest entry
            hs, is_ = np.unravel_index(int(real[..., n - 1].argmax()), real.shape[:2])
            assert real[hs, is_, n - 1] > 0
            for index in ((b, h, i, j), (b, hs, is_, n - 1)):  # and the largest on [SEP]
                eps = 1e-4
                fd = (loss_with(eps, layer, index) - loss_with(-eps, layer, index)) / (2 * eps)
                assert fd == pytest.approx(g[index].item(), rel=1e-4, abs=1e-10)
                checked += 1
    assert checked == 4 * len(grads)
    assert grads[0].abs().max() > 0
    # a padding key never changes the loss (its attention weight is 0 and stays out)
    assert float(attentions[0][0, :, :, int(lengths[0]) :].abs().max()) < 1e-12
