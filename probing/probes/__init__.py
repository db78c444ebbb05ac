"""Probing classifiers (Clark et al. 2019, Table 3), for any task whose queries are word spans."""

from probing.probes.attention import AttnOnly, AttnPlusGlove
from probing.probes.baselines import DistancesPlusGlove, NearestOpinion, RightBranching
from probing.probes.batch import ProbeBatch, ProbeItem, collate
from probing.probes.decode import decode_argmax, decode_mst
from probing.probes.metrics import GoldSetAccuracy, PerLabelAccuracy
from probing.probes.module import ProbeModule
from probing.probes.tasks import AspectOpinionTask, DependencyTask, Example, Task

__all__ = [
    "AspectOpinionTask",
    "AttnOnly",
    "AttnPlusGlove",
    "DependencyTask",
    "DistancesPlusGlove",
    "Example",
    "GoldSetAccuracy",
    "NearestOpinion",
    "PerLabelAccuracy",
    "ProbeBatch",
    "ProbeItem",
    "ProbeModule",
    "RightBranching",
    "Task",
    "collate",
    "decode_argmax",
    "decode_mst",
]
