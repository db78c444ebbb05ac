import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from transformers import AutoModel, BertConfig

from probing.attention import alti as alti_module
from probing.attention import store as st
from probing.attention.alti import alti, blocks
from probing.attention.extract import forward_layers
from probing.attention.norm import NormUnsupportedError
from tests.test_norm import TINY, batch, tiny


def _bert_one_layer(x: torch.Tensor, setup) -> torch.nn.Module:
    """A one-layer BERT of hidden size 4 and 2 heads whose layer reads ``x`` (B, P, 4) instead of its
    embeddings; ``setup(layer)`` sets the weights."""
    cfg = BertConfig(vocab_size=100, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    model = AutoModel.from_config(cfg, attn_implementation="eager").eval()
    layer = model.encoder.layer[0]
    with torch.no_grad():
        setup(layer)
    layer.register_forward_pre_hook(lambda _m, args, kwargs: ((x,) + args[1:], kwargs), with_kwargs=True)
    return model


def test_hand_computed_one_layer_bert():
    """α uniform over 2 tokens, W_V = W_O = I, no biases, γ = 1, β = 0, x_0 = (1,-1,0,0), x_1 = (0,0,1,-1).

    LN input s_0 = ½(x_0 + x_1) + x_0 = (1.5,-1.5,.5,-.5): mean 0, σ = √(5/4). T_0(x_0) = 1.5 x_0 / σ,
    T_0(x_1) = .5 x_1 / σ, y_0 = s_0 / σ: ||y_0||₁ = 4/σ, d_00 = ||.5 x_1||₁/σ = 1/σ, d_01 = 3/σ,
    so c_0 = (3, 1)/σ -> (.75, .25); row 1 by symmetry (.25, .75). Attention alone says (.5, .5).
    """
    def setup(layer):
        for p in layer.attention.parameters():
            p.zero_()
        layer.attention.self.value.weight.copy_(torch.eye(4))
        layer.attention.output.dense.weight.copy_(torch.eye(4))
        layer.attention.output.LayerNorm.weight.fill_(1.0)

    x = torch.tensor([[[1.0, -1, 0, 0], [0, 0, 1, -1]]])
    model = _bert_one_layer(x, setup)
    with torch.no_grad():
        (got,) = alti(model, torch.tensor([[5, 6]]), torch.ones(1, 2, dtype=torch.long))
    torch.testing.assert_close(got, torch.tensor([[[[0.75, 0.25], [0.25, 0.75]]]]))


def _reference(x, mask, layer, heads):
    """ALTI written from the formulas (module docstring), one (b, i, j, h) at a time in float64."""
    w = {n: p.detach().double().numpy() for n, p in layer.named_parameters()}
    wq, bq = w["attention.self.query.weight"], w["attention.self.query.bias"]
    wk, bk = w["attention.self.key.weight"], w["attention.self.key.bias"]
    wv, bv = w["attention.self.value.weight"], w["attention.self.value.bias"]
    wo, bo = w["attention.output.dense.weight"], w["attention.output.dense.bias"]
    gamma, beta = w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"]
    eps = layer.attention.output.LayerNorm.eps
    x, mask = x.double().numpy(), mask.numpy()
    B, P, D = x.shape
    d = D // heads
    out, ys = np.zeros((B, P, P)), np.zeros((B, P, D))
    for b in range(B):
        q, k, v = x[b] @ wq.T + bq, x[b] @ wk.T + bk, x[b] @ wv.T + bv
        for i in range(P):
            alpha, f = np.zeros((heads, P)), np.zeros((heads, P, D))
            for h in range(heads):
                s = slice(h * d, (h + 1) * d)
                scores = np.array([q[i, s] @ k[j, s] / np.sqrt(d) if mask[b, j] else -np.inf for j in range(P)])
                alpha[h] = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
                for j in range(P):
                    f[h, j] = wo[:, s] @ v[j, s]
            pre = sum(alpha[h, j] * f[h, j] for h in range(heads) for j in range(P)) + bo + x[b, i]
            sigma = np.sqrt(pre.var() + eps)
            ys[b, i] = gamma * (pre - pre.mean()) / sigma + beta
            for j in range(P):
                z = sum(alpha[h, j] * f[h, j] for h in range(heads)) + (x[b, j] if i == j else 0)
                t = gamma * (z - z.mean()) / sigma
                c = np.abs(ys[b, i]).sum() - np.abs(ys[b, i] - t).sum()
                out[b, i, j] = max(0.0, c) if mask[b, j] and mask[b, i] else 0.0
            if out[b, i].sum() > 0:  # a row of zeros stays zero
                out[b, i] /= out[b, i].sum()
    return out, ys


def test_one_layer_bert_against_a_loop_from_the_formulas():
    """Random weights and biases (γ, β included), two sequences, the second padded after 3 tokens."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])

    def setup(layer):
        for p in layer.attention.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        # a β as large as the rest puts y_i far from every T_i(x_j) and zeroes whole rows
        layer.attention.output.LayerNorm.bias.mul_(0.1)

    model = _bert_one_layer(x, setup)
    layer = model.encoder.layer[0]
    real = []
    layer.attention.output.LayerNorm.register_forward_hook(lambda _m, _i, out: real.append(out))
    with torch.no_grad():
        (got,) = alti(model, torch.full((2, 5), 7), mask)
    expected, y = _reference(x, mask, layer, heads=2)
    # the loop's y_i is the model's real block output: the formulas are the block's
    np.testing.assert_allclose(y, real[0].double().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 0].double().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert (expected[0].sum(-1) > 0.99).all() and (expected > 0).sum() >= 10  # not a degenerate case
    assert (got[1, 0, :, 3:] == 0).all() and (got[1, 0, 3:] == 0).all()


def _block_outputs(model, arch: str) -> tuple[list[torch.Tensor], list]:
    """Hooks that catch each layer's real attention-block output y."""
    real, layers = [], model.base_model.layers if arch in ("llama", "gemma3") else model.base_model.encoder.layer
    if arch == "bert":
        hooks = [l.attention.output.LayerNorm.register_forward_hook(lambda _m, _i, o: real.append(o)) for l in layers]
    elif arch == "mpnet":
        hooks = [l.attention.LayerNorm.register_forward_hook(lambda _m, _i, o: real.append(o)) for l in layers]
    else:  # pre-norm: y is the residual stream between the attention and the MLP, the MLP norm's input
        mlp_norm = "post_attention_layernorm" if arch == "llama" else "pre_feedforward_layernorm"
        hooks = [getattr(l, mlp_norm).register_forward_pre_hook(lambda _m, args: real.append(args[0])) for l in layers]
    return real, hooks


@pytest.mark.parametrize("wrapper", [False, True], ids=["base", "wrapper"])
@pytest.mark.parametrize("arch", list(TINY))
def test_decomposition_sums_to_the_real_block_output(arch, wrapper):
    """Σ_j T_i(x_j) + c_i is the attention block's output as the model computes it."""
    model = tiny(arch, wrapper)
    real, hooks = _block_outputs(model, arch)
    ids, mask = batch()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
        for h in hooks:
            h.remove()
        got = list(blocks(model, ids, mask))
    assert len(got) == len(real) == model.config.num_hidden_layers
    for blk, y in zip(got, real):
        P = y.shape[1]
        rebuilt = blk.transformed(0, P).sum(0) + blk.bias
        torch.testing.assert_close(rebuilt, y.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", list(TINY))
def test_rows_sum_to_one_over_the_keys_a_query_can_reach(arch):
    model = tiny(arch, wrapper=False)
    ids, mask = batch()
    with torch.no_grad():
        maps = alti(model, ids, mask)
        attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    for c, alpha in zip(maps, attentions):
        assert c.shape == (2, 1, 7, 7) and c.dtype == torch.float32
        torch.testing.assert_close(c[0, 0].sum(-1), torch.ones(7))
        torch.testing.assert_close(c[1, 0, :4].sum(-1), torch.ones(4))
        assert (c[1, :, 4:] == 0).all() and (c[1, :, :, 4:] == 0).all()  # padded rows and keys
        reachable = (alpha > 0).any(1, keepdim=True) | torch.eye(7, dtype=torch.bool)
        assert (c[~reachable] == 0).all()
        if arch in ("llama", "gemma3"):
            assert (c.triu(diagonal=1) == 0).all()
    if arch == "gemma3":  # layer 0's sliding window of 4: row 6 reaches keys 3..6 only
        assert (maps[0][0, 0, 6, :3] == 0).all()


@pytest.mark.parametrize("arch", ["bert", "gemma3"])
def test_chunks_of_queries_and_their_reachable_keys_give_the_same_maps(arch, monkeypatch):
    model = tiny(arch, wrapper=False)
    ids, mask = batch()
    with torch.no_grad():
        whole = alti(model, ids, mask)
        monkeypatch.setattr(alti_module, "CHUNK_ELEMENTS", 2 * 7 * model.config.hidden_size * 2)  # 2 queries
        chunked = alti(model, ids, mask)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b)


def test_forward_layers_dispatches_one_map_per_layer():
    model = tiny("llama", wrapper=True)
    ids, mask = batch()
    with torch.no_grad():
        layers = forward_layers(model, ids, mask, "alti", renormalize=False)  # renormalize does not apply
        direct = alti(model, ids, mask)
    assert len(layers) == 2 and all(a.shape == (2, 1, 7, 7) for a in layers)
    for a, b in zip(layers, direct):
        torch.testing.assert_close(a, b)


def test_cache_holds_one_head_per_layer_under_its_own_key(compose_tiny):
    cfg = compose_tiny("extract", "split=train")
    encoder, corpus, settings = instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)
    settings.quantity = "alti"
    store, sentences = st.open_split(encoder, corpus, "dev", settings, cfg.paths.attention_cache)
    assert store.key["quantity"] == "alti" and "renormalize" not in store.key
    assert (store.num_layers, store.num_heads) == (2, 1)
    maps = store.maps(0).astype(np.float32)
    assert maps.shape == (2, len(sentences[0]) + 2, len(sentences[0]) + 2)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=5e-3)


def test_unsupported_model_names_itself():
    class Toy(torch.nn.Module):
        pass

    with pytest.raises(NormUnsupportedError, match="ALTI does not support Toy; supported: BertModel, MPNetModel"):
        alti(Toy(), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2))
