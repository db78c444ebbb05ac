import copy

import numpy as np
import pytest
import torch
import transformers.models.bert.modeling_bert as modeling_bert

from probing.analysis.gradient import (
    NoLMHeadError,
    attention_gradient,
    attention_gradients,
    gradient_figure,
    has_lm_head,
    mask_sentences,
)
from probing.attention.encoders import TinyRandom

from ..conftest import model_node

SHORT = ["The", "dog", "barked", "."]
LONG = ["A", "much", "longer", "sentence", "about", "unbelievably", "complicated", "things", "."]
SENTENCES = [SHORT, LONG, ["Colorless", "green", "ideas", "sleep", "furiously", "."]]


@pytest.fixture(scope="module")
def tiny():
    return TinyRandom(**model_node("tiny_random")).load(lm_head=True)


def test_has_lm_head(tiny):
    _, model = tiny
    _, bare = TinyRandom(**model_node("tiny_random")).load(lm_head=False)
    assert has_lm_head(model) and not has_lm_head(bare)


def test_no_head_raises_with_message(tiny):
    tok, _ = tiny
    _, bare = TinyRandom(**model_node("tiny_random")).load(lm_head=False)
    with pytest.raises(NoLMHeadError, match="has no masked-LM head") as info:
        attention_gradient(bare, tok, SENTENCES)
    assert "lm_head=true" in str(info.value) and "no result was written" in str(info.value)


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


def test_shapes_finite_and_figure(tiny, tmp_path):
    tok, model = tiny
    r = attention_gradient(model, tok, SENTENCES, batch_size=2)
    layers = model.config.num_hidden_layers
    assert r["num_sentences"] == 3 and r["names"] == {"first": "[CLS]", "end": "[SEP]", "other": "other tokens"}
    for key in ("first", "end", "other"):
        assert r["mean"][key].shape == (layers,)
        assert np.isfinite(r["mean"][key]).all() and (r["mean"][key] > 0).all()
        assert r["per_sentence"][key].shape == (3, layers)
        np.testing.assert_allclose(r["mean"][key], r["per_sentence"][key].mean(0))
    gradient_figure(r).savefig(tmp_path / "gradient.png")
    data = (tmp_path / "gradient.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_same_seed_same_result(tiny):
    tok, model = tiny
    a = attention_gradient(model, tok, SENTENCES, seed=3)
    b = attention_gradient(model, tok, SENTENCES, seed=3)
    c = attention_gradient(model, tok, SENTENCES, seed=4)
    for key in ("first", "end", "other"):
        np.testing.assert_array_equal(a["mean"][key], b["mean"][key])
    assert not np.array_equal(a["mean"]["other"], c["mean"]["other"])  # other masks, other loss


def test_padding_and_batching_do_not_change_the_result(tiny):
    tok, model = tiny
    alone = attention_gradient(model, tok, [SHORT])
    padded = attention_gradient(model, tok, [SHORT, LONG], batch_size=2)  # SHORT padded to LONG
    single = attention_gradient(model, tok, [SHORT, LONG], batch_size=1)  # no padding at all
    for key in ("first", "end", "other"):
        np.testing.assert_allclose(padded["per_sentence"][key][0], alone["mean"][key], rtol=1e-5)
        np.testing.assert_allclose(padded["per_sentence"][key], single["per_sentence"][key], rtol=1e-5)
        np.testing.assert_allclose(padded["mean"][key], single["mean"][key], rtol=1e-5)


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


# ------------------------------------------------------------------ the general form: key groups, causal LMs

import transformers.models.gemma3.modeling_gemma3 as modeling_gemma3  # noqa: E402
import transformers.models.llama.modeling_llama as modeling_llama  # noqa: E402
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig  # noqa: E402

from probing.analysis.gradient import (  # noqa: E402
    allowed_pairs,
    encode,
    group_sums,
    key_groups,
)
from probing.attention.byte_tokenizer import byte_tokenizer  # noqa: E402
from probing.attention.layout import Layout  # noqa: E402

CAUSAL = {
    # SmolLM2-like: no <bos>, grouped-query attention
    "llama": (LlamaConfig, dict(), False),
    # Gemma-like: <bos> first; a sliding window of 3 in layer 0 so that the window mask is exercised
    "gemma3": (Gemma3TextConfig, dict(head_dim=8, sliding_window=3,
                                      layer_types=["sliding_attention", "full_attention"]), True),
}


@pytest.fixture(scope="module", params=list(CAUSAL))
def causal(request):
    config_class, extra, add_bos = CAUSAL[request.param]
    tok = byte_tokenizer(add_bos)
    cfg = config_class(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, **extra)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    return request.param, tok, model, add_bos


def _causal_batch(tok, sentences):
    enc = encode(tok, sentences, "causal")
    width = max(len(r) for r in enc.input_ids)
    pad = lambda rows, v: torch.tensor([r + [v] * (width - len(r)) for r in rows])  # noqa: E731
    return enc, pad(enc.input_ids, tok.pad_token_id), pad([[1] * len(r) for r in enc.input_ids], 0), pad(enc.labels, -100)


def test_causal_targets_are_word_pieces_never_bos():
    for add_bos in (True, False):
        tok = byte_tokenizer(add_bos)
        enc = encode(tok, [["The", "food"], ["a"], []], "causal")
        ids, a = tok("The food")["input_ids"], tok("a")["input_ids"]
        assert enc.layout == Layout(add_bos, False)
        # position 0 (the <bos>, or the first piece) is never a target; every later piece is
        assert enc.input_ids[0] == ids and enc.labels[0] == [-100] + ids[1:]
        if add_bos:  # <bos> a: "a" is predicted from <bos>
            assert enc.kept == [0, 1] and enc.labels[1] == [-100, a[1]]
        else:
            assert enc.kept == [0] and enc.skipped[1] == "a single piece: nothing to predict"
        assert enc.skipped[2] == "no words"


def test_mlm_needs_a_mask_token_and_objectives_match_models(causal, tiny):
    _, tok, model, _ = causal
    with pytest.raises(ValueError, match="has no mask token"):
        encode(tok, [SHORT], "mlm")
    with pytest.raises(ValueError, match="objective 'mlm' needs a masked LM"):
        attention_gradient(model, tok, [SHORT], objective="mlm")
    bert_tok, bert = tiny
    with pytest.raises(ValueError, match="objective 'causal' needs a causal LM"):
        attention_gradient(bert, bert_tok, [SHORT], objective="causal")


def test_allowed_pairs_are_exactly_the_nonzero_weights(causal):
    name, tok, model, _ = causal
    enc, input_ids, attention_mask, labels = _causal_batch(tok, [SHORT, LONG])
    _, attentions, _ = attention_gradients(model, input_ids, attention_mask, labels, "causal")
    allowed = allowed_pairs(model, input_ids.shape[1], causal=True)
    for b, n in enumerate(attention_mask.sum(1).tolist()):
        for a, allow in zip(attentions, allowed):
            real = a[b, :, :n, :n]
            assert (real[:, ~allow[:n, :n]] == 0).all() and (real[:, allow[:n, :n]] > 0).all()
    if name == "gemma3":
        assert allowed[0][5].tolist()[:7] == [False, False, False, True, True, True, False]


def test_group_means_count_only_allowed_pairs():
    """|grad| = 1 on every allowed real pair and 100 elsewhere: every group's mean is exactly 1."""
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    allow = torch.ones(5, 5, dtype=torch.bool).tril()
    valid = attention_mask.bool()
    ok = valid[:, None, :, None] & valid[:, None, None, :] & allow
    grads = [torch.where(ok, 1.0, 100.0).expand(2, 3, 5, 5)]
    for layout in (Layout(True, True), Layout(True, False)):
        stats = group_sums(grads, attention_mask, key_groups(attention_mask, layout), [allow])
        assert set(stats) == ({"first", "end", "other"} if layout.end else {"first", "other"})
        for s, n in stats.values():
            np.testing.assert_array_equal(s, n)
        # counts, sentence 0 (5 pieces): key 0 seen by 5 rows; the end token (key 4) by row 4 only
        assert stats["first"][1][0, 0] == 3 * 5
        if layout.end:
            assert stats["end"][1].tolist() == [[3 * 1], [3 * 1]]
            assert stats["other"][1].tolist() == [[3 * (4 + 3 + 2)], [3 * 2]]


def test_causal_gradient_matches_finite_difference(causal, monkeypatch):
    """Perturb one attention weight inside the forward pass (float64): the loss moves by grad * eps."""
    name, tok, model, _ = causal
    model = copy.deepcopy(model).double().eval()
    enc, input_ids, attention_mask, labels = _causal_batch(tok, [SHORT, LONG])
    module = modeling_llama if name == "llama" else modeling_gemma3
    original = module.eager_attention_forward
    perturb = {}

    def patched(attn, query, key, value, attention_mask, **kwargs):
        out, weights = original(attn, query, key, value, attention_mask, **kwargs)
        # the model's softmax runs in float32 even here; redo it in float64 so that the finite
        # difference is not drowned in float32 rounding
        assert kwargs.get("softcap") is None and not attn.training
        keys = module.repeat_kv(key, attn.num_key_value_groups)  # head h reads KV head h // groups
        values = module.repeat_kv(value, attn.num_key_value_groups)
        scores = torch.matmul(query, keys.transpose(2, 3)) * kwargs["scaling"] + attention_mask
        w = torch.softmax(scores, dim=-1)
        # (float64 masks turn -inf in that float32 softmax: rows with no visible key become NaN)
        ok = weights.isfinite().all(-1, keepdim=True).expand_as(w)
        torch.testing.assert_close(w[ok], weights[ok], rtol=1e-5, atol=1e-7)  # the model's weights ...
        ok = ok.any(-1).transpose(1, 2)[..., None].expand_as(out)
        torch.testing.assert_close(out[ok], torch.matmul(weights, values).transpose(1, 2)[ok])  # ... are used
        if perturb and attn.layer_idx == perturb["layer"]:
            w = w.clone()
            w[perturb["index"]] += perturb["eps"]
        return torch.matmul(w, values).transpose(1, 2).contiguous(), w

    monkeypatch.setattr(module, "eager_attention_forward", patched)
    # RMSNorm also computes in float32 whatever the model's dtype; keep it in float64 here
    if name == "llama":
        monkeypatch.setattr(modeling_llama.LlamaRMSNorm, "forward", lambda self, x: self.weight * (
            x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)))
    else:
        monkeypatch.setattr(modeling_gemma3.Gemma3RMSNorm, "forward", lambda self, x: (1.0 + self.weight) * (
            x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)))
    _, attentions, grads = attention_gradients(model, input_ids, attention_mask, labels, "causal")

    def loss_with(eps, layer, index):
        perturb.update(eps=eps, layer=layer, index=index)
        with torch.no_grad():
            loss, _, _ = attention_gradients(model, input_ids, attention_mask, labels, "causal")
        return loss.item()

    allowed = allowed_pairs(model, input_ids.shape[1], causal=True)
    checked = 0
    for layer, (g, allow) in enumerate(zip(grads, allowed)):
        for b, n in enumerate(attention_mask.sum(1).tolist()):
            real = torch.where(allow[:n, :n], g[b, :, :n, :n].abs(), 0.0)
            h, i, j = np.unravel_index(int(real.argmax()), real.shape)  # the largest allowed entry
            real[:, 0, 0] = 0  # row 0 sees key 0 only; take a later row on the first key
            hs, is_ = np.unravel_index(int(real[..., 0].argmax()), real.shape[:2])
            assert real[hs, is_, 0] > 0
            for index in ((b, h, i, j), (b, hs, is_, 0)):
                eps = 1e-5
                fd = (loss_with(eps, layer, index) - loss_with(-eps, layer, index)) / (2 * eps)
                assert fd == pytest.approx(g[index].item(), rel=1e-6, abs=1e-12)
                checked += 1
    assert checked == 4 * len(grads)


def test_causal_split_is_batch_size_invariant(causal, tmp_path):
    name, tok, model, add_bos = causal
    sentences = [SHORT, LONG, SENTENCES[2]]
    alone = attention_gradient(model, tok, [SHORT], objective="causal")
    one = attention_gradient(model, tok, sentences, objective="causal", batch_size=1)
    three = attention_gradient(model, tok, sentences, objective="causal", batch_size=3)
    assert three["groups"] == ["first", "other"] and three["num_sentences"] == 3
    assert three["names"]["first"] == ("<bos>" if add_bos else "first piece")
    assert three["layout"] == {"start": add_bos, "end": False}
    for g in three["groups"]:
        np.testing.assert_allclose(three["per_sentence"][g], one["per_sentence"][g], rtol=1e-5)
        np.testing.assert_allclose(three["per_sentence"][g][0], alone["mean"][g], rtol=1e-5)
        np.testing.assert_allclose(three["mean"][g], three["per_sentence"][g].mean(0))
        assert three["mean"][g].shape == (2,) and (three["mean"][g] > 0).all()
    gradient_figure(three).savefig(tmp_path / "gradient.png")
    assert (tmp_path / "gradient.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
