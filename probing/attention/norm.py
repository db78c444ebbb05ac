"""Norm-weighted attention (Kobayashi et al. 2020, "Attention is Not Only a Weight").

Head ``h`` adds ``Σ_j α_ij f_h(x_j)`` to token ``i``'s attention output, with
``f_h(x) = (x W_V^h + b_V^h) W_O^h``: the head's value vector pushed through that head's slice
of the output projection. The output bias ``b_O`` is added once per token and belongs to no
``j``. Since ``α_ij >= 0``, the size of ``j``'s contribution is ``||α_ij f_h(x_j)|| =
α_ij ||f_h(x_j)||``; this module returns that map in place of ``α``.

The value vectors are caught with forward hooks on each layer's value projection, ``α`` comes
from ``output_attentions=True`` (the model must use eager attention), and ``W_O`` is read from
the output projection, a ``Linear`` computing ``concat_h(o_h) @ W^T`` so that head ``h``'s slice
is ``W[:, h*d:(h+1)*d]``. With grouped-query attention (Llama, Gemma) head ``h`` reads KV head
``h // (H // KVH)``, as transformers' ``repeat_kv`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from probing.errors import ProbingError

# base-model class name -> (layers of the base model, value projection, output projection)
_ARCHITECTURES: dict[str, tuple[Callable, Callable, Callable]] = {
    "BertModel": (lambda m: m.encoder.layer, lambda l: l.attention.self.value,
                  lambda l: l.attention.output.dense),
    "MPNetModel": (lambda m: m.encoder.layer, lambda l: l.attention.attn.v, lambda l: l.attention.attn.o),
    "LlamaModel": (lambda m: m.layers, lambda l: l.self_attn.v_proj, lambda l: l.self_attn.o_proj),
    # q_norm / k_norm only change α; there is no norm on the values (transformers 5.24)
    "Gemma3TextModel": (lambda m: m.layers, lambda l: l.self_attn.v_proj, lambda l: l.self_attn.o_proj),
}


class NormUnsupportedError(ProbingError, TypeError):
    """The model's attention layout is not one this module knows how to take apart."""


def _base(model: nn.Module) -> nn.Module:
    """The bare transformer inside a ``*ForMaskedLM`` / ``*ForCausalLM`` wrapper (or the model)."""
    base = getattr(model, "base_model", model)
    return base if isinstance(base, nn.Module) else model


def supports(model: nn.Module) -> bool:
    return type(_base(model)).__name__ in _ARCHITECTURES


def projections(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    """Per layer, the (value projection, output projection) ``Linear`` pair."""
    base = _base(model)
    name = type(base).__name__
    if name not in _ARCHITECTURES:
        raise NormUnsupportedError(
            f"norm-weighted attention does not support {type(model).__name__}; supported: "
            f"{', '.join(_ARCHITECTURES)} and their *ForMaskedLM / *ForCausalLM wrappers"
        )
    layers, value, output = _ARCHITECTURES[name]
    return [(value(layer), output(layer)) for layer in layers(base)]


def head_outputs(values: torch.Tensor, weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``f_h(x_j)`` for every head and position: ``(B, H, P, D)``.

    ``values``: ``(B, P, KVH*d)``, the value projection's output ``x W_V + b_V``;
    ``weight``: ``(D, H*d)``, the output projection's weight.
    """
    B, P, _ = values.shape
    d = weight.shape[1] // num_heads
    kv_heads = values.shape[-1] // d
    if kv_heads * d != values.shape[-1] or num_heads % kv_heads:
        raise ValueError(f"values of width {values.shape[-1]} do not split into KV heads of {d} for {num_heads} heads")
    v = values.view(B, P, kv_heads, d).repeat_interleave(num_heads // kv_heads, dim=2)  # (B, P, H, d)
    w = weight.view(weight.shape[0], num_heads, d)  # (D, H, d)
    return torch.einsum("bphd,ohd->bhpo", v, w)


def value_norms(values: torch.Tensor, weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``||f_h(x_j)||``: ``(B, H, P)``, in ``values``' dtype."""
    f = head_outputs(values, weight, num_heads)
    # accumulate the squares in float32: half-precision sums of squares overflow at 65504
    return torch.linalg.vector_norm(f, dim=-1, dtype=torch.float32).to(values.dtype)


def attentions_and_values(model, input_ids, attention_mask) -> tuple[tuple[torch.Tensor, ...], list[torch.Tensor]]:
    """One forward pass of the base model: ``α`` per layer ``(B, H, P, P)`` and the value
    projections' outputs per layer ``(B, P, KVH*d)``."""
    pairs = projections(model)
    captured: list[torch.Tensor] = []
    hooks = [v.register_forward_hook(lambda _m, _i, out: captured.append(out)) for v, _ in pairs]
    try:
        # the base model: a causal LM head would cost (B, P, vocab) logits for nothing
        out = _base(model)(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    finally:
        for h in hooks:
            h.remove()
    attentions = tuple(out.attentions or ())
    if len(attentions) != len(pairs) or any(a is None for a in attentions):
        raise RuntimeError("the model returned no attention weights: load it with attn_implementation='eager'")
    if len(captured) != len(pairs):
        raise RuntimeError(f"caught {len(captured)} value projections for {len(pairs)} layers")
    return attentions, captured


def norm_weighted_attentions(model, input_ids, attention_mask) -> tuple[torch.Tensor, ...]:
    """``α_ij ||f_h(x_j)||`` per layer: ``(B, H, P, P)`` each, like ``outputs.attentions``.

    ``input_ids``, ``attention_mask``: ``(B, P)``. The model must be in eval mode (attention
    dropout would perturb ``α``) with eager attention; callers wrap this in ``inference_mode``.
    Zero wherever ``α`` is zero (padding keys, the causal mask, outside a sliding window).
    """
    pairs = projections(model)  # first: names the model if it is not supported
    heads = int(_base(model).config.num_attention_heads)
    attentions, values = attentions_and_values(model, input_ids, attention_mask)
    out = []
    for alpha, v, (_, o) in zip(attentions, values, pairs):
        norms = value_norms(v, o.weight, heads)  # (B, H, P): one per key j
        out.append(alpha * norms[:, :, None, :].to(alpha.dtype))
    return tuple(out)
