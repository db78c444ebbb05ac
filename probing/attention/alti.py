"""ALTI: how much each token feeds another through a whole attention block (Ferrando et al.,
EMNLP 2022, "Measuring the Mixing of Contextual Information in the Transformer").

A layer's attention block (heads, ``W_O``, output bias, residual, and the block's norm) is affine
in the per-source vectors once its per-query norm statistics are fixed, so its output is

    y_i = Σ_j T_i(x_j) + c_i

where ``T_i(x_j)`` is what source ``j`` contributes and ``c_i`` is what no source owns. With
``f_h(x_j) = v_j^h W_O^h`` (:func:`probing.attention.norm.head_outputs`, ``v_j^h`` the value
projection's output, so ``b_V`` travels with ``j``) and ``δ_ij x_j`` the residual, owned by
``j = i`` alone:

- post-LN (BERT, MPNet): ``y_i = LN(Σ_j Σ_h α_ij^h f_h(x_j) + b_O + x_i)``;
  ``T_i(x_j) = γ ⊙ C(Σ_h α_ij^h f_h(x_j) + δ_ij x_j) / σ_i`` with ``C(v) = v - mean(v)`` and
  ``σ_i = sqrt(var(LN input_i) + eps)``; ``c_i = γ ⊙ C(b_O) / σ_i + β``.
- pre-RMSNorm (Llama): the block is ``x + attention(RMSNorm(x))``; the input norm acts on ``x_j``
  alone, so it is part of ``v_j`` (the value hook sees the normed input) and
  ``T_i(x_j) = Σ_h α_ij^h f_h(x_j) + δ_ij x_j``, ``c_i = b_O``.
- Gemma 3 adds its post-attention RMSNorm before the residual add:
  ``T_i(x_j) = g ⊙ Σ_h α_ij^h f_h(x_j) / rms(o_i) + δ_ij x_j`` with ``g = 1 + weight`` and ``o_i``
  the output projection's output; ``c_i = g ⊙ b_O / rms(o_i)`` (zero: Gemma has no ``b_O``).

Then ``d_ij = ||y_i - T_i(x_j)||_1`` and ``c_ij = max(0, ||y_i||_1 - d_ij)``, normalised over
``j``. A key the model cannot attend to (padding, the causal mask, outside a sliding window) gets
exactly 0, and so does every padded query row; other rows sum to 1 (a row whose every ``c_ij`` is
0 stays 0).

Where these definitions come from (the authors' code, mt-upc/transformer-contributions, stored
copy at commit d0f1468; line numbers counted in that copy):

- ``src/contributions.py``, ``ModelWrapper.get_contributions``: value vectors caught from the value
  ``Linear`` (bias included, l. 135), ``f_h`` through ``W_O`` split per head (l. 150-152),
  weighted by ``α`` and summed over heads (l. 157, 162), the layer input added on the diagonal
  ``j = i`` (l. 168-171); post-LN: the LayerNorm's centring and ``γ`` as a linear map
  (``l_transform``, l. 174-186) applied to every per-source vector, ``b_O`` through the same map,
  everything divided by the per-query std, ``β`` added to ``y_i`` only (l. 195, 204-208);
  pre-LN: no transform, ``y_i = Σ_j T_i(x_j) + b_O``, checked against the MLP norm's input
  (l. 210-217); ``d_ij`` as ``F.pairwise_distance(T, y, p=1)`` (l. 222).
- ``src/utils_contributions.py``, ``normalize_contributions(scaling="min_sum", resultant_norm=
  ||y_i||_1)``: add ``||y_i||_1`` to ``-d_ij``, clip at 0, divide by the row sum; its callers
  pass ``torch.norm(resultants, p=1, dim=-1)`` (``attributions.py``, ``contribution_relevancies_sst2``).
- inseq's ``inseq/attr/feat/ops/alti.py`` (commit 77ef3df, pre-LN only) does the same: ``b_V`` and
  the input norm's bias go to the source through ``α`` ("A⋅θ"), ``b_O`` to ``y_i`` only, L1
  distance, Eq. 9's normalisation.

Departures, all below float32 noise for the models here: the authors' σ is
``std(LN input + eps)`` (eps added to the states, so effectively no eps); this module uses the
LayerNorm's own ``sqrt(var + eps)`` (as inseq does) so that ``Σ_j T_i(x_j) + c_i`` is the block's
real output. ``F.pairwise_distance`` adds 1e-6 to every difference; this module does not. The
pre-RMSNorm and Gemma 3 cases are not in the authors' code (theirs: BERT, RoBERTa, DistilBERT;
inseq's: pre-LayerNorm GPT-2-likes); they follow the same rule: every linear map on the way is
applied to each source's vector, each per-query statistic is held fixed, biases go to ``c_i``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from probing.attention.norm import Architecture, _base, architecture, capture, head_outputs, inverse_rms

# elements of one (keys, B, queries, D) block of T_i(x_j) held at once, float32: 128 MiB. Fewer,
# larger (queries x H+1) @ (H+1 x D) products win: on batches of 64 x 63 pieces (MiniLM, SmolLM2
# shapes) 128 MiB blocks took 0.5-0.7x the time of 1-16 MiB ones on a 2-core machine
CHUNK_ELEMENTS = 2**25


@dataclass
class Block:
    """One layer's attention block, factored: ``T_i(x_j) = a_i Σ_h α_ij^h G_hj + δ_ij b_i X_j`` and
    ``y_i = Σ_j T_i(x_j) + c_i``. The residual is one more "head" with weight ``b_i δ_ij``, so the
    whole of ``T`` is one batched product. All float32."""

    alpha: torch.Tensor  # (B, H, P, P)
    # keys first, (P, B, H + 1, D): G_hj (f_h(x_j) through the key-independent linear maps), then X_j
    sources: torch.Tensor
    attn_scale: torch.Tensor  # a: (B, P), the per-query factor on the attention part
    res_scale: torch.Tensor  # b: (B, P), the per-query factor on the residual
    bias: torch.Tensor  # c: (B, P, D)

    def transformed(self, start: int, stop: int, key_start: int = 0, key_stop: int | None = None) -> torch.Tensor:
        """``T_i(x_j)`` for queries ``start <= i < stop`` and keys ``key_start <= j < key_stop`` (a range
        that holds the queries' own positions): ``(keys, B, queries, D)``."""
        key_stop = self.alpha.shape[-1] if key_stop is None else key_stop
        if key_start > start or key_stop < stop:
            raise ValueError(f"keys {key_start}..{key_stop} miss the residual of queries {start}..{stop}")
        alpha = self.alpha[:, :, start:stop, key_start:key_stop] * self.attn_scale[:, None, start:stop, None]
        device = alpha.device
        own = torch.arange(start, stop, device=device)[:, None] == torch.arange(key_start, key_stop, device=device)
        weights = torch.cat([alpha, (self.res_scale[:, start:stop, None] * own)[:, None]], 1)  # (B, H+1, c, keys)
        # one (queries x H+1) @ (H+1 x D) product per (key, sentence): the head sum and the residual
        return torch.matmul(weights.permute(3, 0, 2, 1), self.sources[key_start:key_stop])


def block(arch: Architecture, layer, alpha, values, x, o, num_heads: int) -> Block:
    """Factor one layer: ``α`` (B, H, P, P), the value projection's output (B, P, KVH*d), the
    layer's input ``x`` (B, P, D) and the output projection's output ``o`` (B, P, D).

    The linear maps after ``W_O`` that do not depend on the query (centring, ``γ``, Gemma's gain)
    are folded into ``W_O`` (a ``D x D`` product instead of a pass over every head's vectors).
    """
    output = arch.output(layer)
    w_o = output.weight.float()  # (D, H*d)
    x, o = x.float(), o.float()
    B, P, D = x.shape
    b_o = torch.zeros(D, device=x.device) if output.bias is None else output.bias.float()
    one = torch.ones(B, P, device=x.device)

    def sources(w, residual):  # (P, B, H + 1, D): positions as head_outputs' batch, keys first
        heads = head_outputs(values.float().transpose(0, 1).contiguous(), w, num_heads, keys_first=True)
        return torch.cat([heads, residual.transpose(0, 1)[:, :, None]], 2)

    if arch.post_attention is not None:  # Gemma 3: g ⊙ o_i / rms(o_i) joins the residual
        gain, eps = arch.post_attention(layer)
        r = inverse_rms(o, eps)
        return Block(alpha.float(), sources(gain[:, None] * w_o, x), r, one, r[..., None] * gain * b_o)
    if arch.block_norm is not None:  # post-LN: LN(o_i + x_i) closes the block
        ln = arch.block_norm(layer)
        gamma = ln.weight.float()
        s = o + x  # the LayerNorm's input (dropout is off in eval)
        inv_sigma = torch.rsqrt(s.var(-1, unbiased=False) + ln.eps)

        def centred(v):  # the LayerNorm's linear part before the per-query 1/σ, over the last axis
            return (v - v.mean(-1, keepdim=True)) * gamma

        # centring each output vector of W_O = centring W_O's columns
        w = gamma[:, None] * (w_o - w_o.mean(0, keepdim=True))
        return Block(alpha.float(), sources(w, centred(x)), inv_sigma, inv_sigma,
                     inv_sigma[..., None] * centred(b_o) + ln.bias.float())
    return Block(alpha.float(), sources(w_o, x), one, one, b_o.expand(B, P, D))


def layer_contributions(blk: Block, attention_mask: torch.Tensor) -> torch.Tensor:
    """``c_ij`` normalised over ``j``: ``(B, 1, P, P)`` float32."""
    B, H, P, _ = blk.alpha.shape
    D = blk.sources.shape[-1]
    eye = torch.eye(P, dtype=torch.bool, device=blk.alpha.device)
    # exact zeros where no path exists, instead of ‖y‖ - ‖y - 0‖ rounding either way
    allowed = ((blk.alpha > 0).any(1) | eye) & attention_mask.bool()[:, :, None]  # (B, P_i, P_j)
    step = max(1, CHUNK_ELEMENTS // max(1, B * P * D))
    out = torch.zeros(B, P, P, device=blk.alpha.device)
    for start in range(0, P, step):
        stop = min(P, start + step)
        keys = allowed[:, start:stop].any(1).any(0).nonzero()
        if not len(keys):  # every row of the chunk is padding
            continue
        # only the keys some query of the chunk reaches: half the work in a causal model
        k0, k1 = min(int(keys[0]), start), max(int(keys[-1]) + 1, stop)
        t = blk.transformed(start, stop, k0, k1)  # (keys, B, c, D)
        y = t.sum(0) + blk.bias[:, start:stop]  # (B, c, D): unreached keys add nothing
        # in place: t is this loop's own, and the passes over it are the cost of ALTI
        dist = t.sub_(y).abs_().sum(-1).permute(1, 2, 0)  # (B, c, keys)
        out[:, start:stop, k0:k1] = (y.abs().sum(-1)[..., None] - dist).clamp_min(0)
    out = out * allowed
    out = out / out.sum(-1, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny)
    return out[:, None]


def blocks(model, input_ids, attention_mask) -> Iterator[Block]:
    """Every layer's :class:`Block` from one forward pass, one at a time (a block holds
    ``(B, H, P, D)`` float32 vectors)."""
    arch, layers = architecture(model, "ALTI")  # first: names the model if it is not supported
    heads = int(_base(model).config.num_attention_heads)
    got = capture(model, input_ids, attention_mask, inputs=True, outputs=True, measure="ALTI")
    for layer, *parts in zip(layers, got.attentions, got.values, got.inputs, got.outputs):
        yield block(arch, layer, *parts, heads)


def alti(model, input_ids, attention_mask) -> tuple[torch.Tensor, ...]:
    """ALTI contributions per layer: ``(B, 1, P, P)`` float32 each, rows summing to 1 over the keys
    each query can reach. ``input_ids``, ``attention_mask``: ``(B, P)``. The model must be in eval
    mode with eager attention (see :func:`probing.attention.norm.norm_weighted_attentions`)."""
    return tuple(layer_contributions(blk, attention_mask) for blk in blocks(model, input_ids, attention_mask))
