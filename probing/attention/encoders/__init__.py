"""Encoders: where the weights come from, what they are, and how to load them with attention outputs.

Each config in ``conf/model/`` instantiates one of these specs (``_target_``). A new encoder is one
class here (if its weights need a new way of being found) plus one YAML.
"""

from probing.attention.encoders.base import EncoderSpec, EncoderUnavailableError
from probing.attention.encoders.gguf import GGUFCausalLM
from probing.attention.encoders.hf import BundledMiniLM, BundledMPNet, HFEncoder
from probing.attention.encoders.tiny import TinyRandom

__all__ = ["BundledMPNet", "BundledMiniLM", "EncoderSpec", "EncoderUnavailableError", "GGUFCausalLM",
           "HFEncoder", "TinyRandom"]
