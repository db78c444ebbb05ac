import math

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    BertConfig,
    Gemma3TextConfig,
    LlamaConfig,
    MPNetConfig,
)

from probing.attention.extract import forward_layers
from probing.attention.norm import (
    NormUnsupportedError,
    head_outputs,
    inverse_rms,
    norm_weighted_attentions,
    projections,
    supports,
)

TINY = {
    "bert": (BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32), AutoModelForMaskedLM),
    "mpnet": (MPNetConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=32), AutoModelForMaskedLM),
    # grouped-query attention: 4 heads read 2 KV heads
    "llama": (LlamaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, intermediate_size=64), AutoModelForCausalLM),
    # head_dim 16: H*d = 64 differs from hidden 32; layer 0 has a sliding window of 4
    "gemma3": (Gemma3TextConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=16, intermediate_size=64, sliding_window=4,
                                layer_types=["sliding_attention", "full_attention"]), AutoModelForCausalLM),
}


def tiny(arch: str, wrapper: bool, seed: int = 0):
    cfg, auto = TINY[arch]
    torch.manual_seed(seed)
    model = (auto if wrapper else AutoModel).from_config(cfg, attn_implementation="eager").eval()
    if arch == "gemma3":  # from_config leaves every RMSNorm at gain 1 (weight 0): make the gains matter
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.normal_(0.0, 0.5)
    return model


def batch():
    """Two sequences of 7; the second is padded after 4 pieces."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 100, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    return ids, mask


# Hand-computed case. Output projection W (out = c @ W^T), head h's slice is W[:, 2h:2h+2]:
#   f_0(v) = (v0, v1, 0, 0)        ||f_0|| = sqrt(v0² + v1²)
#   f_1(v) = (v2, 0, v2, v3)       ||f_1|| = sqrt(2 v2² + v3²)
W_O = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
X = torch.tensor([[[3.0, 4, 2, 0], [0, 1, 0, 4], [6, 8, 4, 1]]])  # the layer input of 3 tokens


def _one_layer(model, value_weight, value_bias):
    """Zero queries and keys (α uniform over the keys allowed), set W_V, b_V and W_O, feed X to W_V."""
    (value, output), = projections(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-2] in ("query", "key", "q_proj", "k_proj"):
                p.zero_()
        value.weight.copy_(value_weight)
        if value_bias is not None:
            value.bias.copy_(value_bias)
        output.weight.copy_(W_O)
    value.register_forward_pre_hook(lambda _m, _args: (X,))
    return model


def test_hand_computed_bert_two_heads():
    cfg = BertConfig(vocab_size=100, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    model = _one_layer(AutoModel.from_config(cfg, attn_implementation="eager").eval(),
                       torch.eye(4), torch.tensor([0.0, 0, 0, 1]))
    # v = x + b_V: (3,4,2,1), (0,1,0,5), (6,8,4,2) -> ||f_0|| = 5, 1, 10 and ||f_1|| = 3, 5, 6
    with torch.no_grad():
        (got,) = norm_weighted_attentions(model, torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long))
    expected = torch.tensor([[5 / 3, 1 / 3, 10 / 3]] * 3 + [[3 / 3, 5 / 3, 6 / 3]] * 3).view(1, 2, 3, 3)
    torch.testing.assert_close(got, expected)
    with torch.no_grad():  # the third token padded: α = 1/2 on the other two
        (got,) = norm_weighted_attentions(model, torch.tensor([[5, 6, 7]]), torch.tensor([[1, 1, 0]]))
    expected = torch.tensor([[5 / 2, 1 / 2, 0]] * 3 + [[3 / 2, 5 / 2, 0]] * 3).view(1, 2, 3, 3)
    torch.testing.assert_close(got, expected)


def test_hand_computed_llama_grouped_query_causal():
    cfg = LlamaConfig(vocab_size=100, hidden_size=4, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, intermediate_size=8)
    # one KV head read by both heads: v = (x0, x1), no bias
    w_v = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0]])
    model = _one_layer(AutoModel.from_config(cfg, attn_implementation="eager").eval(), w_v, None)
    # v = (3,4), (0,1), (6,8) -> ||f_0|| = 5, 1, 10 and ||f_1|| = sqrt(34), 1, sqrt(136); α_ij = 1/(i+1), j <= i
    with torch.no_grad():
        (got,) = norm_weighted_attentions(model, torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long))
    r34, r136 = math.sqrt(34), math.sqrt(136)
    expected = torch.tensor([
        [[5, 0, 0], [5 / 2, 1 / 2, 0], [5 / 3, 1 / 3, 10 / 3]],
        [[r34, 0, 0], [r34 / 2, 1 / 2, 0], [r34 / 3, 1 / 3, r136 / 3]],
    ]).unsqueeze(0)
    torch.testing.assert_close(got, expected)


def test_hand_computed_gemma3_post_attention_norm():
    """Gemma 3's post-attention RMSNorm: its gain g = 1 + weight goes into f_h, 1 / rms(o_i) onto row i."""
    cfg = Gemma3TextConfig(vocab_size=100, hidden_size=4, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2, head_dim=2, intermediate_size=8, layer_types=["full_attention"])
    model = AutoModel.from_config(cfg, attn_implementation="eager").eval()
    attn = model.layers[0].self_attn
    x = torch.tensor([[[1.0, 1, 1, 1], [3, -1, 1, 3], [2, 6, 4, 2]]])
    with torch.no_grad():  # α uniform over j <= i; W_V = W_O = I: f_0(x) = (x0, x1, 0, 0), f_1(x) = (0, 0, x2, x3)
        attn.q_proj.weight.zero_()
        attn.k_proj.weight.zero_()
        attn.v_proj.weight.copy_(torch.eye(4))
        attn.o_proj.weight.copy_(torch.eye(4))
        model.layers[0].post_attention_layernorm.weight.copy_(torch.tensor([0.0, 1, 0, 0]))  # g = (1, 2, 1, 1)
    attn.v_proj.register_forward_pre_hook(lambda _m, _args: (x,))
    # o_i = mean_{j<=i} x_j = (1,1,1,1), (2,0,1,2), (2,2,2,2): rms 1, 3/2, 2.
    # ||g ⊙ f_0(x_j)|| = ||(1,2)||, ||(3,-2)||, ||(2,12)|| = √5, √13, 2√37;
    # ||g ⊙ f_1(x_j)|| = ||(1,1)||, ||(1,3)||, ||(4,2)|| = √2, √10, 2√5; times α_ij / rms(o_i)
    with torch.no_grad():
        (got,) = norm_weighted_attentions(model, torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long))
    r = math.sqrt
    expected = torch.tensor([
        [[r(5), 0, 0], [r(5) / 3, r(13) / 3, 0], [r(5) / 6, r(13) / 6, r(37) / 3]],
        [[r(2), 0, 0], [r(2) / 3, r(10) / 3, 0], [r(2) / 6, r(10) / 6, r(5) / 3]],
    ]).unsqueeze(0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)  # rms_norm_eps = 1e-6 is in the rms
    with torch.no_grad():  # renormalised rows: the 1 / rms(o_i) row factor cancels
        (rows,) = forward_layers(model, torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long), "norm")
    torch.testing.assert_close(rows, expected / expected.sum(-1, keepdim=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wrapper", [False, True], ids=["base", "wrapper"])
@pytest.mark.parametrize("arch", list(TINY))
def test_head_outputs_add_up_to_the_output_projection(arch, wrapper):
    """Σ_h Σ_j α_ij f_h(x_j) + b_O is the output projection's output: f_h is the right quantity."""
    model = tiny(arch, wrapper)
    assert supports(model)
    pairs = projections(model)
    values, outputs, normed = [], [], []
    hooks = [v.register_forward_hook(lambda _m, _i, out: values.append(out)) for v, _ in pairs]
    hooks += [o.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for _, o in pairs]
    if arch == "gemma3":  # what is added to the residual stream: the post-attention RMSNorm's output
        hooks += [layer.post_attention_layernorm.register_forward_hook(lambda _m, _i, out: normed.append(out))
                  for layer in model.base_model.layers]
    ids, mask = batch()
    with torch.no_grad():
        attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
        norms = norm_weighted_attentions(model, ids, mask)
    for h in hooks:
        h.remove()
    heads = model.config.num_attention_heads
    for l, (alpha, v, out, (_, o), nw) in enumerate(zip(attentions, values, outputs, pairs, norms)):
        f = head_outputs(v, o.weight, heads)  # (B, H, P, D)
        rebuilt = torch.einsum("bhij,bhjd->bid", alpha, f)
        if o.bias is not None:
            rebuilt = rebuilt + o.bias
        torch.testing.assert_close(rebuilt, out, rtol=1e-5, atol=1e-5)
        assert nw.shape == alpha.shape
        if arch == "gemma3":
            # what (head h, key j) adds to token i's residual stream: α_ij g ⊙ f_h(x_j) / rms(o_i)
            norm = model.base_model.layers[l].post_attention_layernorm
            parts = torch.einsum("bhij,bhjd->bhijd", alpha, f * (1 + norm.weight))
            parts = parts * inverse_rms(out, norm.eps)[:, None, :, None, None]
            torch.testing.assert_close(parts.sum((1, 3)), normed[l], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(nw, parts.norm(dim=-1))
        else:
            torch.testing.assert_close(nw, alpha * f.norm(dim=-1)[:, :, None, :])


@pytest.mark.parametrize("arch", list(TINY))
def test_zero_where_attention_is_zero(arch):
    model = tiny(arch, wrapper=False)
    ids, mask = batch()
    with torch.no_grad():
        attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
        norms = norm_weighted_attentions(model, ids, mask)
    assert len(norms) == len(attentions) == model.config.num_hidden_layers
    for alpha, nw in zip(attentions, norms):
        assert (nw[alpha == 0] == 0).all()
        assert (nw[alpha > 0] > 0).all()
        assert (nw[1, :, :, 4:] == 0).all()  # padding keys
        if arch in ("llama", "gemma3"):  # the causal mask
            assert (nw.triu(diagonal=1) == 0).all()
    if arch == "gemma3":  # the sliding window of 4 in layer 0: row 6 sees keys 3..6 only
        assert (norms[0][0, :, 6, :3] == 0).all() and (norms[0][0, :, 6, 3:] > 0).all()


def test_half_precision_keeps_dtype():
    model = tiny("llama", wrapper=True).to(torch.bfloat16)
    ids, mask = batch()
    with torch.inference_mode():
        norms = norm_weighted_attentions(model, ids, mask)
    assert all(n.dtype == torch.bfloat16 and torch.isfinite(n).all() for n in norms)


def test_unsupported_model_names_itself():
    class Toy(torch.nn.Module):
        pass

    assert not supports(Toy())
    with pytest.raises(NormUnsupportedError, match="does not support Toy; supported: BertModel, MPNetModel"):
        norm_weighted_attentions(Toy(), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2))
