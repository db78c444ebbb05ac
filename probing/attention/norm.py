"""Norm-weighted attention (Kobayashi et al. 2020, "Attention is Not Only a Weight").

Head ``h`` adds ``Σ_j α_ij f_h(x_j)`` to token ``i``'s attention output, with
``f_h(x) = (x W_V^h + b_V^h) W_O^h``: the head's value vector pushed through that head's slice
of the output projection. The output bias ``b_O`` is added once per token and belongs to no
``j``. Since ``α_ij >= 0``, the size of ``j``'s contribution is ``||α_ij f_h(x_j)|| =
α_ij ||f_h(x_j)||``; this module returns that map in place of ``α``.

``f_h`` covers every per-head-separable linear map between the attention and the residual
stream. In transformers 5 (checked on 5.25) that is ``W_O`` alone for BERT, MPNet and Llama:
BERT's and MPNet's LayerNorm comes after the residual add, so it is not between the two (ALTI,
:mod:`probing.attention.alti`, accounts for it). Gemma 3 applies ``post_attention_layernorm``, an
RMSNorm, to the attention output before the residual add: ``g ⊙ o_i / rms(o_i)`` with gain
``g = 1 + weight``. Its gain is part of ``f_h`` here (``f_h(x) ⊙ g``), and its ``1 / rms(o_i)``,
one factor per query row, multiplies row ``i``: so the map is the norm of exactly the vector
that (head, key) adds to the residual stream. ``extract.renormalize=true`` rescales every row to
sum to 1, which cancels a row factor, so there it changes nothing; with ``false`` the raw norms
include it.

How the pieces are obtained: one forward pass of the base model with ``output_attentions=True``
(eager attention) gives ``α``; forward hooks on each layer's value projection catch ``x W_V +
b_V`` (after the input RMSNorm in Llama and Gemma, which is part of ``x``'s value path), and on
Gemma 3's output projection the attention output ``o_i`` whose RMS the post-attention norm
divides by. ``W_O`` is read from the output projection, a ``Linear`` computing
``concat_h(o_h) @ W^T`` so that head ``h``'s slice is ``W[:, h*d:(h+1)*d]``. With grouped-query
attention (Llama, Gemma) head ``h`` reads KV head ``h // (H // KVH)``, as transformers'
``repeat_kv`` does. Nothing goes through transformers' attention-function registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from probing.errors import ProbingError


@dataclass(frozen=True)
class Architecture:
    """Where one architecture keeps the parts of its attention block (transformers 5.25)."""

    layers: Callable  # base model -> its layers
    value: Callable  # layer -> value projection
    output: Callable  # layer -> output projection
    # layer -> (gain, eps) of an RMSNorm applied to the attention output before the residual add
    post_attention: Callable | None = None
    # layer -> the LayerNorm applied after the residual add (post-LN: BERT, MPNet)
    block_norm: Callable | None = None


def _gemma_post_attention(layer) -> tuple[torch.Tensor, float]:
    norm = layer.post_attention_layernorm
    # Gemma's RMSNorm scales by (1 + weight), in float32, then casts back
    return 1.0 + norm.weight.float(), float(norm.eps)


# base-model class name -> where its parts are
ARCHITECTURES: dict[str, Architecture] = {
    "BertModel": Architecture(lambda m: m.encoder.layer, lambda l: l.attention.self.value,
                              lambda l: l.attention.output.dense, block_norm=lambda l: l.attention.output.LayerNorm),
    "MPNetModel": Architecture(lambda m: m.encoder.layer, lambda l: l.attention.attn.v, lambda l: l.attention.attn.o,
                               block_norm=lambda l: l.attention.LayerNorm),
    # Llama's "post_attention_layernorm" is the MLP's input norm: after the residual add, not in f_h
    "LlamaModel": Architecture(lambda m: m.layers, lambda l: l.self_attn.v_proj, lambda l: l.self_attn.o_proj),
    # q_norm / k_norm only change α; there is no norm on the values
    "Gemma3TextModel": Architecture(lambda m: m.layers, lambda l: l.self_attn.v_proj, lambda l: l.self_attn.o_proj,
                                    post_attention=_gemma_post_attention),
}


class NormUnsupportedError(ProbingError, TypeError):
    """The model's attention layout is not one this module knows how to take apart."""


def _base(model: nn.Module) -> nn.Module:
    """The bare transformer inside a ``*ForMaskedLM`` / ``*ForCausalLM`` wrapper (or the model)."""
    base = getattr(model, "base_model", model)
    return base if isinstance(base, nn.Module) else model


def supports(model: nn.Module) -> bool:
    return type(_base(model)).__name__ in ARCHITECTURES


def architecture(model: nn.Module, measure: str = "norm-weighted attention") -> tuple[Architecture, list[nn.Module]]:
    """The model's :class:`Architecture` and its layers; a clear error naming the model if unknown."""
    base = _base(model)
    name = type(base).__name__
    if name not in ARCHITECTURES:
        raise NormUnsupportedError(
            f"{measure} does not support {type(model).__name__}; supported: "
            f"{', '.join(ARCHITECTURES)} and their *ForMaskedLM / *ForCausalLM wrappers"
        )
    arch = ARCHITECTURES[name]
    return arch, list(arch.layers(base))


def projections(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    """Per layer, the (value projection, output projection) ``Linear`` pair."""
    arch, layers = architecture(model)
    return [(arch.value(layer), arch.output(layer)) for layer in layers]


def head_outputs(values: torch.Tensor, weight: torch.Tensor, num_heads: int, keys_first: bool = False) -> torch.Tensor:
    """``f_h(x_j)`` for every head and position: ``(B, H, P, D)``, or ``(B, P, H, D)`` with ``keys_first``.

    ``values``: ``(B, P, KVH*d)``, the value projection's output ``x W_V + b_V``;
    ``weight``: ``(D, H*d)``, the output projection's weight (or any linear map after it folded in).
    """
    B, P, _ = values.shape
    d = weight.shape[1] // num_heads
    kv_heads = values.shape[-1] // d
    if kv_heads * d != values.shape[-1] or num_heads % kv_heads:
        raise ValueError(f"values of width {values.shape[-1]} do not split into KV heads of {d} for {num_heads} heads")
    v = values.view(B, P, kv_heads, d).repeat_interleave(num_heads // kv_heads, dim=2)  # (B, P, H, d)
    w = weight.view(weight.shape[0], num_heads, d)  # (D, H, d)
    return torch.einsum("bphd,ohd->bpho" if keys_first else "bphd,ohd->bhpo", v, w)


def value_norms(values: torch.Tensor, weight: torch.Tensor, num_heads: int,
                gain: torch.Tensor | None = None) -> torch.Tensor:
    """``||f_h(x_j) ⊙ gain||``: ``(B, H, P)``, in float32."""
    f = head_outputs(values, weight, num_heads)
    if gain is not None:
        f = f.float() * gain
    # accumulate the squares in float32: half-precision sums of squares overflow at 65504
    return torch.linalg.vector_norm(f, dim=-1, dtype=torch.float32)


def inverse_rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``1 / sqrt(mean(x²) + eps)`` over the last axis, in float32 as Gemma's RMSNorm computes it."""
    return torch.rsqrt(x.float().pow(2).mean(-1) + eps)


@dataclass
class Captured:
    """What one forward pass of the base model left in the hooks, per layer."""

    attentions: tuple[torch.Tensor, ...]  # α: (B, H, P, P)
    values: list[torch.Tensor]  # the value projection's output: (B, P, KVH*d)
    inputs: list[torch.Tensor] = field(default_factory=list)  # the layer's input x: (B, P, D)
    outputs: list[torch.Tensor] = field(default_factory=list)  # the output projection's output: (B, P, D)


def capture(model, input_ids, attention_mask, inputs: bool = False, outputs: bool = False,
            measure: str = "norm-weighted attention") -> Captured:
    """One forward pass of the base model: ``α`` per layer, the value projections' outputs, and on
    request the layers' inputs and the output projections' outputs."""
    arch, layers = architecture(model, measure)
    got = Captured((), [])
    hooks = [arch.value(l).register_forward_hook(lambda _m, _i, out: got.values.append(out)) for l in layers]
    if inputs:
        # every supported model passes hidden_states first, positionally (transformers 5.25)
        hooks += [l.register_forward_pre_hook(
            lambda _m, args, kwargs: got.inputs.append(args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True) for l in layers]
    if outputs:
        hooks += [arch.output(l).register_forward_hook(lambda _m, _i, out: got.outputs.append(out)) for l in layers]
    try:
        # the base model: a causal LM head would cost (B, P, vocab) logits for nothing
        out = _base(model)(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    finally:
        for h in hooks:
            h.remove()
    got.attentions = tuple(out.attentions or ())
    if len(got.attentions) != len(layers) or any(a is None for a in got.attentions):
        raise RuntimeError("the model returned no attention weights: load it with attn_implementation='eager'")
    for name, caught, wanted in (("value projections", got.values, True), ("layer inputs", got.inputs, inputs),
                                 ("output projections", got.outputs, outputs)):
        if wanted and len(caught) != len(layers):
            raise RuntimeError(f"caught {len(caught)} {name} for {len(layers)} layers")
    return got


def attentions_and_values(model, input_ids, attention_mask) -> tuple[tuple[torch.Tensor, ...], list[torch.Tensor]]:
    """One forward pass of the base model: ``α`` per layer ``(B, H, P, P)`` and the value
    projections' outputs per layer ``(B, P, KVH*d)``."""
    got = capture(model, input_ids, attention_mask)
    return got.attentions, got.values


def norm_weighted_attentions(model, input_ids, attention_mask) -> tuple[torch.Tensor, ...]:
    """``α_ij ||f_h(x_j)||`` per layer (times Gemma 3's row factor ``1 / rms(o_i)``):
    ``(B, H, P, P)`` each, like ``outputs.attentions``.

    ``input_ids``, ``attention_mask``: ``(B, P)``. The model must be in eval mode (attention
    dropout would perturb ``α``) with eager attention; callers wrap this in ``inference_mode``.
    Zero wherever ``α`` is zero (padding keys, the causal mask, outside a sliding window).
    """
    arch, layers = architecture(model)  # first: names the model if it is not supported
    heads = int(_base(model).config.num_attention_heads)
    got = capture(model, input_ids, attention_mask, outputs=arch.post_attention is not None)
    out = []
    for l, (layer, alpha, v) in enumerate(zip(layers, got.attentions, got.values)):
        gain, eps = arch.post_attention(layer) if arch.post_attention else (None, 0.0)
        norms = value_norms(v, arch.output(layer).weight, heads, gain)  # (B, H, P): one per key j
        weighted = alpha * norms[:, :, None, :].to(alpha.dtype)
        if gain is not None:
            weighted = weighted * inverse_rms(got.outputs[l], eps)[:, None, :, None].to(alpha.dtype)
        out.append(weighted)
    return tuple(out)
