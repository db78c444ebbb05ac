"""What every probe net provides to :class:`probing.probes.module.ProbeModule`, and its init."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from probing.probes.batch import ProbeBatch

# released: TF's glorot-uniform everywhere, biases zero (clarkkev/attention-analysis);
# zeros: every parameter 0; pytorch: nn.Linear's own init and zeros for bare weight vectors (this
# code before issue 10: AttnOnly started at zero, the GloVe nets at nn.Linear's default)
INITS = ("released", "zeros", "pytorch")


class ProbeNet(nn.Module):
    """A probe: ``forward(batch) -> scores (B, Q, N+1)`` for every candidate of every query.

    Scores are raw: the module masks candidates that do not exist (and the query's own words when
    ``mask_self``). ``pair_features(batch, choice) -> (B, Q, pair_feature_dim)`` describes the arc
    from each query to candidate ``choice`` (B, Q) with the inputs the net scores arcs from, so that
    the label classifier never sees more than the probe does. ``uses_attention = False`` nets get
    no attention in their batches, and nothing is extracted for them.
    """

    uses_attention: ClassVar[bool] = True
    pair_feature_dim: int = 0

    def forward(self, batch: ProbeBatch) -> Tensor:
        raise NotImplementedError

    def pair_features(self, batch: ProbeBatch, choice: Tensor) -> Tensor:
        raise NotImplementedError


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    return init


def glorot_uniform_(weight: Tensor, fan_in: int, fan_out: int) -> None:
    """TF's glorot-uniform: U(+-sqrt(6 / (fan_in + fan_out)))."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def init_linear(layer: nn.Linear, init: str, fan_in: int | None = None, fan_out: int | None = None) -> None:
    """``fan_in``/``fan_out`` default to the layer's; a layer that is one block of a larger dense
    (the GloVe nets split [v_c ; v_q] -> M into two) passes the whole dense's."""
    if init == "pytorch":
        layer.reset_parameters()
        return
    if init == "zeros":
        nn.init.zeros_(layer.weight)
    else:
        glorot_uniform_(layer.weight, fan_in or layer.in_features, fan_out or layer.out_features)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
