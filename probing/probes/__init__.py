"""Attention-based probing classifiers (Clark et al. 2019, Table 3)."""

from probing.probes.attention import AttnOnly, AttnPlusGlove
from probing.probes.baselines import DistancesPlusGlove, RightBranching
from probing.probes.collate import collate_sentences
from probing.probes.decode import decode_argmax, decode_mst
from probing.probes.metrics import AttachmentScore, PerRelationUAS
from probing.probes.module import ProbeModule

__all__ = [
    "AttachmentScore",
    "AttnOnly",
    "AttnPlusGlove",
    "DistancesPlusGlove",
    "PerRelationUAS",
    "ProbeModule",
    "RightBranching",
    "collate_sentences",
    "decode_argmax",
    "decode_mst",
]
